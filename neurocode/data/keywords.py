"""Spoken keywords: the ten Speech Commands core words, synthesised with espeak-ng or read
from the Google Speech Commands folders.

Synthesis (:func:`synthesise`) speaks each word with many *voices* (an espeak-ng English
accent combined with a voice variant, e.g. ``en-gb-scotland+f3``) at several pitches
(``-p``) and speeds (``-s``), in parallel, and caches the WAV files once (atomic writes) in
the Speech Commands layout ``<root>/<word>/<speaker>_nohash_<k>.wav``, where the *speaker*
is the voice. :func:`load_keywords` reads that layout — synthesised or the real data set —
adds background noise and returns log-mel (or MFCC) feature sequences computed with librosa.
Train and test are split **by speaker** (voice), never by clip.

>>> WORDS[:4]
('yes', 'no', 'up', 'down')
>>> voice_speaker("en-gb-x-rp+f2")
'en-gb-x-rp-f2'
>>> parse_clip_name("en-us-m3_nohash_2.wav")
('en-us-m3', 2)
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocode.errors import NeurocodeError
from neurocode.io import atomic_path

log = logging.getLogger(__name__)

#: The ten Speech Commands core words, in label order.
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: espeak-ng English accents (built-in voices, no MBROLA needed).
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
#: espeak-ng voice variants combined with each accent.
VARIANTS = ("m1", "m2", "m3", "m5", "f1", "f2", "f3", "f4")
PITCHES = (35, 65)
SPEEDS = (130, 175)
SAMPLE_RATE = 16000
_CLIP = re.compile(r"^(?P<speaker>[^_]+)_nohash_(?P<k>\d+)\.wav$")


class KeywordDataError(NeurocodeError, RuntimeError):
    """Keyword audio cannot be synthesised or found; the message says what to install or set."""


def default_root():
    """Cache folder for synthesised keywords: ``$NEUROCODE_CACHE`` or ``~/.cache/neurocode``,
    then ``keywords-espeak``."""
    base = os.environ.get("NEUROCODE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "neurocode")
    return Path(base) / "keywords-espeak"


def voice_speaker(voice):
    """Speaker id of an espeak-ng voice (no ``_`` or ``+``, so clip names parse)."""
    return re.sub(r"[_+]", "-", voice)


def parse_clip_name(name):
    """``(speaker, k)`` from a Speech Commands file name ``<speaker>_nohash_<k>.wav``."""
    m = _CLIP.match(name)
    if not m:
        raise KeywordDataError(f"'{name}' is not a Speech Commands clip name "
                               "'<speaker>_nohash_<k>.wav'")
    return m["speaker"], int(m["k"])


def voices(accents=ACCENTS, variants=VARIANTS):
    """All ``accent+variant`` espeak-ng voice names."""
    return [f"{a}+{v}" for a, v in itertools.product(accents, variants)]


def _espeak():
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise KeywordDataError("espeak-ng is not installed; install Debian's 'espeak-ng' package "
                               "or pass root= a folder with the Google Speech Commands data")
    return exe


def _speak(exe, word, voice, pitch, speed, path):
    if path.exists():
        return False
    try:
        with atomic_path(path) as tmp:
            subprocess.run([exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(tmp), word],
                           check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise KeywordDataError(f"espeak-ng failed for voice '{voice}', word '{word}': "
                               f"{exc.stderr.decode(errors='replace').strip()}") from exc
    return True


def synthesise(root=None, words=WORDS, voice_names=None, pitches=PITCHES, speeds=SPEEDS,
               workers=None, progress=False):
    """Speak every word with every voice, pitch and speed; cache as Speech Commands WAVs.

    Clips already in the cache are skipped, so a second call costs nothing.

    Parameters
    ----------
    root : path, optional
        Output folder (default :func:`default_root`).
    words : sequence of str
    voice_names : sequence of str, optional
        espeak-ng voices (default :func:`voices`: 8 accents x 8 variants).
    pitches : sequence of int
        espeak-ng pitch values (0-99).
    speeds : sequence of int
        Speaking rates in words per minute.
    workers : int, optional
        Parallel espeak-ng processes (default: 2 x CPU count).

    Returns
    -------
    pathlib.Path
        The root folder.
    """
    exe = _espeak()
    root = Path(root) if root is not None else default_root()
    voice_names = list(voice_names) if voice_names is not None else voices()
    if not words or not voice_names or not pitches or not speeds:
        raise ValueError("synthesise() needs at least one word, voice, pitch and speed")
    bad = [p for p in pitches if not 0 <= p <= 99]
    if bad:
        raise ValueError(f"espeak-ng pitch must lie in [0, 99], got {bad}")
    jobs = []
    for word in words:
        (root / word).mkdir(parents=True, exist_ok=True)
        for voice in voice_names:
            for k, (pitch, speed) in enumerate(itertools.product(pitches, speeds)):
                path = root / word / f"{voice_speaker(voice)}_nohash_{k}.wav"
                jobs.append((exe, word, voice, pitch, speed, path))
    workers = workers or 2 * (os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda j: _speak(*j), jobs)
        if progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(jobs), desc="espeak-ng")
        made = sum(results)
    log.info("keywords: %d clips synthesised, %d cached, in %s", made, len(jobs) - made, root)
    return root


def list_clips(root, words=WORDS):
    """``(paths, labels, speakers)`` of the clips under ``root`` in Speech Commands layout."""
    root = Path(root)
    paths, labels, speakers = [], [], []
    for label, word in enumerate(words):
        for path in sorted((root / word).glob("*.wav")):
            speaker, _ = parse_clip_name(path.name)
            paths.append(path)
            labels.append(label)
            speakers.append(speaker)
    if not paths:
        raise KeywordDataError(f"no clips '<word>/<speaker>_nohash_<k>.wav' for {list(words)} "
                               f"under {root}")
    return paths, np.asarray(labels, dtype=np.int64), np.asarray(speakers)


def is_test_speaker(speakers, test_fraction=0.2):
    """Speaker-level split by hash (as the Speech Commands data set does): a speaker is in the
    test split when the SHA-1 of its id, modulo 1000, falls below ``1000 * test_fraction``."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    h = np.array([int(hashlib.sha1(s.encode()).hexdigest(), 16) % 1000 for s in speakers])
    return h < 1000 * test_fraction


