"""MNIST-1D: the published benchmark data, generated locally and deterministically."""
import numpy as np
import pytest

from fnn.data import load_mnist1d
from fnn.data import mnist1d


@pytest.fixture(scope="module")
def default():
    return load_mnist1d()


def test_shapes_dtypes_labels_and_balance(default):
    s = default
    assert s.x_train.shape == (4000, 40) and s.x_test.shape == (1000, 40)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int32
    assert s.y_train.shape == (4000,) and s.y_test.shape == (1000,)
    y = np.concatenate([s.y_train, s.y_test])
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)  # 500 per class overall
    assert set(np.unique(s.y_test)) == set(range(10))
    x = np.concatenate([s.x_train, s.x_test]).astype(np.float64)
    assert abs(x.mean()) < 1e-6 and abs(x.std() - 1) < 1e-6   # standardised as a whole


def test_matches_the_reference_generator(default):
    """Fingerprint of ``mnist1d.data.make_dataset(get_dataset_args())`` (package 0.0.2.post1),
    recorded from the package: the default call reproduces the published benchmark set."""
    s = default
    np.testing.assert_array_equal(s.y_train[:20], [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9, 4, 3, 4, 5, 1, 9, 0, 3])
    np.testing.assert_array_equal(np.bincount(s.y_train), [398, 396, 411, 394, 394, 402, 401, 404, 402, 398])
    np.testing.assert_allclose(s.x_train[0, :6], [-0.33200567, -0.47191037, -0.77869708, -1.00974083,
                                                  -0.88235257, 0.10393481], rtol=1e-6)
    np.testing.assert_allclose(s.x_test[0, :6], [-0.07877078, -0.21073171, -0.09175138, 0.28267112,
                                                 0.32605815, 0.03842867], rtol=1e-6)
    np.testing.assert_allclose(s.x_train.astype(np.float64).sum(), -51.78746787509559, atol=1e-3)


@pytest.mark.parametrize("seed, shuffle_seq", [(3, False), (5, True)])
def test_equals_the_mnist1d_package(seed, shuffle_seq):
    from mnist1d import data  # a dev dependency: the reference implementation
    args = data.get_dataset_args()
    args.seed, args.num_samples, args.shuffle_seq = seed, 600, shuffle_seq
    state = np.random.get_state()  # the package reseeds NumPy's global generator
    try:
        ref = data.make_dataset(args)
    finally:
        np.random.set_state(state)
    s = load_mnist1d(seed=seed, num_samples=600, shuffle_seq=shuffle_seq)
    np.testing.assert_array_equal(s.y_train, ref["y"])
    np.testing.assert_array_equal(s.y_test, ref["y_test"])
    np.testing.assert_allclose(s.x_train, ref["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.x_test, ref["x_test"], rtol=1e-6, atol=1e-6)


def test_deterministic_per_seed_and_no_global_state():
    state = np.random.get_state()
    a = load_mnist1d(seed=1, num_samples=300)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # global RNG untouched
    b = load_mnist1d(seed=1, num_samples=300)
    c = load_mnist1d(seed=2, num_samples=300)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.shape == (240, 40) and a.x_test.shape == (60, 40)


def test_train_and_test_examples_are_distinct(default):
    """Every example has its own random transform and noise: no row repeats anywhere."""
    train = {r.tobytes() for r in default.x_train}
    test = {r.tobytes() for r in default.x_test}
    assert len(train) == 4000 and len(test) == 1000
    assert not train & test
    # Nearest train neighbour of a test example is still far from it (not a noisy copy).
    d = ((default.x_test[:50, None, :] - default.x_train[None, :, :]) ** 2).sum(-1)
    assert d.min() > 1e-2


def test_shuffle_seq_permutes_positions_only():
    plain = load_mnist1d(seed=4, num_samples=200)
    shuffled = load_mnist1d(seed=4, num_samples=200, shuffle_seq=True)
    np.testing.assert_array_equal(plain.y_train, shuffled.y_train)
    # column j of the shuffled set is column perm[j] of the plain one (up to rounding)
    gap = np.abs(plain.x_train[:, :, None] - shuffled.x_train[:, None, :]).max(axis=0)
    perm = gap.argmin(axis=0)
    assert gap.min(axis=0).max() < 1e-5
    assert sorted(perm.tolist()) == list(range(40)) and perm.tolist() != list(range(40))


def test_gaussian_smoothing_matches_scipy():
    from scipy.ndimage import gaussian_filter1d
    x = np.random.RandomState(0).randn(72)
    np.testing.assert_allclose(mnist1d._gaussian_smooth(x, 2.0), gaussian_filter1d(x, 2.0), atol=1e-14)


def test_templates_start_at_zero():
    t = mnist1d.mnist1d_templates()
    assert t.shape == (10, 12)
    np.testing.assert_array_equal(t[:, 0], 0.0)


def test_validation_messages():
    with pytest.raises(ValueError, match=r"load_mnist1d: seed must be an int in \[0, 4294967296\), got -1"):
        load_mnist1d(seed=-1)
    with pytest.raises(ValueError, match=r"load_mnist1d: num_samples must be an int >= 20.*got 10"):
        load_mnist1d(num_samples=10)
    with pytest.raises(ValueError, match=r"load_mnist1d: train_split must be a finite number in \(0, 1\), got 1"):
        load_mnist1d(train_split=1)
