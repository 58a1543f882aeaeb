"""bench/plots.py draws the figures of BENCHMARKS.md and the docs from bench/results.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import plots
from bench.support.server import ROOT


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


def test_the_results_are_the_tables_numbers() -> None:
    """bench/results.json holds what BENCHMARKS.md (and the run logs) record, not numbers of its own."""
    results = json.loads(plots.RESULTS.read_text())
    benchmarks = (ROOT / "BENCHMARKS.md").read_text()
    history = " ".join((ROOT / "docs" / "benchmark-history.md").read_text().split())
    first = results["first_byte"]
    for n, chars in enumerate(first["chars"]):
        now = " | ".join(str(first["p50_ms"][fmt][n]) for fmt in plots.FORMATS)
        before = " / ".join(str(first["p50_ms_before_opening_change"][fmt][n]) for fmt in plots.FORMATS)
        assert f"| {chars:,} | {now} | {before} |" in benchmarks, chars
    servers = results["servers"]
    for n, name in enumerate(servers["servers"]):
        cells = " | ".join(f"{servers['p50_ms'][fmt][n]} / {servers['p95_ms'][fmt][n]}" for fmt in plots.FORMATS)
        assert f"| {name} | {cells} |" in benchmarks, name
    for run in results["capacity"]["runs"]:
        assert f"{run['largest_without_underrun']}** |" in benchmarks or f"| {run['largest_without_underrun']} |" in (
            benchmarks
        ), run["label"]
        assert f"| {run['theoretical_limit']} |" in benchmarks, run["label"]
    for run in results["soak"]["runs"]:
        assert ", ".join(str(mb) for mb in run["rss_mb"][:12]) in history, run["label"]