@dataclass
class KeywordData:
    """Feature sequences ``x`` [N, frames, features] (float32), labels ``y`` [N], ``speakers``."""

    x: np.ndarray
    y: np.ndarray
    speakers: np.ndarray
    words: tuple = WORDS
    hop_s: float = 0.02

    def tensors(self):
        import torch
        return torch.from_numpy(self.x), torch.from_numpy(self.y)


def _read(path, n):
    import librosa
    from audioread.exceptions import DecodeError
    try:
        audio, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
    except (OSError, EOFError, RuntimeError, ValueError, DecodeError) as exc:   # soundfile's errors are RuntimeError
        raise KeywordDataError(f"{path} is not a readable audio clip ({type(exc).__name__}: {exc}); delete it, "
                               "or synthesise the clips again (neurocode.data.keywords.synthesise)") from None
    audio = audio[:n]
    out = np.zeros(n, dtype=np.float32)
    start = (n - audio.size) // 2
    out[start:start + audio.size] = audio
    return out


def _noise(rng, n, background):
    """One noise clip: a random stretch of a background recording, or coloured noise."""
    if background:
        src = background[rng.integers(len(background))]
        if src.size > n:
            start = rng.integers(src.size - n)
            return src[start:start + n]
    white = rng.standard_normal(n)
    # 1/f^a noise, a uniform in [0, 2] (white to brown), by spectral shaping
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    return np.fft.irfft(spec / f ** (rng.uniform(0, 2) / 2), n)


