"""Issue #22 items 2-4 and 6: a run owns its checkpoint directory, which is checked writable
before training; a failed save never loses the trained result; a Ctrl-C in a streamed epoch
saves the newest consistent state; a resume keeps the shuffle layout on any device count."""
import os
import shutil
import signal
import warnings

import jax
import numpy as np
import pytest

import fnn
from fnn import checkpoint

from training_problem import NET, OBJ, PARAMS, blobs  # the shared small problem

DATA = blobs()


def fit(directory, **kw):
    kw = {"progress": False, "batch_size": 20, "checkpoint_dir": directory, **kw}
    return fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.05), DATA, **kw)


def epochs_in(directory):
    return checkpoint.CheckpointManager(directory).steps()


# ----------------------------------------------------------------------------- item 2

def test_item2_a_fresh_run_refuses_a_directory_holding_another_run(tmp_path):
    fit(tmp_path, epochs=8, checkpoint_every=2, seed=1)                 # run A: 4, 6, 8 kept
    assert epochs_in(tmp_path) == [4, 6, 8]
    seen = []
    with pytest.raises(ValueError, match=r"fit: checkpoint_dir '.*' already holds 3 "
                                         r"checkpoint\(s\) of another run \(newest: "
                                         r"'ckpt-00000008.npz'\).*Pass resume=True to continue "
                                         r"that run, an empty directory for a new one, or "
                                         r"overwrite=True"):
        fit(tmp_path, epochs=3, seed=2, callbacks=[lambda e, m: seen.append(e)])   # run B
    assert seen == [] and epochs_in(tmp_path) == [4, 6, 8]
    b = fit(tmp_path, epochs=3, seed=2, overwrite=True)
    assert epochs_in(tmp_path) == [3]                                    # B's own, not pruned
    resumed = fit(tmp_path, epochs=5, seed=2, resume=True)               # continues B
    whole = fit(tmp_path / "whole", epochs=5, seed=2)
    np.testing.assert_array_equal(resumed.history["loss"], whole.history["loss"])
    np.testing.assert_array_equal(resumed.history["loss"][:3], b.history["loss"])
    with pytest.raises(ValueError, match=r"fit: overwrite=True deletes the checkpoints in "
                                         r"checkpoint_dir before a fresh run; it cannot be "
                                         r"combined with resume=True"):
        fit(tmp_path, epochs=5, resume=True, overwrite=True)


# ----------------------------------------------------------------------------- item 3

def test_item3_an_unwritable_directory_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    seen = []
    with pytest.raises(checkpoint.CheckpointError, match=r"fit: cannot write checkpoints to "
                                                         r"'.*a-file/run' .*checked before "
                                                         r"training"):
        fit(blocker / "run", epochs=3, callbacks=[lambda e, m: seen.append(e)])
    assert seen == []


def test_item3_a_save_that_fails_later_warns_and_fit_returns_the_result(tmp_path):
    directory = tmp_path / "run"

    def break_directory(epoch, metrics):            # after epoch 1: the directory is gone
        if epoch == 1:
            shutil.rmtree(directory)
            directory.write_text("now a file")

    with pytest.warns(RuntimeWarning, match=r"fit: could not write the checkpoint of epoch 4 "
                                            r"to '.*run'.*fit returns its result"):
        result = fit(directory, epochs=4, checkpoint_every=2, callbacks=[break_directory])
    whole = fit(tmp_path / "whole", epochs=4)
    np.testing.assert_array_equal(result.history["loss"], whole.history["loss"])
    jax.tree.map(np.testing.assert_array_equal, result.params, whole.params)


# ----------------------------------------------------------------------------- item 4

