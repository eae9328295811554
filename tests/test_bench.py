"""The peer benchmark runs in its quick mode and prints every row with a ratio."""

import importlib.util
import json
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "peers.py"


def load_bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_peers", BENCH)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)   # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_peer_benchmark_prints_every_row_with_a_ratio(tmp_path, capsys, monkeypatch):
    peers = load_bench(monkeypatch)
    monkeypatch.setitem(peers.PEERS, "missingpeer", "neurocode_no_such_module")
    out = tmp_path / "peers.json"
    peers.main(["--quick", "--out", str(out)])
    text = capsys.readouterr().out
    assert "skipped missingpeer: not installed" in text
    assert re.search(r"sgemm \d+\.\d GFLOP/s, load average", text)
    result = json.loads(out.read_text())
    assert set(result["cases"]) == {"classifier train", "classifier inference", "recurrent train"}
    for name, case in result["cases"].items():
        assert "neurocode" in case["rows"] and "missingpeer" not in case["rows"]
        for framework, row in case["rows"].items():
            assert row["samples_per_s"] > 0 and 0 < row["hidden_rate"] < 1, (name, framework)
            assert re.search(rf"^  {framework} +\d+\.\d +\d+\.\d\dx +\d+% ", text, flags=re.M), framework
    coba = result["coba"]["rows"]
    assert set(coba) == {"brian2 runtime", "neurocode B=1", "neurocode B=4"}
    # the same network in both engines: the same spikes per sample
    assert len({row["spikes_per_sample"] for row in coba.values()}) == 1
    for engine in coba:
        assert re.search(rf"^  {engine} +\d+ +\d+\.\d\dx", text, flags=re.M), engine
