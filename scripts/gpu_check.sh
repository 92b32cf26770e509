#!/usr/bin/env bash
# The one prepared GPU check (issues #14, #16): on a machine with one GPU whose image has jax
# with CUDA, optax, chex, flax, equinox, pytest and hypothesis, install fnn without
# dependencies, run the tests that make sense on one GPU, then the bench rows on the GPU;
# under 8 minutes on an H200. Results land in $OUT (default gpu_check_out/).
#
#   scripts/gpu_check.sh                                  # on the GPU machine
#   JAX_PLATFORMS=cpu scripts/gpu_check.sh --dry-run      # the same steps, small, on a CPU
#   JAX_PLATFORMS=cpu scripts/gpu_check.sh --smoke        # the dry run cut down: seconds
#
# --smoke is what tests/test_bench.py runs: the dry run with its test step cut to the policy
# tests that compile nothing and its bench step cut to fnn's quadrant row (the test runs every
# implementation of quadrant and mlp in process instead).
#
# Not run on a GPU: the bit-identity fixtures (recorded on XLA:CPU), the XLA:CPU rewrite's HLO
# checks, the multi-process test (Gloo is CPU's) and the 4-device sharding tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
if [ "${1:-}" = "--dry-run" ] || [ "${1:-}" = "--smoke" ]; then
  TESTS=(tests/test_precision.py -k "policy or island or gradcheck")
  BENCH=(quadrant mlp --rounds 1 --repeats 1)
  if [ "$1" = "--smoke" ]; then
    TESTS=(tests/test_precision.py -k "policy_strings or bad_policies")
    BENCH=(quadrant --impls fnn --rounds 1 --repeats 1)
  fi
else
  "$PY" -m pip install --quiet --no-deps -e .
  TESTS=(tests/test_train.py tests/test_stream.py tests/test_precision.py tests/test_norm.py
         tests/test_conv.py tests/test_pool.py tests/test_recurrent.py tests/test_losses.py
         tests/test_optim_equivalence.py tests/test_gan.py tests/test_vae.py)
  BENCH=(quadrant mlp cnn lstm gru_mnist1d sweep_quadrant sweep_digits --rounds 1 --repeats 3)
fi
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" | tee "$OUT/devices.txt"
timeout 300 "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" 2>&1 | tail -n 30 | tee "$OUT/tests.txt"
timeout 300 "$PY" scripts/bench.py "${BENCH[@]}" --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"
