"""Temporally encoded images: each pixel becomes one binary input spike, brightest first.

An image of ``D`` pixels in [0, 1] is presented over ``steps`` time steps as ``D`` binary
inputs. A pixel of intensity ``p > 0`` spikes once, at step ``floor((1 - p) * steps)``
(clipped to ``steps - 1``): a white pixel spikes at step 0, dim pixels late; black pixels
never spike. This is the rank-coding authors' MNIST encoding (20 steps, 784 inputs).

Encodings are stored as one ``int8`` spike step per pixel (-1 = silent) and expanded to the
dense ``[batch, steps, D]`` tensor one batch at a time.

>>> import numpy as np
>>> spike_steps(np.array([[1.0, 0.5, 0.01, 0.0]]), steps=20)
array([[ 0, 10, 19, -1]], dtype=int8)
>>> d = TemporalImages(np.array([[1.0, 0.5, 0.0]], dtype=np.float32), np.array([3]), steps=4)
>>> x, y = d.batch(np.array([0]))
>>> x[0].int().tolist()
[[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]
"""

from __future__ import annotations

import numpy as np
import torch

from neurocode.errors import DatasetError


def spike_steps(images, steps=20):
    """Spike step per pixel (``int8``, -1 where the pixel is black); see module docstring."""
    images = np.asarray(images, dtype=np.float64)
    if not 1 <= steps <= 127:
        raise ValueError(f"steps must lie in [1, 127], got {steps}")
    if images.size and not (images.min() >= 0 and images.max() <= 1):      # NaN fails too
        raise DatasetError("pixel intensities must lie in [0, 1]; divide 8-bit images by 255")
    t = np.minimum(np.floor((1.0 - images) * steps), steps - 1)
    return np.where(images > 0, t, -1).astype(np.int8)


class TemporalImages:
    """A labelled set of temporally encoded images (see module docstring).

    Parameters
    ----------
    images : array_like
        ``[N, D]`` intensities in [0, 1].
    labels : array_like
        ``[N]`` integer labels.
    steps : int
        Time steps of the presentation (20).
    """

    def __init__(self, images, labels, steps=20):
        images = np.asarray(images)
        labels = np.asarray(labels, dtype=np.int64)
        if images.ndim != 2 or labels.shape != (images.shape[0],):
            raise ValueError(f"images must be [N, D] and labels [N]; got {images.shape} and {labels.shape}")
        self.steps = int(steps)
        self.times = torch.from_numpy(spike_steps(images, steps))
        self.labels = torch.from_numpy(labels)
        self.n_classes = int(labels.max()) + 1 if labels.size else 0

    def __len__(self):
        return self.labels.shape[0]

    @property
    def n_inputs(self):
        return self.times.shape[1]

    def batch(self, index):
        """Dense inputs ``[b, steps, D]`` (float32, 0/1) and labels ``[b]`` for rows ``index``."""
        index = torch.as_tensor(index, dtype=torch.long)
        t = self.times.index_select(0, index).long()
        x = (t[:, None, :] == torch.arange(self.steps)[None, :, None]).float()
        return x, self.labels.index_select(0, index)

    def input_spikes(self, dt):
        """Per-example ``(indices, times)`` of the input spikes in seconds, for a Brian2 run:
        pixel ``k`` spiking at step ``s`` gives a spike at ``s * dt``."""
        out = []
        for row in self.times.numpy():
            idx = np.flatnonzero(row >= 0)
            out.append((idx, row[idx].astype(np.float64) * dt))
        return out


def load_temporal(name="mnist5k", split="test", steps=20, root=None):
    """Load an image set (``neurocode.data.images``) as :class:`TemporalImages`.

    ``name`` is ``"mnist5k"`` (the MNIST-5k fixed split), ``"fashion_mnist"`` or ``"mnist"``.
    """
    from neurocode.data.images import load_images
    x, y = load_images(name, split, root=root)
    return TemporalImages(x, y, steps=steps)
