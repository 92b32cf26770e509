"""``Lowerings``: the programs JAX lowers while a ``with`` block runs, for tests that count
compilations."""
import jax
from jax._src import dispatch


class Lowerings:
    """Every program JAX lowers while active (a jit compilation, by XLA or from the disk cache;
    a program this process already holds is not lowered again), by function name, from JAX's
    monitoring events: ``names``. Only fnn's training programs (names with ``fnn_``) unless
    ``every=True``, which counts eager operations' programs too."""

    def __init__(self, every=False):
        self.every = every

    def __enter__(self):
        self.names = []
        self.listener = lambda event, secs, fun_name="", **kw: (
            event == dispatch.JAXPR_TO_MLIR_MODULE_EVENT
            and (self.every or "fnn_" in str(fun_name)) and self.names.append(str(fun_name)))
        jax.monitoring.register_event_duration_secs_listener(self.listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self.listener)
