"""Checkpointed training: a run killed with SIGKILL and resumed ends bit-identical to an
uninterrupted run; so do runs interrupted by KeyboardInterrupt, resumed past a corrupt
checkpoint, or chunked differently (epochs_per_call never changes a bit)."""
import os
import selectors
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import fnn
from fnn import checkpoint

ROOT = Path(__file__).resolve().parents[1]

# The victim tells the parent on stdout that epoch 3's checkpoint is written (fit calls
# callbacks after the epoch's checkpoint), then blocks in signal.pause() until it is killed:
# a handshake, so the kill always lands at the same point however loaded the machine is.
SCRIPT = textwrap.dedent('''
    import signal, sys
    import jax, numpy as np
    import fnn

    mode, ckpt_dir, out = sys.argv[1:4]
    rng = np.random.RandomState(0)
    x = rng.randn(96, 4).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 0.5).astype(np.int32)
    net = fnn.serial(fnn.Dense(8), fnn.tanh, fnn.Dense(3))
    params, _ = net.init(jax.random.key(0), (4,))
    seen = []

    def marker(epoch, metrics):
        # called after the checkpoint of epoch + 1 has been written
        seen.append(epoch)
        if mode == "victim" and epoch + 1 == 3:
            print("saved 3", flush=True)
            signal.pause()

    kwargs = {} if mode == "plain" else dict(
        checkpoint_dir=ckpt_dir, checkpoint_every=1, keep=2, resume=(mode == "resume"),
        callbacks=[marker])
    result = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(0.02), (x, y), epochs=30,
                     batch_size=16, seed=3, progress=False, **kwargs)
    leaves = jax.tree_util.tree_flatten_with_path(result.params)[0]
    np.savez(out, first_epoch=np.array(seen[0] if seen else -1),
             loss=result.history["loss"],
             **{jax.tree_util.keystr(p): np.asarray(a) for p, a in leaves})
''')


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    return env


def _start(script, mode, ckpt, out):
    return subprocess.Popen([sys.executable, str(script), mode, str(ckpt), str(out)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc, expected, timeout=300):
    """Block until ``proc`` prints ``expected`` on stdout (the handshake). ``timeout`` only
    keeps a broken child from hanging the suite; no result depends on it."""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), f"no {expected!r} from the child in {timeout} s"
    line = proc.stdout.readline()
    assert line == expected + "\n", (line, proc.poll() is None or proc.communicate()[1])


def _finish(proc, timeout=60):
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    return stderr


def test_a_run_killed_with_sigkill_resumes_bit_identically(tmp_path, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    ckpt = tmp_path / "ckpt"
    victim = _start(script, "victim", ckpt, tmp_path / "victim.npz")
    # the uninterrupted reference: the same script, run in this process (one start fewer)
    monkeypatch.setattr(sys, "argv", [str(script), "plain", "", str(tmp_path / "reference.npz")])
    exec(compile(SCRIPT, str(script), "exec"), {"__name__": "__main__"})
    _wait_for_line(victim, "saved 3")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "victim.npz").exists()            # it really died mid-run
    assert checkpoint.CheckpointManager(ckpt).steps() == [2, 3]   # keep=2

    _finish(_start(script, "resume", ckpt, tmp_path / "resumed.npz"))
    ref, resumed = np.load(tmp_path / "reference.npz"), np.load(tmp_path / "resumed.npz")
    assert int(resumed["first_epoch"]) == 3                  # continued after epoch 3
    names = [k for k in ref.files if k.startswith("[")]
    assert len(names) == 4
    for name in names:
        assert np.array_equal(ref[name], resumed[name]), name
    assert np.array_equal(ref["loss"], resumed["loss"])     # the history survives too


# ----------------------------------------------------------------------------- in-process

def _problem(n=48):
    rng = np.random.RandomState(1)
    x = rng.randn(n, 3).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    net = fnn.serial(fnn.Dense(6), fnn.tanh, fnn.Dense(2))
    params, _ = net.init(jax.random.key(2), (3,))
    return fnn.supervised(net), params, (x, y)


def _assert_same(a, b):
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        assert np.array_equal(x, y), jax.tree_util.keystr(path)


