"""The workloads and implementations that ``scripts/bench.py`` measures, one module a library."""
