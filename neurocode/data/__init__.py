"""Datasets and spike encodings.

``load_images(name, split)`` returns flattened images in [0, 1] and integer labels;
``latency_encode`` turns pixel intensities into time-to-first-spike input times.
"""

from neurocode.data.encoding import latency_encode
from neurocode.data.images import DATASETS, DatasetMissingError, load_images

__all__ = ["DATASETS", "DatasetMissingError", "latency_encode", "load_images"]
