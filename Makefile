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
# test starts would otherwise recompile fnn and re-rewrite every test module (6 s -> 2.4 s to collect)
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -n auto --dist loadgroup --durations=15

bench: $(STAMP)  # fnn and JAX always; the peers in the bench extra when they install
	-$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench.py --json bench.json

clean:
	rm -rf $(VENV) runs .pytest_cache