class Batches:
    """A re-iterable stream (what a DataLoader is) that can send this process a real SIGINT
    (Ctrl-C) when it is asked for one given batch."""

    def __init__(self, x, y, size, interrupt_at=None):
        self.items = [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]
        self.interrupt_at, self.served = interrupt_at, 0

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        for item in self.items:
            if self.served == self.interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)
            self.served += 1
            yield item


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as in an interactive Python: a process started in the
    background by a shell without job control (``make test &`` in a script) inherits SIGINT
    ignored, and Python then keeps it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_item4_ctrl_c_in_a_streamed_epoch_saves_the_last_complete_epoch(tmp_path,
                                                                         ctrl_c_raises):
    x, y = DATA
    common = dict(epochs=5, stream_chunk=2, progress=False, checkpoint_dir=tmp_path,
                  batch_size=None)
    fit_stream = lambda data, **kw: fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.05), data,
                                            **{**common, **kw})
    stream = Batches(x, y, 20, interrupt_at=6 * 2 + 5)       # epoch 2, batch 5 of 0..5
    with pytest.warns(UserWarning, match=r"fit: interrupted after epoch 2; saved "
                                         r"'.*ckpt-00000002.npz' \(resume with resume=True\)"):
        with pytest.raises(KeyboardInterrupt):
            fit_stream(stream)
    assert epochs_in(tmp_path) == [2]
    resumed = fit_stream(Batches(x, y, 20), resume=True)
    whole = fit_stream(Batches(x, y, 20), checkpoint_dir=tmp_path / "whole")
    np.testing.assert_array_equal(resumed.history["loss"], whole.history["loss"])
    jax.tree.map(np.testing.assert_array_equal, resumed.params, whole.params)


# ----------------------------------------------------------------------------- item 6

@pytest.mark.parametrize("before,after", [(4, 1), (1, 4)])
def test_item6_a_resume_keeps_the_shuffle_layout_on_any_device_count(tmp_path, before, after):
    x, y = blobs(128, seed=3)
    devices = jax.devices()
    mesh = lambda n: jax.make_mesh((n,), ("data",), devices=devices[:n]) if n > 1 else None
    run = lambda devices_, **kw: fnn.fit(OBJ, PARAMS, fnn.optim.rmsprop(1e-2), (x, y),
                                         batch_size=16, seed=2, progress=False,
                                         mesh=mesh(devices_), **kw)
    whole = run(before, epochs=9, checkpoint_dir=tmp_path / "whole")
    run(before, epochs=4, checkpoint_dir=tmp_path / "run")
    meta = checkpoint.read_manifest(tmp_path / "run" / "ckpt-00000004.npz")["metadata"]["fit"]
    assert meta["shuffle_blocks"] == before                  # the layout is recorded
    resumed = run(after, epochs=9, checkpoint_dir=tmp_path / "run", resume=True)
    np.testing.assert_allclose(resumed.history["loss"], whole.history["loss"], rtol=1e-6,
                               atol=1e-6)
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(whole.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    other = run(after, epochs=9, checkpoint_dir=tmp_path / "other")   # its own order differs
    assert np.abs(other.history["loss"] - whole.history["loss"]).max() > 1e-4


def test_item6_shuffle_blocks_is_accepted_on_a_mesh_of_another_size():
    x, y = blobs(128, seed=3)
    mesh = jax.make_mesh((2,), ("data",), devices=jax.devices()[:2])
    kw = dict(batch_size=16, seed=2, progress=False, epochs=3)
    two = fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.05), (x, y), mesh=mesh, shuffle_blocks=4, **kw)
    one = fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.05), (x, y), shuffle_blocks=4, **kw)
    np.testing.assert_allclose(two.history["loss"], one.history["loss"], rtol=1e-6)


def test_item2_a_corrupt_newer_checkpoint_never_outranks_the_resumed_runs_own(tmp_path):
    fit(tmp_path, epochs=6, checkpoint_every=2, keep=None)               # 2, 4, 6
    newest = checkpoint.CheckpointManager(tmp_path).path(6)
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    newest.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=r"skipping corrupt checkpoint .*ckpt-00000006\.npz' "
                                         r"while resuming \(renamed \*\.npz\.skipped\)"):
        fit(tmp_path, epochs=5, keep=1, resume=True)                      # from 4, writes 5
    assert epochs_in(tmp_path) == [5]                       # its own newest, not pruned
    assert (tmp_path / "ckpt-00000006.npz.skipped").exists()