@pytest.mark.parametrize("batch_size", [None, 12])
def test_chunking_never_changes_a_bit(batch_size):
    objective, params, data = _problem()
    opt = fnn.optim.adam(0.05)
    runs = [fnn.fit(objective, params, opt, data, epochs=11, batch_size=batch_size,
                    progress=False, epochs_per_call=k) for k in (None, 1, 3)]
    for run in runs[1:]:
        _assert_same(runs[0].params, run.params)
        _assert_same(runs[0].opt_state, run.opt_state)
        assert np.array_equal(runs[0].history["loss"], run.history["loss"])


def test_keyboard_interrupt_saves_then_reraises_and_resume_matches(tmp_path):
    objective, params, data = _problem()
    opt = fnn.optim.sgd(0.1, momentum=0.9)
    kw = dict(epochs=9, batch_size=8, seed=5, progress=False)
    reference = fnn.fit(objective, params, opt, data, **kw)

    def interrupt(epoch, metrics):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="interrupted after epoch 4"):
        fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path, callbacks=[interrupt], **kw)
    assert checkpoint.CheckpointManager(tmp_path).steps() == [4]
    resumed = fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path, resume=True, **kw)
    _assert_same(reference.params, resumed.params)
    _assert_same(reference.opt_state, resumed.opt_state)
    assert np.array_equal(reference.history["loss"], resumed.history["loss"])


def test_resume_skips_a_corrupt_newest_checkpoint_with_a_warning(tmp_path):
    objective, params, data = _problem()
    opt = fnn.optim.adam(0.05)
    kw = dict(epochs=8, batch_size=16, progress=False)
    reference = fnn.fit(objective, params, opt, data, **kw)
    fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path, checkpoint_every=2,
            **{**kw, "epochs": 6})
    manager = checkpoint.CheckpointManager(tmp_path)
    assert manager.steps() == [2, 4, 6]
    newest = manager.path(6)
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    newest.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=r"skipping corrupt checkpoint .*ckpt-00000006\.npz"):
        resumed = fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path, resume=True, **kw)
    _assert_same(reference.params, resumed.params)
    assert np.array_equal(reference.history["loss"], resumed.history["loss"])


def test_resume_restores_early_stopping_state_and_a_finished_run_returns_at_once(tmp_path):
    objective, params, data = _problem()
    opt = fnn.optim.sgd(0.5)
    rule = fnn.EarlyStopping(monitor="loss", patience=2, mode="max")   # loss falls: stops early
    kw = dict(epochs=20, batch_size=16, progress=False, early_stopping=rule)
    reference = fnn.fit(objective, params, opt, data, **kw)
    assert len(reference.history["loss"]) == 3
    first = fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path, checkpoint_every=1, **kw)
    _assert_same(reference.params, first.params)              # the best (first) epoch's params
    again = fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path, resume=True, **kw)
    _assert_same(reference.params, again.params)
    assert np.array_equal(reference.history["loss"], again.history["loss"])


def test_resume_without_checkpoints_starts_afresh_and_keep_prunes(tmp_path):
    objective, params, data = _problem()
    opt = fnn.optim.sgd(0.1)
    kw = dict(epochs=5, batch_size=16, progress=False)
    reference = fnn.fit(objective, params, opt, data, **kw)
    fresh = fnn.fit(objective, params, opt, data, checkpoint_dir=tmp_path / "new", resume=True,
                    checkpoint_every=1, keep=2, **kw)
    _assert_same(reference.params, fresh.params)
    manager = checkpoint.CheckpointManager(tmp_path / "new", best_metric="loss")
    # the newest two, plus the best by training loss (the last epoch: the same file here)
    assert manager.steps() == [4, 5]
    assert checkpoint.load(manager.path(5)).metadata["fit"]["finished"] is True


def test_resume_with_a_different_model_names_the_mismatch(tmp_path):
    objective, params, data = _problem()
    fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=2, progress=False,
            checkpoint_dir=tmp_path)
    other = fnn.serial(fnn.Dense(7), fnn.tanh, fnn.Dense(2))
    other_params, _ = other.init(jax.random.key(0), (3,))
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"at \['params'\]\['dense_0'\]\['b'\]: shape \(6,\) in the checkpoint, "
                             r"\(7,\) in the target"):
        fnn.fit(fnn.supervised(other), other_params, fnn.optim.sgd(0.1), data, epochs=4,
                progress=False, checkpoint_dir=tmp_path, resume=True)
