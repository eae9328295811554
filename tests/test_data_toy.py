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
        # a negative is decided once even repeating the last bit to the end gives no run
        undecided = [t for t in range(25) if "00000" in s[:t + 1] + s[t] * (24 - t)
                     or "11111" in s[:t + 1] + s[t] * (24 - t)]
        assert ideal == (min(hits) + 4 if hits else max(undecided, default=-1) + 1)
        assert y or 21 <= ideal <= 24
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


def test_fresh_batches_are_deterministic_and_resume_continues_the_stream():
    import torch
    from neurocode.data.toy import FreshBatches
    s = FreshBatches("spotting", batch_size=16, steps_per_epoch=5, seed=3)
    assert len(s) == 80
    a = [s.draw(e, k) for e in range(2) for k in range(5)]
    again = FreshBatches("spotting", batch_size=16, steps_per_epoch=5, seed=3)
    # a run resumed at epoch 1, step 2 draws exactly the batches the uninterrupted one drew
    for (x, y), (xr, yr) in zip(a[7:], [again.draw(1, k) for k in range(2, 5)]):
        assert torch.equal(x, xr) and torch.equal(y, yr)
    # batch k is the same whatever the epoch split
    other = FreshBatches("spotting", batch_size=16, steps_per_epoch=2, seed=3)
    assert torch.equal(other.draw(3, 1)[0], a[7][0])
    xs = torch.stack([x for x, _ in a])
    assert all(not torch.equal(xs[i], xs[j]) for i in range(10) for j in range(i))     # fresh every step
    assert not torch.equal(FreshBatches("spotting", 16, 5, seed=4).draw(0, 0)[0], a[0][0])
    test = s.test(200)
    assert np.array_equal(test.x, again.test(200).x) and abs(test.y.mean() - 0.5) <= 1 / 200
    train = {tuple(r) for x, _ in a for r in x[:, :, 0].int().tolist()}
    assert len(train & {tuple(r) for r in test.x[:, :, 0].astype(int).tolist()}) <= 2   # its own stream
    nz = FreshBatches("noise", batch_size=8, steps_per_epoch=1, seed=0)
    assert nz.draw(0, 0)[0].shape == (8, 40, 1)
    with pytest.raises(ValueError, match="unknown toy task"):
        FreshBatches("mnist", 8, 1)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
        FreshBatches("noise", 8, 0)
