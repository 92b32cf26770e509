"""Issue #22 items 2-4 and 6: a run owns its checkpoint directory, which is checked writable
before training; a failed save never loses the trained result; a Ctrl-C in a streamed epoch
saves the newest consistent state; a resume keeps the shuffle layout on any device count."""
import shutil
import warnings

import jax
import numpy as np
import pytest

import fnn
from fnn import checkpoint


def blobs(n=120, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, n).astype(np.int32)
    x = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


NET = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(3))
PARAMS = NET.init(jax.random.key(0), (4,))[0]
OBJ = fnn.supervised(NET)
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
