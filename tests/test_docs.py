"""The runnable examples in the docs run (pages whose examples take seconds)."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: Pages whose ```python blocks are executed here (ssr.md and validate.md are run by their
#: own tests); those that compile a standalone project or train are marked slow.
PAGES = ["../README.md", "model-cards.md", "rank-coding.md", "lyapunov.md", "nir.md", "cluster.md",
         "trust.md", "heterogeneity.md",
         pytest.param("simulate.md", marks=pytest.mark.slow),
         pytest.param("torch-dynamics.md", marks=pytest.mark.slow)]


@pytest.mark.parametrize("page", PAGES)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    assert blocks, f"{page} has no python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, f"{page}", "exec"), namespace)
