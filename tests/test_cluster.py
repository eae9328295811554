"""A real Dask cluster on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes.

A sweep through it gives the LocalCluster's rows; a worker killed mid-sweep still gives
every row once. The processes are always stopped, and the tests check that they are.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from neurocode.cluster import client, config_key, sweep

#: Slow lane: starts dask scheduler and worker processes (about a minute); run by make test,
#: not make test-fast.
pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
CONFIGS = [{"x": x, "sleep": 0.4} for x in range(8)]


def square(config):
    """A sweep task: slow enough to be caught running, the same row every time."""
    time.sleep(config["sleep"])
    return {"x": config["x"], "y": config["x"] ** 2, "pid": os.getpid()}


def _start(args, log):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS.parent), str(TESTS)]))
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def dask_cluster(tmp_path):
    """``(address, scheduler process, [worker processes])`` of a fresh cluster on random free ports."""
    scheduler_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)], log)]
    try:
        deadline = time.monotonic() + 30
        while not scheduler_file.is_file():
            assert time.monotonic() < deadline and procs[0].poll() is None, "dask scheduler did not start"
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for k in range(2):
            procs.append(_start(["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                                 "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                 "--name", f"w{k}", "--death-timeout", "30"], log))
        yield address, procs[0], procs[1:]
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()
        assert all(proc.poll() is not None for proc in procs)


def _table(rows):
    return sorted((r["key"], r["x"], r["y"]) for r in rows)


def test_sweep_on_a_scheduler_gives_the_local_cluster_rows(dask_cluster, tmp_path):
    address, _, _ = dask_cluster
    t0 = time.monotonic()
    with client(address) as c:
        c.wait_for_workers(2, timeout=30)
        remote = sweep(c, square, CONFIGS + CONFIGS[:2], tmp_path / "remote")
        assert len({r["pid"] for r in remote}) == 2               # both workers took tasks
    with client(workers=2) as c:
        local = sweep(c, square, CONFIGS, tmp_path / "local")
    assert _table(remote) == _table(local)
    assert [r["x"] for r in remote] == list(range(8))            # config order, repeats once
    assert sorted(p.stem for p in (tmp_path / "remote").glob("*.json")) == sorted(config_key(c) for c in CONFIGS)
    assert time.monotonic() - t0 < 60


def test_worker_killed_mid_sweep_still_gives_each_row_once(dask_cluster, tmp_path):
    address, _, workers = dask_cluster
    rows_dir = tmp_path / "rows"
    done_at_kill = []

    def kill_when_running():
        deadline = time.monotonic() + 30
        while len(list(rows_dir.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        done_at_kill.append(len(list(rows_dir.glob("*.json"))))
        os.killpg(workers[0].pid, signal.SIGKILL)

    t0 = time.monotonic()
    with client(address) as c:
        c.wait_for_workers(2, timeout=30)
        killer = threading.Thread(target=kill_when_running)
        killer.start()
        rows = sweep(c, square, CONFIGS, rows_dir)
        killer.join()
        assert len(c.scheduler_info()["workers"]) == 1
    assert workers[0].wait(timeout=10) == -signal.SIGKILL
    assert 2 <= done_at_kill[0] < len(CONFIGS)                    # killed mid-sweep
    assert len(rows) == len(CONFIGS) and len({r["key"] for r in rows}) == len(CONFIGS)
    assert [(r["x"], r["y"]) for r in rows] == [(x, x * x) for x in range(8)]
    assert len(list(rows_dir.glob("*.json"))) == len(CONFIGS)
    assert not list(rows_dir.glob(".*"))                           # no half-written row files
    assert time.monotonic() - t0 < 60


def test_a_row_file_is_reused_not_recomputed(tmp_path):
    from neurocode.cluster import run_keyed

    first = run_keyed(square, {"x": 3, "sleep": 0.0}, tmp_path)
    again = run_keyed(lambda cfg: pytest.fail("recomputed"), {"sleep": 0.0, "x": 3}, tmp_path)
    assert again == first and first["y"] == 9


def test_validation_chunks_on_a_scheduler_give_the_local_report(dask_cluster):
    from neurocode.torch.ttfs import TTFSNetwork
    from neurocode.validate import validate_spec

    address, _, _ = dask_cluster
    spec = TTFSNetwork((20, 8, 3), seed=1).to_spec(dt=0.01e-3)
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 20)), rng.integers(0, 3, 12)
    local = validate_spec(spec, x, y, device="runtime", chunk=4)
    remote = validate_spec(spec, x, y, device="runtime", chunk=4, scheduler=address)
    assert remote["presentation"]["n_chunks"] == 3
    np.testing.assert_array_equal(remote["_answers"]["brian2"], local["_answers"]["brian2"])
    for key in ("accuracy_brian2", "accuracy_torch", "agreement"):
        assert remote[key] == local[key]
    assert remote["layers"] == local["layers"]
