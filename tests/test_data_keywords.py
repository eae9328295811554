"""Spoken keywords: espeak-ng synthesis on a handful of clips, speaker split, GSC layout."""

import hashlib
import shutil

import numpy as np
import pytest

from neurocode.data import keywords as kw

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


@needs_espeak
def test_synthesise_and_load_split_by_voice(tmp_path):
    voices = ["en-us+m1", "en-gb+f2"]            # first is a test speaker at 0.5, second not
    root = kw.synthesise(tmp_path, words=("yes", "stop"), voice_names=voices,
                         pitches=(50,), speeds=(120, 200), workers=4)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    assert files == [f"{w}/{s}_nohash_{k}.wav" for w in ("stop", "yes")
                     for s in ("en-gb-f2", "en-us-m1") for k in (0, 1)]
    assert not list(root.rglob("*.tmp*"))          # atomic writes leave no temporaries
    import soundfile as sf
    fast, _ = sf.read(root / "stop" / "en-gb-f2_nohash_1.wav")
    slow, sr = sf.read(root / "stop" / "en-gb-f2_nohash_0.wav")
    assert 0.1 * sr < fast.size < slow.size         # a faster speaker says it in less time
    mtime = (root / "yes" / "en-us-m1_nohash_0.wav").stat().st_mtime_ns
    kw.synthesise(root, words=("yes", "stop"), voice_names=voices, pitches=(50,), speeds=(120, 200))
    assert (root / "yes" / "en-us-m1_nohash_0.wav").stat().st_mtime_ns == mtime   # cached
    args = dict(root=root, words=("yes", "stop"), test_fraction=0.5, seed=1)
    train, test = kw.load_keywords("train", **args), kw.load_keywords("test", **args)
    assert set(train.speakers) == {"en-gb-f2"} and set(test.speakers) == {"en-us-m1"}
    assert train.x.shape == (4, 51, 40) and train.x.dtype == np.float32
    assert sorted(train.y.tolist()) == [0, 0, 1, 1]
    again = kw.load_keywords("train", **args)
    np.testing.assert_array_equal(again.x, train.x)                 # noise is seeded
    clean = kw.load_keywords("train", snr_db=None, **args)
    assert not np.allclose(clean.x, train.x)
    mfcc = kw.load_keywords("train", features="mfcc", n_features=13, **args)
    assert mfcc.x.shape == (4, 51, 13)


def test_reads_speech_commands_layout(tmp_path):
    import soundfile as sf
    sr = kw.SAMPLE_RATE
    t = np.arange(sr // 2) / sr
    for word, f0 in (("yes", 300.0), ("no", 900.0)):
        (tmp_path / word).mkdir()
        for spk in ("0a1b2c3d", "ffee0011"):
            for k in range(2):
                sf.write(tmp_path / word / f"{spk}_nohash_{k}.wav", 0.3 * np.sin(2 * np.pi * f0 * t), sr)
    (tmp_path / "_background_noise_").mkdir()
    sf.write(tmp_path / "_background_noise_" / "white.wav",
             0.1 * np.random.default_rng(0).standard_normal(3 * sr), sr)
    (tmp_path / "testing_list.txt").write_text("yes/ffee0011_nohash_0.wav\nno/ffee0011_nohash_1.wav\n")
    args = dict(root=tmp_path, words=("yes", "no"), snr_db=(20.0, 20.0))
    test, train = kw.load_keywords("test", **args), kw.load_keywords("train", **args)
    assert test.y.tolist() == [0, 1] and len(train.y) == 6
    # the 900 Hz word has its energy in higher mel bands than the 300 Hz word
    peak = test.x.mean(1).argmax(-1)
    assert peak[1] > peak[0]


def test_hash_split_rule():
    spk = ["a", "b", "c", "d"]
    expected = [int(hashlib.sha1(s.encode()).hexdigest(), 16) % 1000 < 300 for s in spk]
    assert kw.is_test_speaker(spk, 0.3).tolist() == expected


def test_errors(tmp_path):
    with pytest.raises(kw.KeywordDataError, match="not a Speech Commands clip name"):
        kw.parse_clip_name("yes.wav")
    with pytest.raises(kw.KeywordDataError, match="no clips"):
        kw.list_clips(tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        kw.load_keywords("valid", root=tmp_path)
    with pytest.raises(ValueError, match="'logmel' or 'mfcc'"):
        kw.load_keywords("train", root=tmp_path, features="spectrogram")
    with pytest.raises(ValueError, match=r"pitch must lie in \[0, 99\]"):
        kw.synthesise(tmp_path, pitches=(150,))
    with pytest.raises(ValueError, match="test_fraction"):
        kw.is_test_speaker(["a"], 1.5)
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(kw.KeywordDataError, match="holds no keyword folders"):
        kw.load_keywords("train", root=tmp_path)
