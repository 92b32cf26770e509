# Quick start:  make run   (the default experiment suite -> runs/)
#               make test  (the test suite)
# Both create .venv and install fnn with what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fnn run --out runs

# on every core; the multi-process (jax.distributed) tests share one worker (xdist_group
# "processes"), tests reading the same experiment's quick run another (tests/conftest.py);
# the 15 slowest tests are listed, so the next slow one is seen. Bytecode is written even
# where PYTHONDONTWRITEBYTECODE is set (many container images): each worker and each process a
# test starts would otherwise recompile fnn and re-rewrite every test module (6 s -> 2.4 s to collect).
# Where the system has jemalloc (Debian: libjemalloc2; .ci/run installs it), every process of
# the run allocates with it: XLA's compiler (LLVM) runs ~13 % faster than on glibc's malloc, and
# nothing computed changes. Without it, the same command on glibc's malloc. JEMALLOC= turns it off.
JEMALLOC ?= $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
                                   /usr/lib/aarch64-linux-gnu/libjemalloc.so.2))
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(if $(JEMALLOC),LD_PRELOAD=$(JEMALLOC)) $(BIN)/python -m pytest -q -n auto --dist loadgroup --durations=15

bench: $(STAMP)  # fnn and JAX always; the peers in the bench extra when they install
	-$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench.py --json bench.json

clean:
	rm -rf $(VENV) runs .pytest_cache
