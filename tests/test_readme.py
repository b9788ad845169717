"""What README and the pages it links (docs/*.md) show works as documented, and the results they quote are the
published ones."""

from __future__ import annotations

import re
import sys
import types

import pytest

from conftest import REPO
from ltbench import strategies
from ltbench.config import Strategy


def test_readme_example_strategy(monkeypatch):
    readme = (REPO / "docs/strategies.md").read_text()
    code = re.search(r"`scripts/ltbench/strategies/my_weights.py`:\n\n```python\n(.*?)```", readme, re.S).group(1)
    module = types.ModuleType("ltbench.strategies.my_weights")
    exec(compile(code, "my_weights.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    out = strategies.resolve(Strategy("my_weights", "my_weights", {"power": 0.5}), [100, 10, 1], {})
    # (111 / (3 * n)) ** 0.5 for n = 100, 10, 1
    assert out.weights.tolist() == pytest.approx([0.6082763, 1.9235384, 6.0827625], rel=1e-5)


def test_readme_states_the_default_matrix_size():
    """The README's 'the whole matrix: B benchmarks x S strategies x K seeds = N runs' is what a dry run plans."""
    from test_pipeline import SNAKEMAKE, job_counts
    import subprocess

    readme = (REPO / "README.md").read_text()
    b, s, k, n = map(int, re.search(r"the whole matrix: (\d+) benchmarks x (\d+) strategies x (\d+) seeds = (\d+) runs",
                                     readme).groups())
    # --forceall: every job of the matrix, whatever runs this checkout already holds
    out = subprocess.run([*SNAKEMAKE, "--dry-run", "--forceall"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    counts = job_counts(out)
    assert b * s * k == n == counts["train"] + counts["stage2"] + counts["posthoc"] == counts["metrics"]


def test_readme_example_parameters_are_checked():
    from ltbench import params

    readme = (REPO / "docs/strategies.md").read_text()
    code = re.search(r"`scripts/ltbench/strategies/my_weights.py`:\n\n```python\n(.*?)```", readme, re.S).group(1)
    module = types.ModuleType("my_weights")
    exec(compile(code, "my_weights.py", "exec"), module.__dict__)
    with pytest.raises(Exception, match=r"unknown parameter powr; it knows: power"):
        params.effective(Strategy("my_weights", "my_weights", {"powr": 0.25}), params.of_module(module))


def published_section(path: str, heading: str) -> str:
    """The body of the '## <heading>' section of a published table.md, up to the next '## ' section."""
    text = (REPO / path).read_text()
    return re.search(rf"\n## {re.escape(heading)}\n\n(.*?)\n(?:## |\Z)", text, re.S).group(1)


def pages() -> str:
    """README and the pages it links (docs/*.md), one text."""
    return "\n".join(p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])


def test_readme_links_every_page_and_stays_one_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in (REPO / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"README does not link {page.name}"


def test_readme_tables_are_the_published_ones():
    """Each results table that README or a page shows (a block ``<!-- table: docs/results/.../table.md -->``) is
    the main table of that file, as `python scripts/results.py ... publish` made it from the committed runs."""
    blocks = re.findall(r"<!-- table: (\S+) -->\n(.*?)<!-- /table -->", pages(), re.S)
    assert sorted(path for path, _ in blocks) == ["docs/results/cpu/table.md", "docs/results/table.md"]
    for path, shown in blocks:
        main = published_section(path, "Best-epoch test accuracy (%)").split("\n\n")[0]
        assert shown.strip() == main.strip(), path


def test_readme_ratio_tables_are_the_published_ones():
    """Each ratio-sweep table of the README (a block ``<!-- ratios: docs/results/.../table.md -->``) is the table
    of that file's ratio section, as publish made it from the committed runs."""
    blocks = re.findall(r"<!-- ratios: (\S+) -->\n(.*?)<!-- /ratios -->", pages(), re.S)
    assert [path for path, _ in blocks] == ["docs/results/cpu-sweep/table.md"]
    for path, shown in blocks:
        section = published_section(path, "All-class accuracy against the imbalance ratio (%)")
        tables = "\n".join(line for line in section.splitlines() if line.startswith("|"))
        assert shown.strip() == tables, path
