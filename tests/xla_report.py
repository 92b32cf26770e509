"""pytest plugin: what the run cost in XLA, so a test that compiles much is seen.

Every program JAX runs is traced to a jaxpr, lowered to StableHLO and handed to XLA, which
compiles it or, when the persistent compilation cache holds it, loads it; ``jax.monitoring``
times each step. The run ends with an "XLA programs" section: programs compiled and loaded and
the seconds in each, and the seconds spent tracing and lowering, over the test processes
(pytest-xdist's workers send theirs with their test reports; processes a test starts are not
counted). ``tests/conftest.py`` loads it (``pytest_plugins``); elsewhere ``-p xla_report``
with this folder on the path. ``--compile-durations=N`` also lists the N tests that spent the
most seconds in XLA's compile calls (cache loads included). A phase's report (setup, call,
teardown) carries what was compiled since the previous report, so a session fixture's programs
count for the first test that uses it.
"""
import collections
import threading

import pytest
from jax import monitoring

TRACE = "/jax/core/compile/jaxpr_trace_duration"
LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
COMPILE = "/jax/core/compile/backend_compile_duration"   # a compile, or a persistent-cache load
CACHE_HIT = "/jax/compilation_cache/cache_hits"           # announced before that load's COMPILE
PROPERTY = "xla"                                          # the key in report.user_properties


def pytest_addoption(parser):
    # not "--xla-...": JAX hashes every command-line argument starting with "--xla" into the
    # persistent cache's keys, so such an option would make a run miss every cached program
    parser.addoption("--compile-durations", type=int, default=0, metavar="N",
                     help="list the N tests that spent the most seconds in XLA compile calls "
                          "(persistent-cache loads included)")


class XlaReport:
    """Counts XLA's work in this process (listeners) and, on the process that writes the
    terminal, adds up the counts every test report carries."""

    def __init__(self, list_tests: int):
        self.list_tests = list_tests
        self.lock = threading.Lock()
        self.loading = threading.local()     # set by a cache hit, read by the COMPILE after it
        self.pending = collections.Counter()  # this process, since the last report
        self.per_test = collections.defaultdict(collections.Counter)
        self.total = collections.Counter()

    # -- this process: jax.monitoring listeners -----------------------------------------------
    def on_event(self, event, **kwargs):
        if event == CACHE_HIT:
            self.loading.hit = True

    def on_duration(self, event, seconds, **kwargs):
        if event == COMPILE:
            kind = "loaded" if getattr(self.loading, "hit", False) else "compiled"
            self.loading.hit = False
        elif event in (TRACE, LOWER):
            kind = "traced" if event == TRACE else "lowered"
        else:
            return
        with self.lock:
            self.pending[kind] += 1
            self.pending[kind + "_s"] += seconds

    def start(self):
        monitoring.register_event_listener(self.on_event)
        monitoring.register_event_duration_secs_listener(self.on_duration)

    def stop(self):
        monitoring.unregister_event_listener(self.on_event)
        monitoring.unregister_event_duration_listener(self.on_duration)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        with self.lock:
            counts, self.pending = dict(self.pending), collections.Counter()
        if counts:
            outcome.get_result().user_properties.append((PROPERTY, counts))

    # -- the terminal's process: every report, from here or from a worker ---------------------
    def pytest_runtest_logreport(self, report):
        for key, counts in report.user_properties:
            if key == PROPERTY:
                self.per_test[report.nodeid].update(counts)
                self.total.update(counts)

    def pytest_terminal_summary(self, terminalreporter):
        t = self.total
        if not t:
            return
        write = terminalreporter.write_line
        terminalreporter.section("XLA programs")
        write(f"compiled {t['compiled']:,} in {t['compiled_s']:.1f} s, loaded "
              f"{t['loaded']:,} from the persistent cache in {t['loaded_s']:.1f} s; "
              f"traced for {t['traced_s']:.1f} s, lowered {t['lowered']:,} in "
              f"{t['lowered_s']:.1f} s (seconds summed over the test processes)")
        xla_seconds = lambda counts: counts["compiled_s"] + counts["loaded_s"]
        ranked = sorted(self.per_test.items(), key=lambda kv: -xla_seconds(kv[1]))
        for nodeid, counts in ranked[:self.list_tests]:
            write(f"{xla_seconds(counts):7.2f}s {counts['compiled']:5,} compiled "
                  f"{counts['loaded']:5,} loaded  {nodeid}")


def pytest_configure(config):
    """Register the report (and its listeners) for this pytest process."""
    report = XlaReport(config.getoption("--compile-durations"))
    report.start()
    config.pluginmanager.register(report, "xla_report_counts")
    config.add_cleanup(report.stop)
