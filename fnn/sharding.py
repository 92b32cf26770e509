"""Meshes and shardings for data-parallel and multi-process training, on ``jax.sharding``.

fnn scales out on JAX's own machinery and nothing home-made: a ``jax.sharding.Mesh`` with a
``'data'`` axis, the batch axis of the data sharded over it (``NamedSharding(mesh,
P('data'))``), params, model and optimizer state replicated, and jit's SPMD partitioner
inserting the gradient all-reduce. Several processes (``jax.distributed.initialize``) form
one mesh over all their devices; each feeds only its own part of the data
(``jax.make_array_from_process_local_data``).

Inside its compiled programs fnn works on an ``Auto``-typed twin of the user's mesh (same
devices, same layout: nothing moves), so every layer runs under the partitioner's sharding
propagation whether the user's mesh is ``Explicit`` (``jax.make_mesh``'s default) or not; what
``fit`` returns is placed back on the user's mesh.

The per-epoch shuffle never gathers the data set onto one device: with ``D`` data shards, the
``n`` examples are ``D`` contiguous blocks of ``n / D`` (one per shard), each block is permuted
on its own, and minibatch ``t`` takes ``batch / D`` examples from each block (see
:func:`fnn.train.engine.shuffled_batches`). With ``D = 1`` this is the single-device order; a
single-device ``fit(..., shuffle_blocks=D)`` reproduces the ``D``-device order exactly.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

__all__ = ["DataParallel", "SingleDevice", "SINGLE_DEVICE", "data_parallel", "shard_data", "replicate", "auto_mesh",
           "is_primary", "mesh_of", "initialize", "HEARTBEAT_TIMEOUT_S"]

# How long a lost process may stay silent before JAX's coordination service declares it dead
# and ends every other process (jax.distributed's default is 100 s).
HEARTBEAT_TIMEOUT_S = 10


def initialize(coordinator_address: str, num_processes: int, process_id: int, *,
               heartbeat_timeout_seconds: int = HEARTBEAT_TIMEOUT_S,
               shutdown_timeout_seconds: int = HEARTBEAT_TIMEOUT_S, **kwargs) -> None:
    """``jax.distributed.initialize`` with fnn's failure settings: when a process dies (or is
    killed), JAX's coordination service misses its heartbeats for ``heartbeat_timeout_seconds``
    and then ends every surviving process (they would otherwise wait in a collective), with
    JAX's message naming the lost task ("The following tasks are unhealthy (stopped sending
    heartbeats): 1"). So survivors end about ``heartbeat_timeout_seconds`` after the loss
    (JAX's default, 100 s, is why they used to hang ~95 s); resume with ``fit(...,
    resume=True)``, which reads the newest intact checkpoint. ``kwargs`` go to
    ``jax.distributed.initialize`` (e.g. ``initialization_timeout``)."""
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               heartbeat_timeout_seconds=heartbeat_timeout_seconds,
                               shutdown_timeout_seconds=shutdown_timeout_seconds, **kwargs)


def auto_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis ``AxisType.Auto`` (the same devices in the same layout)."""
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def is_primary() -> bool:
    """Whether this is process 0 (the one that writes results, progress and manifests)."""
    return jax.process_index() == 0


def _check_axis(who: str, mesh: Mesh, axis: str) -> None:
    if axis not in mesh.axis_names:
        raise ValueError(f"{who}: the mesh has axes {tuple(mesh.axis_names)}, none named "
                         f"{axis!r}; make it with jax.make_mesh((n,), ({axis!r},)) or name "
                         f"the batch axis with data_axis=")


def mesh_of(tree) -> Mesh | None:
    """The mesh of the ``NamedSharding``-placed leaves of ``tree`` (None if there are none);
    a ``ValueError`` if they sit on different meshes (device sets)."""
    meshes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, NamedSharding):
            meshes.setdefault(_devices(sharding.mesh), (sharding.mesh, jax.tree_util.keystr(path)))
    if len(meshes) > 1:
        (_, (m1, p1)), (_, (m2, p2)) = list(meshes.items())[:2]
        raise ValueError(f"arrays on different meshes: {p1} on {_describe(m1)}, {p2} on "
                         f"{_describe(m2)}; put them on one mesh")
    return next(iter(meshes.values()))[0] if meshes else None


def _devices(mesh: Mesh) -> tuple:
    return tuple(d.id for d in mesh.devices.flat)


def _describe(mesh: Mesh) -> str:
    return f"a mesh {dict(mesh.shape)} of devices {list(_devices(mesh))}"


