"""Preprocessing: each transform's defining property, fit-on-train/apply-to-test, inverses,
degenerate features."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.data import (PCA, Scaler, fit_center, fit_minmax, fit_pca, fit_pca_whiten,
                      fit_standardize, fit_zca_whiten)


def correlated(n=500, d=5, seed=0, dtype=np.float64):
    """Rows with a non-zero mean, very different scales and strong correlations."""
    rng = np.random.RandomState(seed)
    mix = rng.randn(d, d) * np.logspace(0, 1.5, d)
    return (rng.randn(n, d) @ mix + rng.randn(d) * 10).astype(dtype)


def cov(z):
    zc = z - z.mean(axis=0)
    return zc.T @ zc / len(z)


def test_center_and_standardize_defining_properties():
    x = correlated()
    z = fit_center(x).apply(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), x.std(axis=0))
    s = fit_standardize(x)
    z = s.apply(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(s.loc, x.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(1 / s.scale, x.std(axis=0, keepdims=True))
    assert isinstance(s, Scaler)


def test_minmax_range_is_exact_on_train_and_defaults_to_the_notes_range():
    x = correlated().astype(np.float32)
    z = fit_minmax(x).apply(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.min(axis=0), 0.01, rtol=1e-6)
    np.testing.assert_allclose(z.max(axis=0), 0.99, rtol=1e-6)
    z = fit_minmax(x.astype(np.float64), (-1.0, 1.0)).apply(x.astype(np.float64))
    np.testing.assert_array_equal(z.min(axis=0), -1.0)
    np.testing.assert_allclose(z.max(axis=0), 1.0, rtol=1e-15)


def test_scalers_apply_train_statistics_to_test():
    x = correlated(seed=1)
    test = correlated(n=50, seed=2) * 3 + 7  # different statistics
    for fit in (fit_center, fit_standardize, fit_minmax):
        s = fit(x)
        expect = (test - s.loc) * s.scale + s.offset
        np.testing.assert_allclose(s.apply(test), expect)
        assert not np.allclose(s.apply(test), fit(test).apply(test))  # not re-fit
    s = fit_standardize(x)
    np.testing.assert_allclose(s.apply(test), (test - x.mean(0)) / x.std(0))


@pytest.mark.parametrize("fit", [fit_center, fit_standardize, fit_minmax])
def test_scaler_invert(fit):
    x = correlated()
    s = fit(x)
    np.testing.assert_allclose(s.invert(s.apply(x)), x, rtol=1e-12, atol=1e-12)
    x32 = x.astype(np.float32)
    s = fit(x32)
    back = s.invert(s.apply(x32))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, x32, rtol=1e-5, atol=1e-4)


def test_degenerate_features_give_no_nan():
    x = correlated(d=4)
    x[:, 2] = 3.0  # constant column
    s = fit_standardize(x)
    z = s.apply(x)
    assert np.all(np.isfinite(z))
    np.testing.assert_array_equal(z[:, 2], 0.0)
    np.testing.assert_allclose(z[:, [0, 1, 3]].std(axis=0), 1)
    np.testing.assert_allclose(s.invert(z), x)
    m = fit_minmax(x)
    z = m.apply(x)
    np.testing.assert_array_equal(z[:, 2], 0.01)
    np.testing.assert_allclose(m.invert(z), x)
    for fit in (fit_pca_whiten, fit_zca_whiten):
        p = fit(x)
        z = p.apply(x)
        assert np.all(np.isfinite(z))
        np.testing.assert_allclose(p.invert(z), x, atol=1e-9)
    one = fit_standardize(x[:1])  # a single example: every feature is constant
    np.testing.assert_array_equal(one.apply(x[:1]), 0.0)


def test_per_channel_statistics_on_images():
    rng = np.random.RandomState(0)
    img = (rng.rand(20, 4, 4, 3) * [1, 10, 100]).astype(np.float32)
    s = fit_standardize(img, axis=(0, 1, 2))
    assert s.loc.shape == (1, 1, 1, 3)
    z = s.apply(img)
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1, atol=1e-5)
    assert s.apply(img[:5, :2]).shape == (5, 2, 4, 3)  # reduced axes take any size
    per_pixel = fit_standardize(img)
    with pytest.raises(ValueError, match=r"Scaler.apply: x must have shape \(\*, 4, 4, 3\).*got shape \(5, 2, 4, 3\)"):
        per_pixel.apply(img[:5, :2])


def test_pca_components_orthonormal_sorted_and_match_eigh():
    x = correlated(d=6)
    p = fit_pca(x)
    assert isinstance(p, PCA)
    assert p.components.shape == (6, 6)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(6), atol=1e-12)
    assert np.all(np.diff(p.explained_variance) <= 0)
    np.testing.assert_allclose(p.explained_variance_ratio.sum(), 1.0)
    np.testing.assert_allclose(p.explained_variance, np.linalg.eigvalsh(cov(x))[::-1])
    z = p.apply(x)
    np.testing.assert_allclose(cov(z), np.diag(p.explained_variance), atol=1e-8 * p.explained_variance[0])
    # Against scikit-learn (which divides by n - 1 and may flip signs).
    from sklearn.decomposition import PCA as SkPCA
    sk = SkPCA().fit(x)
    np.testing.assert_allclose(sk.explained_variance_ * (len(x) - 1) / len(x), p.explained_variance,
                               rtol=1e-10)
    np.testing.assert_allclose(np.abs(sk.components_ @ p.components.T), np.eye(6), atol=1e-8)


def test_pca_keeps_k_components_or_a_variance_fraction():
    x = correlated(d=6)
    p = fit_pca(x, 2)
    assert p.components.shape == (2, 6) and p.apply(x).shape == (500, 2)
    full = fit_pca(x)
    cum = np.cumsum(full.explained_variance_ratio)
    for f in (0.5, 0.9, 0.99, 1.0):
        k = fit_pca(x, f).components.shape[0]
        assert cum[k - 1] >= f - 1e-12 and (k == 1 or cum[k - 2] < f)
    # Keeping k components: invert is the best rank-k reconstruction (a projection).
    r = p.invert(p.apply(x))
    np.testing.assert_allclose(fit_pca(x, 2).invert(fit_pca(x, 2).apply(r)), r, atol=1e-9)
    np.testing.assert_allclose(full.invert(full.apply(x)), x, atol=1e-9)
    with pytest.raises(ValueError, match=r"fit_pca: n_components must be in 1..6.*got 7"):
        fit_pca(x, 7)
    with pytest.raises(ValueError, match=r"fit_pca: n_components must be None.*got 1.5"):
        fit_pca(x, 1.5)
    with pytest.raises(ValueError, match=r"fit_pca: x must have shape \(n_examples, n_features\).*reshape"):
        fit_pca(x.reshape(500, 3, 2))


def test_pca_whitening_gives_identity_covariance():
    x = correlated(d=5)
    p = fit_pca_whiten(x, eps=1e-12)
    z = p.apply(x)
    np.testing.assert_allclose(cov(z), np.eye(5), atol=1e-5)
    np.testing.assert_allclose(p.invert(z), x, atol=1e-9)
    z2 = fit_pca_whiten(x, 3, eps=1e-12).apply(x)
    assert z2.shape == (500, 3)
    np.testing.assert_allclose(cov(z2), np.eye(3), atol=1e-5)


def test_zca_whitening_identity_covariance_closest_to_input():
    x = correlated(d=5)
    eps = 1e-12
    p = fit_zca_whiten(x, eps=eps)
    z = p.apply(x)
    np.testing.assert_allclose(cov(z), np.eye(5), atol=1e-5)
    # The defining formula: z = (x - mean) U diag(1/sqrt(l + eps)) U^T, i.e. C^(-1/2).
    lam, u = np.linalg.eigh(cov(x))
    w = u @ np.diag(1 / np.sqrt(lam + eps)) @ u.T
    np.testing.assert_allclose(z, (x - x.mean(0)) @ w, atol=1e-8)
    np.testing.assert_allclose(p.w, p.w.T, atol=1e-12)  # symmetric
    # Any other whitening is ZCA times an orthogonal matrix; ZCA is the closest to the input.
    xc = x - x.mean(0)
    best = np.linalg.norm(z - xc)
    rng = np.random.RandomState(0)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.randn(5, 5))
        other = z @ q
        np.testing.assert_allclose(cov(other), np.eye(5), atol=1e-5)  # still white
        assert np.linalg.norm(other - xc) > best
    pca = fit_pca_whiten(x, eps=eps).apply(x)
    assert np.linalg.norm(pca - xc) > best
    np.testing.assert_allclose(p.invert(z), x, atol=1e-9)


def test_whitening_uses_train_statistics_on_test():
    x, test = correlated(seed=3), correlated(n=40, seed=4)
    for fit in (fit_pca, fit_pca_whiten, fit_zca_whiten):
        p = fit(x)
        np.testing.assert_allclose(p.apply(test), (test - x.mean(0)) @ p.w)
        assert not np.allclose(p.apply(test), fit(test).apply(test))


def test_float32_and_jax_arrays(x64):
    x = correlated().astype(np.float32)
    for fit in (fit_standardize, fit_zca_whiten):
        t = fit(x)
        z = t.apply(x)
        assert isinstance(z, np.ndarray) and z.dtype == np.float32
        zj = jax.jit(t.apply)(jnp.asarray(x))  # usable in jit; stays float32 even under x64
        assert isinstance(zj, jax.Array) and zj.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(zj), z, rtol=1e-4, atol=1e-4)
    assert fit_center(np.arange(6).reshape(3, 2)).apply(np.arange(6).reshape(3, 2)).dtype == np.float32


def test_validation_messages():
    x = correlated(d=3)
    with pytest.raises(ValueError, match=r"fit_standardize: eps must be a finite number > 0, got 0"):
        fit_standardize(x, eps=0)
    with pytest.raises(ValueError, match=r"fit_zca_whiten: eps must be a finite number > 0, got -1"):
        fit_zca_whiten(x, eps=-1)
    with pytest.raises(ValueError, match=r"fit_minmax: feature_range must be finite with lo < hi"):
        fit_minmax(x, (1.0, 0.0))
    with pytest.raises(ValueError, match=r"fit_center: x must have shape \(n_examples, \*features\).*got shape \(3,\)"):
        fit_center(x[0])
    with pytest.raises(ValueError, match=r"fit_center: x has 0 examples"):
        fit_center(x[:0])
    with pytest.raises(ValueError, match=r"fit_pca: x contains NaN or infinite values"):
        fit_pca(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match=r"fit_center: axis 2 is out of range"):
        fit_center(x, axis=2)
    with pytest.raises(ValueError, match=r"PCA.apply: x must have shape \(n, 3\), got shape \(4, 2\)"):
        fit_pca(x).apply(x[:4, :2])
    with pytest.raises(ValueError, match=r"PCA.invert: z must have shape \(n, 2\), got shape \(4, 3\)"):
        fit_pca(x, 2).invert(x[:4])
    with pytest.raises(ValueError, match=r"Scaler.apply: x must have shape \(\*, 3\).*got shape \(3,\)"):
        fit_center(x).apply(x[0])
