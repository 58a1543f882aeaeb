"""bench/plots.py draws the figures of BENCHMARKS.md and the docs from bench/results.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import plots
from tests.support.server import ROOT


def test_the_script_writes_every_figure_as_svg(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/plots.py", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(plots.PLOTS)
    for name in plots.PLOTS:
        svg = (tmp_path / name).read_text()
        assert svg.startswith("<?xml"), name
        assert svg.rstrip().endswith("</svg>"), name


def test_the_committed_figures_are_the_results_drawn(tmp_path: Path) -> None:
    """docs/img/ is what bench/results.json draws: rerun `python bench/plots.py` after editing it."""
    plots.main(out=tmp_path)
    for name in plots.PLOTS:
        assert (ROOT / "docs" / "img" / name).read_text() == (tmp_path / name).read_text(), name


def test_every_figure_is_shown() -> None:
    benchmarks, performance = (ROOT / "BENCHMARKS.md").read_text(), (ROOT / "docs" / "performance.md").read_text()
    for name in plots.PLOTS:
        assert f"](docs/img/{name})" in benchmarks, name
        assert f"](img/{name})" in performance, name