def load_keywords(split, root=None, features="logmel", n_features=40, hop_s=0.02,
                  snr_db=(5.0, 20.0), test_fraction=0.2, seed=0, synthesise_missing=True,
                  words=WORDS, workers=None):
    """Keyword clips of one split as feature sequences.

    Parameters
    ----------
    split : {"train", "test"}
    root : path, optional
        A Speech Commands folder (real data: ``testing_list.txt`` is used when present,
        ``_background_noise_/*.wav`` as noise), or the synthesis cache (default
        :func:`default_root`; synthesised on first use if ``synthesise_missing``).
    features : {"logmel", "mfcc"}
    n_features : int
        Mel bands (log-mel) or coefficients (MFCC).
    hop_s : float
        Frame hop in seconds (window 25 ms); 1 s clips give ``1/hop_s + 1`` frames.
    snr_db : (float, float) or None
        Signal-to-noise ratio range of the added background noise (dB); ``None``: no noise.
    test_fraction : float
        Share of speakers in the test split (hash split) when no ``testing_list.txt``.
    seed : int
        Seeds the noise (each clip's noise depends on ``seed`` and its index).
    """
    import librosa
    if split not in ("train", "test"):
        raise ValueError(f"unknown split '{split}'; choose 'train' or 'test'")
    if features not in ("logmel", "mfcc"):
        raise ValueError(f"features must be 'logmel' or 'mfcc', got {features!r}")
    root = Path(root) if root is not None else default_root()
    if synthesise_missing and not any((root / w).is_dir() for w in words):
        if root != default_root() and root.exists() and any(root.iterdir()):
            raise KeywordDataError(f"{root} holds no keyword folders {list(words)}")
        synthesise(root, words=words, workers=workers)
    paths, labels, speakers = list_clips(root, words)
    listing = root / "testing_list.txt"
    if listing.exists():
        test_names = set(listing.read_text().split())
        test = np.array([f"{p.parent.name}/{p.name}" in test_names for p in paths])
    else:
        test = is_test_speaker(speakers, test_fraction)
    keep = np.flatnonzero(test if split == "test" else ~test)
    if keep.size == 0:
        raise KeywordDataError(f"split '{split}' is empty under {root}")
    n = SAMPLE_RATE
    background = [_read(p, 60 * n) for p in sorted((root / "_background_noise_").glob("*.wav"))]
    background = [b[np.abs(b).cumsum() > 0] for b in background]
    workers = workers or 2 * (os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        audio = np.stack(list(pool.map(lambda k: _read(paths[k], n), keep)))
    if snr_db is not None:
        lo, hi = snr_db
        for row, k in enumerate(keep):
            rng = np.random.default_rng([seed, int(k)])
            noise = _noise(rng, n, background)
            p_sig = np.mean(audio[row] ** 2) + 1e-12
            p_noise = np.mean(noise ** 2) + 1e-12
            snr = rng.uniform(lo, hi)
            audio[row] += noise * np.sqrt(p_sig / (p_noise * 10 ** (snr / 10)))
    hop = int(round(hop_s * SAMPLE_RATE))
    kw = dict(sr=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=hop)
    if features == "logmel":
        mel = librosa.feature.melspectrogram(y=audio, n_mels=n_features, **kw)
        feats = np.log(mel + 1e-6)
    else:
        feats = librosa.feature.mfcc(y=audio, n_mfcc=n_features, n_mels=max(40, n_features), **kw)
    x = np.ascontiguousarray(np.swapaxes(feats, 1, 2), dtype=np.float32)
    log.info("keywords/%s: %d clips, %d speakers, features %s", split, keep.size,
             len(set(speakers[keep])), x.shape[1:])
    return KeywordData(x, labels[keep], speakers[keep], tuple(words), hop / SAMPLE_RATE)
