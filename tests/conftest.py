"""Shared fixtures: Brian2's device and preferences are reset around every test.

Brian2 keeps its device, ``defaultclock`` and preferences in module globals; a test
that changes them (or fails half-way through a standalone build) must not leak into
the next one (the same idea as Brian2's own ``conftest.py``).
"""

import pytest


@pytest.fixture(autouse=True)
def brian2_state():
    """Restore Brian2's preferences, device and ``defaultclock.dt`` after each test."""
    from brian2 import defaultclock, ms, prefs
    from brian2.devices.device import get_device, reset_device, runtime_device, set_device

    saved = dict(prefs.prefs)
    device = get_device()
    yield
    prefs.prefs.update(saved)
    if get_device() is not device:
        reset_device(device if device is not None else runtime_device)
    if get_device() is not runtime_device:
        set_device(runtime_device)
    defaultclock.dt = 0.1 * ms


@pytest.fixture(scope="session")
def standalone_cache(tmp_path_factory):
    """One folder for compiled standalone projects, shared by the tests of a session."""
    return tmp_path_factory.mktemp("neurocode_projects")