class DataParallel(NamedTuple):
    """Data-parallel placement: the batch axis over ``axis`` of ``mesh`` (an ``Auto`` mesh),
    everything else replicated; ``user_mesh`` is the mesh results are returned on."""
    mesh: Mesh
    axis: str
    user_mesh: Mesh

    @property
    def size(self) -> int:
        """D: the number of data shards."""
        return self.mesh.shape[self.axis]

    def sharding(self, batch_dim: int = 0, mesh: Mesh | None = None) -> NamedSharding:
        return NamedSharding(mesh or self.mesh, P(*([None] * batch_dim), self.axis))

    def replicated_sharding(self, mesh: Mesh | None = None) -> NamedSharding:
        return NamedSharding(mesh or self.mesh, P())

    def data(self, tree, batch_dim: int = 0):
        """Global arrays (or host arrays, taken as this process's part) sharded on axis
        ``batch_dim``; arrays already placed this way stay where they are."""
        return jax.tree.map(lambda a: _place(a, self.sharding(batch_dim)), tree)

    def replicated(self, tree, mesh: Mesh | None = None):
        """A fresh replicated copy of ``tree`` (host or device arrays, equal on every process)."""
        sharding = self.replicated_sharding(mesh)
        return jax.tree.map(lambda a: jax.make_array_from_callback(
            np.shape(a), sharding, lambda index, a=np.asarray(a): a[index]), tree)

    def returned(self, tree):
        """``tree`` placed on the user's mesh, as it was on the internal one."""
        def back(a):
            if not isinstance(getattr(a, "sharding", None), NamedSharding):
                return a
            return jax.device_put(a, NamedSharding(self.user_mesh, a.sharding.spec))
        return jax.tree.map(back, tree)

    def constrain(self, batch):
        """``batch`` (inside a traced program) constrained to the batch axis over the mesh."""
        return jax.lax.with_sharding_constraint(batch, self.sharding())

    def jit_options(self) -> dict:
        """``jax.jit`` options of a training program: its outputs replicated."""
        return {"out_shardings": self.replicated_sharding()}

    def check_batch(self, who: str, batch_size: int, what: str = "the global batch") -> None:
        if batch_size % self.size:
            lo = batch_size // self.size * self.size
            raise ValueError(f"{who}: {what} ({batch_size}) does not divide by the {self.size} "
                             f"devices of mesh axis {self.axis!r}; use a batch size that is a "
                             f"multiple of {self.size} (e.g. {lo or self.size} or "
                             f"{lo + self.size})")


class SingleDevice(NamedTuple):
    """The null placement: one device, no mesh (what :func:`data_parallel` gives without a
    mesh). It has :class:`DataParallel`'s methods, each the plain single-device case: one
    shard, arrays put on the default device, a replicated copy is a copy, nothing to
    constrain or check."""

    @property
    def size(self) -> int:
        return 1

    def data(self, tree, batch_dim: int = 0):
        """The arrays of ``tree`` on the default device (``jax.device_put``: a transfer; no
        program is compiled per shape, as ``jnp.asarray`` of a host array would)."""
        return jax.device_put(tree)

    def replicated(self, tree, mesh: Mesh | None = None):
        """A fresh device copy of ``tree`` (so donating it never deletes the caller's arrays),
        copied without a compiled program."""
        return jax.device_put(tree, may_alias=False)

    def returned(self, tree):
        return tree

    def constrain(self, batch):
        return batch

    def jit_options(self) -> dict:
        return {}

    def check_batch(self, who: str, batch_size: int, what: str = "the global batch") -> None:
        """Any batch size divides over one device."""


SINGLE_DEVICE = SingleDevice()


def _place(a, sharding: NamedSharding):
    if isinstance(a, jax.Array) and isinstance(a.sharding, NamedSharding):
        if a.sharding.spec == sharding.spec and _devices(a.sharding.mesh) == _devices(sharding.mesh):
            return jax.device_put(a, sharding)   # the same layout: only the axis types change
    if jax.process_count() > 1:
        return jax.make_array_from_process_local_data(sharding, np.asarray(a))
    return jax.device_put(np.asarray(a) if not isinstance(a, jax.Array) else a, sharding)


def data_parallel(who: str, data, params, *, mesh: Mesh | None = None,
                  axis: str = "data") -> DataParallel | SingleDevice:
    """The data-parallel placement for training ``params`` on ``data``: over ``mesh`` if
    given, else over the mesh ``data`` is sharded on (:data:`SINGLE_DEVICE`: no mesh). Checks that
    the mesh has ``axis`` and that committed params do not sit on another mesh."""
    if mesh is None:
        mesh = mesh_of(data)
        if mesh is None:
            return SINGLE_DEVICE
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{who}: mesh must be a jax.sharding.Mesh (e.g. jax.make_mesh((4,), "
                        f"('data',))), got {type(mesh).__name__}")
    _check_axis(who, mesh, axis)
    params_mesh = mesh_of(params)
    if params_mesh is not None and _devices(params_mesh) != _devices(mesh):
        raise ValueError(f"{who}: the data are on {_describe(mesh)} but the params on "
                         f"{_describe(params_mesh)}; put both on one mesh (or pass the params "
                         f"as host arrays: fit replicates them over the data's mesh)")
    return DataParallel(auto_mesh(mesh), axis, mesh)


def shard_data(data, mesh: Mesh, axis: str = "data"):
    """``data`` (a pytree of host arrays with a leading example axis; with several processes,
    this process's part) as global arrays sharded over mesh axis ``axis`` on that leading
    axis: ``NamedSharding(mesh, P(axis))``. The example count (per process) must divide by
    the axis's devices (per process)."""
    _check_axis("shard_data", mesh, axis)
    local = mesh.shape[axis] // jax.process_count()
    for path, a in jax.tree_util.tree_flatten_with_path(data)[0]:
        n = np.shape(a)[0] if np.ndim(a) else None
        if n is None or n % max(local, 1):
            raise ValueError(f"shard_data: data{jax.tree_util.keystr(path)} has {n} examples, "
                             f"which does not divide by the {local} devices of mesh axis "
                             f"{axis!r}{' in this process' if jax.process_count() > 1 else ''}; "
                             f"drop or pad examples")
    sharding = NamedSharding(mesh, P(axis))
    return jax.tree.map(lambda a: _place(a, sharding), data)


def replicate(tree, mesh: Mesh):
    """A replicated copy of ``tree`` on every device of ``mesh`` (``NamedSharding(mesh, P())``)."""
    return DataParallel(auto_mesh(mesh), mesh.axis_names[0], mesh).replicated(tree, mesh)
