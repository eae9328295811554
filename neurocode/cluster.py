"""Dask beyond one machine: one client helper and sweeps whose tasks may run twice.

:func:`client` connects to a running scheduler (``tcp://HOST:PORT``; started with
``dask scheduler`` and ``dask worker`` on any machines) or, without an address, starts a
``LocalCluster`` here. :func:`sweep` runs a function over many configurations: each
configuration's key is a hash of its JSON text, and its task writes its row atomically to
``rows/<key>.json`` and returns it; a task whose row file exists returns the stored row.
A task may run twice (Dask runs a lost worker's tasks again; a killed sweep is started
again) without repeating finished work or adding a row: the result has one row per key.

>>> config_key({"gamma": 0.1, "seed": 0}) == config_key({"seed": 0, "gamma": 0.1})
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from pathlib import Path

from neurocode.io import write_json

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def client(scheduler=None, workers=2, threads_per_worker=1, timeout=30):
    """A ``dask.distributed.Client``, closed (with its LocalCluster, if any) on exit.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``. Without one a
        ``LocalCluster`` of ``workers`` processes is started here.
    workers : int
        LocalCluster worker processes.
    threads_per_worker : int
        LocalCluster threads per worker (1: each task owns a core).
    timeout : float
        Seconds to wait for the scheduler to answer (s).
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout=timeout) as c:
            logger.info("Dask scheduler %s: %d workers", scheduler, len(c.scheduler_info()["workers"]))
            yield c
        return
    with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster, timeout=timeout) as c:
        yield c


def config_key(config):
    """The key of a JSON-able configuration: 16 hex digits of the SHA-256 of its sorted JSON."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_keyed(func, config, rows):
    """``func(config)`` as a row (dict) with its ``key``, stored in ``rows/<key>.json``; reused if there."""
    key = config_key(config)
    path = Path(rows) / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    row = dict(func(config), key=key)
    write_json(path, row)
    return row


def sweep(c, func, configs, rows, name="sweep"):
    """Run ``func`` over ``configs`` on the cluster of client ``c``; one row per distinct configuration.

    Parameters
    ----------
    c : dask.distributed.Client
    func : callable
        ``func(config) -> dict`` of JSON-able values, importable by the workers (a module
        function); it must give the same row when run again on the same configuration.
    configs : list of dict
        JSON-able configurations.
    rows : str or Path
        Folder for the row files: one the workers can write to, on a shared file system
        when they run on several machines (otherwise rows come back through the scheduler
        but only the machine that wrote a row file reuses it).
    name : str
        Prefix of the Dask task keys.

    Returns
    -------
    list of dict
        The rows in the order of ``configs`` (repeated configurations once), each with its ``key``.
    """
    Path(rows).mkdir(parents=True, exist_ok=True)
    unique = {config_key(cfg): cfg for cfg in configs}
    futures = [c.submit(run_keyed, func, cfg, str(rows), key=f"{name}-{key}") for key, cfg in unique.items()]
    logger.info("%s: %d tasks on %d workers", name, len(futures), len(c.scheduler_info()["workers"]))
    return c.gather(futures)
