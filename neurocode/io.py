"""Atomic file writes: a temp file in the same folder, then ``os.replace``.

Nothing already written is lost if a run is killed mid-write. The file gets the
permissions the user's umask gives a new file (``mkstemp`` alone would leave it 0600).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_json(d / "m.json", {"accuracy": 0.9}).read_text()
'{\\n  "accuracy": 0.9\\n}'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from neurocode.errors import ConfigError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def current_umask():
    """The process's umask, read without changing it (``/proc``), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output_dir(path, produces, overwrite=False, option="--out"):
    """Refuse, before any work, an output folder that is a file or already holds any of ``produces``.

    ``overwrite`` allows replacing earlier results; ``option`` names the setting in messages.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; give a folder")
    existing = [name for name in produces if (path / name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{option} {path} already holds results of another run ({', '.join(existing)}); "
                          "give another folder, or pass --overwrite to replace them")
    return path


def check_output_file(path, overwrite=False, option="--output"):
    """Refuse, before any work, an output file that is a folder or exists (unless ``overwrite``)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path} exists; give another name, or pass --overwrite to replace it")
    return path


def write_text(path, text):
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path, obj):
    """Write ``obj`` as indented JSON atomically (numpy scalars become floats)."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default))


def _json_default(obj):
    import numpy as np
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)          # a JSON string is a valid TOML basic string
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data):
    """TOML text of nested dicts of strings, numbers, booleans and lists (the one TOML writer).

    ``None`` values are left out (TOML has no null: a missing key means "not set").

    >>> print(to_toml({"name": "x", "n": None, "neuron": {"equations": "dv/dt = -v/tau : 1"}}))
    name = "x"
    <BLANKLINE>
    [neuron]
    equations = "dv/dt = -v/tau : 1"
    <BLANKLINE>
    """
    lines = []

    def table(prefix, d):
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in d.items() if v is not None and not isinstance(v, dict))
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines).lstrip("\n") + "\n"
