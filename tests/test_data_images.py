"""Image loaders on the real files, and the latency encoding."""

import gzip

import numpy as np
import pytest

from neurocode.data import DatasetMissingError, latency_encode, load_images
from neurocode.data.images import FASHION_MNIST_DIR

needs_fashion = pytest.mark.skipif(not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                                   reason="dataset-fashion-mnist is not installed")


@needs_fashion
def test_fashion_mnist_test_split_is_full_and_balanced():
    x, y = load_images("fashion_mnist", "test")
    assert x.shape == (10000, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 1000))


def test_mnist5k_split_is_fixed_disjoint_and_stratified():
    xtr, ytr = load_images("mnist5k", "train")
    xte, yte = load_images("mnist5k", "test")
    assert xtr.shape == (4000, 784) and xte.shape == (1000, 784)
    np.testing.assert_array_equal(np.bincount(yte), np.full(10, 100))
    # no test image appears in the training split
    train_rows = {row.tobytes() for row in xtr}
    assert sum(row.tobytes() in train_rows for row in xte) <= 5   # the file has a few duplicates
    xte2, yte2 = load_images("mnist5k", "test")
    np.testing.assert_array_equal(yte, yte2)


def test_mnist_reads_idx_files_from_a_folder(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    header = bytes([0, 0, 0x08, 3]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 0x08, 1]) + (2).to_bytes(4, "big")
                                                      + bytes([3, 7]))
    x, y = load_images("mnist", "test", root=tmp_path)
    np.testing.assert_allclose(x * 255, images.reshape(2, 784))
    np.testing.assert_array_equal(y, [3, 7])


def test_missing_dataset_names_the_install_command(tmp_path):
    with pytest.raises(DatasetMissingError, match="give the folder"):
        load_images("fashion_mnist", "train", root=tmp_path)
    with pytest.raises(DatasetMissingError, match="needs root=FOLDER"):
        load_images("mnist", "train")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_images("cifar", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_images("mnist5k", "valid")


def test_missing_default_folder_says_apt_get(monkeypatch, tmp_path):
    monkeypatch.setattr("neurocode.data.images.FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DatasetMissingError, match="sudo apt-get install dataset-fashion-mnist"):
        load_images("fashion_mnist", "test")


def test_latency_encoding_is_linear_and_brighter_is_earlier():
    x = np.linspace(0, 1, 11)
    t = latency_encode(x, t_max=2.0)
    np.testing.assert_allclose(t, 2.0 * (1 - x))
    assert np.all(np.diff(t) < 0)
    with pytest.raises(ValueError, match="must lie in"):
        latency_encode(np.array([1.5]))
    with pytest.raises(ValueError, match="t_max must be > 0"):
        latency_encode(x, t_max=0)
