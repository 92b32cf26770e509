"""MNIST IDX reading and loading on tiny files written here; the network is never touched."""
import gzip
import hashlib
import struct

import numpy as np
import pytest

from fnn.data import load_mnist, read_idx
from fnn.data import mnist

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(a: np.ndarray) -> bytes:
    """Encode an array as IDX by hand: magic 00 00 type ndim, big-endian uint32 dims, data."""
    header = bytes([0, 0, CODES[a.dtype.type], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path, a, gz):
    data = idx_bytes(a)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url):
        raise AssertionError(f"test tried to download {url}")
    monkeypatch.setattr(mnist, "_fetch", refuse)


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, dtype, gz):
    rng = np.random.RandomState(0)
    a = (rng.randn(3, 4, 5) * 100).astype(dtype)
    b = read_idx(write(tmp_path / "a.idx", a, gz))
    assert b.shape == (3, 4, 5) and b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(b, a)


def test_read_idx_header_is_big_endian(tmp_path):
    raw = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (258).to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)
    (tmp_path / "x").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), [258, -1])
    # gzip is detected from the bytes, not the file name
    (tmp_path / "y.idx").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(str(tmp_path / "y.idx")), [258, -1])


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = idx_bytes(np.arange(10, dtype=np.uint8).reshape(2, 5))
    cases = {
        "magic": (b"\x01" + good[1:], r"is not an IDX file: magic number 01000802"),
        "type": (good[:2] + b"\x07" + good[3:], r"is not an IDX file"),
        "short": (good[:3], r"is too short for an IDX header \(3 bytes\)"),
        "header": (good[:8], r"is truncated: its header declares 2 dimensions"),
        "data": (good[:-1], r"is corrupt or truncated: shape \(2, 5\) of uint8 needs 10 data bytes, the file has 9"),
        "extra": (good + b"\x00", r"is corrupt or truncated: .*needs 10 data bytes, the file has 11"),
        "gzip": (gzip.compress(good)[:-6], r"is not a readable gzip file"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name}.idx"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=r"read_idx: .*" + name + r"\.idx " + message):
            read_idx(path)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def tiny_mnist(directory, n_train=5, n_test=3, gz=(True, False, False, True)):
    rng = np.random.RandomState(1)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": rng.randint(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, n_test).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for (stem, a), z in zip(arrays.items(), gz):
        write(directory / (stem + (".gz" if z else "")), a, z)
    return arrays


def test_load_mnist_from_a_directory(tmp_path):
    arrays = tiny_mnist(tmp_path / "m")
    s = load_mnist(tmp_path / "m", cache_dir=tmp_path / "cache")
    assert s.x_train.shape == (5, 28, 28, 1) and s.x_test.shape == (3, 28, 28, 1)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int32
    np.testing.assert_allclose(s.x_train[..., 0], arrays["train-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(s.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert 0.0 <= s.x_test.min() and s.x_test.max() <= 1.0
    # the cache directory is searched too, and is the default place
    s2 = load_mnist(cache_dir=tmp_path / "m")
    np.testing.assert_array_equal(s2.x_train, s.x_train)


def test_missing_files_name_them_and_suggest_download(tmp_path):
    tiny_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"load_mnist: missing MNIST file\(s\) t10k-images-idx3-ubyte\[.gz\].*"
                       r"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                       r"t10k-labels-idx1-ubyte.gz.*download=True"):
        load_mnist(tmp_path / "m", cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match=r"load_mnist: directory .* does not exist"):
        load_mnist(tmp_path / "absent", cache_dir=tmp_path / "cache")


def test_inconsistent_files_are_named(tmp_path):
    tiny_mnist(tmp_path / "m")
    write(tmp_path / "m" / "t10k-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8), True)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte has 3 images but .*t10k-labels-idx1-ubyte.gz has 4 labels"):
        load_mnist(tmp_path / "m", cache_dir=tmp_path / "c")
    write(tmp_path / "m" / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 12], np.uint8), True)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz has labels outside 0..9"):
        load_mnist(tmp_path / "m", cache_dir=tmp_path / "c")
    write(tmp_path / "m" / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 27), np.uint8), True)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz should hold uint8 images \(N, 28, 28\), got uint8 of shape \(5, 28, 27\)"):
        load_mnist(tmp_path / "m", cache_dir=tmp_path / "c")
    (tmp_path / "m" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is not a readable gzip file"):
        load_mnist(tmp_path / "m", cache_dir=tmp_path / "c")


def test_download_verifies_checksums(tmp_path, monkeypatch):
    """The download path with a fake server: verified files are kept, a bad checksum is refused."""
    src = tmp_path / "server"
    tiny_mnist(src, gz=(True,) * 4)
    served = {p.name: p.read_bytes() for p in src.iterdir()}
    calls = []

    def fake_fetch(url):
        calls.append(url)
        return served[url.rsplit("/", 1)[1]]

    monkeypatch.setattr(mnist, "_fetch", fake_fetch)
    monkeypatch.setattr(mnist, "SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in served.items()})
    cache = tmp_path / "cache"
    s = load_mnist(download=True, cache_dir=cache)
    assert s.x_train.shape == (5, 28, 28, 1)
    assert sorted(p.name for p in cache.iterdir()) == sorted(served)  # no leftovers
    assert len(calls) == 4 and calls[0].startswith(mnist.MIRRORS[0])
    load_mnist(download=True, cache_dir=cache)
    assert len(calls) == 4  # present files are not fetched again

    served["t10k-labels-idx1-ubyte.gz"] = b"tampered"
    with pytest.raises(OSError, match=r"could not download t10k-labels-idx1-ubyte.gz:(.|\n)*SHA-256 .* does not match"):
        load_mnist(download=True, cache_dir=tmp_path / "cache2")
    assert not (tmp_path / "cache2" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "cache2").glob("*.part"))


def test_checksum_table_is_the_published_one():
    assert set(mnist.SHA256) == {s + ".gz" for s in mnist.FILES.values()}
    assert mnist.SHA256["train-images-idx3-ubyte.gz"].startswith("440fcabf73cc546f")
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in mnist.SHA256.values())
