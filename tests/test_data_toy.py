"""Toy sequence tasks of the rank-coding paper: labels and ideal steps match their definition."""

import numpy as np
import pytest

from neurocode.data.toy import first_run_end, noise_vs_signal, sequence_spotting


@pytest.mark.parametrize("balanced", [True, False])
def test_sequence_spotting_labels_match_definition(balanced):
    d = sequence_spotting(300, seed=5, balanced=balanced)
    assert d.x.shape == (300, 25, 1) and d.x.dtype == np.float32
    for bits, y, ideal in zip(d.x[:, :, 0].astype(int), d.y, d.ideal_step):
        s = "".join(map(str, bits))
        hits = [k for k in (s.find("00000"), s.find("11111")) if k >= 0]
        assert y == bool(hits)
        assert ideal == (min(hits) + 4 if hits else 24)
    if balanced:
        assert abs(d.y.mean() - 0.5) <= 1 / 300
    else:                                   # i.i.d. fair bits: P(run of 5 in 25) ~ 0.56
        assert 0.45 < d.y.mean() < 0.68


def test_sequence_spotting_is_seeded():
    a, b = sequence_spotting(50, seed=1), sequence_spotting(50, seed=1)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, sequence_spotting(50, seed=2).x)


def test_first_run_end_other_lengths():
    np.testing.assert_array_equal(first_run_end(np.array([[1, 1, 0, 0, 0]]), run=3), [4])
    np.testing.assert_array_equal(first_run_end(np.array([[1, 0]]), run=1), [0])


def test_noise_vs_signal_definition():
    d = noise_vs_signal(4000, seed=2)
    assert d.x.shape == (4000, 40, 1)
    x = d.x[:, :, 0].astype(np.float64)
    # residual after removing the class's ±0.05 has per-sequence std in [0.05, 0.25]
    resid = x - np.where(d.y == 1, 0.05, -0.05)[:, None]
    assert abs(resid.mean()) < 2e-3
    std = resid.std(axis=1, ddof=1)
    assert 0.035 < std.min() and std.max() < 0.33
    assert abs(std.mean() - 0.15) < 0.005
    assert abs(d.y.mean() - 0.5) < 0.03
    # the sign of the sequence mean agrees with the label far above chance
    assert ((x.mean(1) > 0) == d.y).mean() > 0.9
    assert (d.ideal_step == 39).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive integer"):
        sequence_spotting(0)
    with pytest.raises(ValueError, match="run length must lie"):
        sequence_spotting(5, run=30)
    with pytest.raises(ValueError, match="noise range"):
        noise_vs_signal(5, noise=(0.3, 0.1))
    with pytest.raises(ValueError, match="amplitude must be > 0"):
        noise_vs_signal(5, amplitude=0)
