"""MNIST from its original IDX files (LeCun, Cortes & Burges): 60000 train / 10000 test
28x28 grey-scale digits.

Nothing is downloaded unless ``load_mnist(download=True)`` is asked for; then the four
standard ``.gz`` files are fetched with ``urllib`` into the cache directory and each is
checked against its published SHA-256 before it is kept.

The IDX format: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian
uint32 sizes, then the values in C order, big-endian. Type codes: 0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from fnn.data.digits import Split

__all__ = ["read_idx", "load_mnist", "FILES", "SHA256", "MIRRORS", "default_cache_dir"]

IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# (split, part) -> the standard file name without ".gz"
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

# SHA-256 of the four standard archives (as published by torchvision, TensorFlow Datasets and
# others; the same bytes on every mirror below).
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def default_cache_dir() -> Path:
    """``~/.cache/fnn/mnist``: where ``load_mnist`` looks for and downloads the files."""
    return Path.home() / ".cache" / "fnn" / "mnist"


# ----------------------------------------------------------------------------- IDX

def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"read_idx: {path} is not a readable gzip file (corrupt or "
                             f"truncated: {e})") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw, or gzip-compressed: detected from its first bytes).

    Returns an array of the file's shape ``(d1, ..., d_ndim)`` in the native byte order of
    its type (uint8, int8, int16, int32, float32 or float64). Raises ``ValueError`` naming
    the file when the magic number, the type code or the data length is wrong (a truncated
    or corrupt file), ``FileNotFoundError`` when there is no file.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise ValueError(f"read_idx: {path} is too short for an IDX header ({len(buf)} bytes)")
    zero, code, ndim = buf[:2], buf[2], buf[3]
    if zero != b"\x00\x00" or code not in IDX_TYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file: magic number {buf[:4].hex()} "
                         f"should be 0000TTNN with type TT in "
                         f"{sorted(f'{c:02x}' for c in IDX_TYPES)}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(f"read_idx: {path} is truncated: its header declares {ndim} dimensions "
                         f"but the file has only {len(buf)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(buf, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(buf) - header != expected:
        raise ValueError(f"read_idx: {path} is corrupt or truncated: shape {shape} of "
                         f"{dtype.name} needs {expected} data bytes, the file has "
                         f"{len(buf) - header}")
    data = np.frombuffer(buf, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


# ----------------------------------------------------------------------------- download

def _fetch(url: str) -> bytes:
    """GET ``url`` (the one place that touches the network; tests replace it)."""
    import urllib.request
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def _download(name: str, cache_dir: Path) -> Path:
    """Fetch ``name`` from the first mirror whose bytes match SHA256[name]; write atomically."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        try:
            payload = _fetch(mirror + name)
        except Exception as e:  # network errors of any kind: try the next mirror
            errors.append(f"{mirror}{name}: {e}")
            continue
        digest = hashlib.sha256(payload).hexdigest()
        if digest != SHA256[name]:
            errors.append(f"{mirror}{name}: SHA-256 {digest} does not match {SHA256[name]}")
            continue
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=name, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, cache_dir / name)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return cache_dir / name
    raise OSError(f"load_mnist: could not download {name}:\n  " + "\n  ".join(errors))


# ----------------------------------------------------------------------------- load

def _find(stem: str, places: list[Path]) -> Path | None:
    for place in places:
        for name in (stem + ".gz", stem):
            if (place / name).is_file():
                return place / name
    return None


def load_mnist(directory=None, *, download: bool = False, cache_dir=None) -> Split:
    """MNIST as ``Split(x_train, y_train, x_test, y_test)``.

    x: (N, 28, 28, 1) float32 = pixel / 255 in [0, 1] (NHWC); y: (N,) int32 in 0..9;
    N = 60000 train, 10000 test (the official split).

    Each of the four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each ``.gz`` or uncompressed) is
    looked for in ``directory`` (if given), then in ``cache_dir`` (default
    :func:`default_cache_dir`, ``~/.cache/fnn/mnist``). With ``download=True`` missing files
    are downloaded into ``cache_dir`` and verified against :data:`SHA256`.

    Raises ``FileNotFoundError`` naming the missing files (and suggesting download=True),
    ``ValueError`` naming a corrupt, truncated or inconsistent file.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    places = ([Path(directory).expanduser()] if directory is not None else []) + [cache]
    if directory is not None and not Path(directory).expanduser().is_dir() and not download:
        raise FileNotFoundError(f"load_mnist: directory {directory} does not exist")
    paths = {}
    missing = []
    for key, stem in FILES.items():
        found = _find(stem, places)
        if found is None and download:
            found = _download(stem + ".gz", cache)
        if found is None:
            missing.append(stem)
        paths[key] = found
    if missing:
        raise FileNotFoundError(
            f"load_mnist: missing MNIST file(s) {', '.join(m + '[.gz]' for m in missing)} in "
            f"{' or '.join(str(p) for p in places)}; expected the four standard files "
            f"{', '.join(s + '.gz' for s in FILES.values())} (or uncompressed). "
            f"Pass download=True to fetch them into {cache}")

    arrays = {}
    for (split, part), path in paths.items():
        a = read_idx(path)
        want_ndim = 3 if part == "images" else 1
        if a.dtype != np.uint8 or a.ndim != want_ndim or (part == "images" and a.shape[1:] != (28, 28)):
            raise ValueError(f"load_mnist: {path} should hold uint8 "
                             f"{'images (N, 28, 28)' if part == 'images' else 'labels (N,)'}, "
                             f"got {a.dtype.name} of shape {a.shape}")
        if part == "labels" and a.size and a.max() > 9:
            raise ValueError(f"load_mnist: {path} has labels outside 0..9 (max {a.max()})")
        arrays[split, part] = a
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[split, "images"]), len(arrays[split, "labels"])
        if n_img != n_lab:
            raise ValueError(f"load_mnist: {paths[split, 'images']} has {n_img} images but "
                             f"{paths[split, 'labels']} has {n_lab} labels")

    def images(split):
        return (arrays[split, "images"][..., None] / np.float32(255)).astype(np.float32)

    def labels(split):
        return arrays[split, "labels"].astype(np.int32)

    return Split(images("train"), labels("train"), images("test"), labels("test"))
