"""The figures of BENCHMARKS.md and the docs, drawn from bench/results.json into docs/img/*.svg.

    .venv/bin/python bench/plots.py                      # bench/results.json -> docs/img/
    .venv/bin/python bench/plots.py --results R --out D  # other files

No benchmark runs here: the numbers are the ones BENCHMARKS.md records (copied into results.json
with the command, machine and date of each), so the figures change only when the tables do.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; set before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
OUT = ROOT / "docs" / "img"
FORMATS = ("mp3", "opus", "pcm")
# SVGs that differ only when the figures do: no date in the metadata, fixed ids.
SVG_METADATA = {"Date": None, "Creator": "bench/plots.py"}


def first_byte(results: dict[str, Any]) -> Figure:
    data = results["first_byte"]
    figure, axes = plt.subplots(figsize=(7, 4))
    chars = data["chars"]
    for fmt in FORMATS:
        (line,) = axes.plot(chars, data["p50_ms"][fmt], marker="o", label=f"{fmt} p50")
        before = data["p50_ms_before_opening_change"][fmt]
        axes.plot(chars, before, marker="x", linestyle=":", color=line.get_color(), label=f"{fmt} p50, before")
    engine = data["engine_alone_first_piece_ms"]
    axes.fill_between(chars, engine["low"], engine["high"], color="grey", alpha=0.3, label="piper alone, first piece")
    axes.axhline(80, color="black", linewidth=0.8, linestyle="--", label="target p50 ≤ 80 ms")
    axes.set_xscale("log")
    axes.set_xticks(chars, [str(n) for n in chars])
    highest = max(max(data[key][fmt]) for key in ("p50_ms", "p50_ms_before_opening_change") for fmt in FORMATS)
    axes.set_ylim(0, highest * 1.2)
    axes.set_xlabel("input length, characters")
    axes.set_ylabel("time to first byte, ms")
    axes.set_title(f"First byte by text length and format ({data['date'][:10]})")
    axes.legend(fontsize="small", ncol=2)
    return figure


def servers(results: dict[str, Any]) -> Figure:
    data = results["servers"]
    figure, axes = plt.subplots(figsize=(7, 4))
    names = data["servers"]
    width = 0.25
    for n, fmt in enumerate(FORMATS):
        xs = [i + (n - 1) * width for i in range(len(names))]
        bars = axes.bar(xs, data["p50_ms"][fmt], width, label=f"{fmt} p50")
        axes.scatter(xs, data["p95_ms"][fmt], marker="_", s=200, color=bars.patches[0].get_facecolor(), zorder=3)
    axes.scatter([], [], marker="_", s=200, color="black", label="p95")
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("time to first byte, ms")
    axes.set_title(f"First byte of {data['chars']:,} characters per server ({data['date'][:10]})")
    axes.legend(fontsize="small")
    return figure


def capacity(results: dict[str, Any]) -> Figure:
    data = results["capacity"]
    figure, (runs, shares) = plt.subplots(1, 2, figsize=(9, 4), width_ratios=(3, 2))
    for run in data["runs"]:
        runs.plot(run["counts"], run["underruns"], marker="o", label=run["label"])
    runs.set_xlabel("listeners at 1x, all starting together")
    runs.set_ylabel("underruns")
    runs.set_title("Underruns by listeners")
    runs.legend(fontsize="x-small")
    labels = [run["label"].replace(" (shipped)", "").replace(", ", "\n") for run in data["runs"]]
    xs = range(len(labels))
    shares.bar(xs, [run["largest_without_underrun"] for run in data["runs"]], label="largest N, no underrun")
    limits = [run["theoretical_limit"] for run in data["runs"]]
    shares.scatter(xs, limits, marker="_", s=300, color="black", label="CPU limit", zorder=3)
    shares.scatter(xs, [0.8 * limit for limit in limits], marker="_", s=300, color="red", label="80 % of it", zorder=3)
    shares.set_xticks(xs, labels, fontsize="x-small")
    shares.set_ylabel("listeners")
    shares.set_title("Capacity against the CPU limit")
    shares.legend(fontsize="x-small", loc="lower right")
    figure.suptitle(f"One 2-core server, local voice ({data['date'][:10]})")
    figure.tight_layout()
    return figure


def soak(results: dict[str, Any]) -> Figure:
    data = results["soak"]
    figure, axes = plt.subplots(figsize=(7, 4))
    for run in data["runs"]:
        minutes = [n * data["interval_minutes"] for n in range(len(run["rss_mb"]))]
        axes.plot(minutes, run["rss_mb"], marker=".", label=run["label"])
    axes.set_ylim(0, None)
    axes.set_xlabel("minutes of the mixed soak")
    axes.set_ylabel("worker RSS, MB")
    axes.set_title("Memory over a soak")
    axes.legend(fontsize="small", loc="lower right")
    return figure


PLOTS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "first-byte.svg": first_byte,
    "servers.svg": servers,
    "capacity.svg": capacity,
    "soak-rss.svg": soak,
}


def main(results_path: Path = RESULTS, out: Path = OUT) -> list[Path]:
    results = json.loads(results_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "speech"  # stable element ids from run to run
    plt.rcParams["svg.fonttype"] = "none"  # text as text: small files, the reader's sans-serif font
    written = []
    for name, plot in PLOTS.items():
        figure = plot(results)
        figure.savefig(out / name, format="svg", metadata=SVG_METADATA, bbox_inches="tight")
        plt.close(figure)
        written.append(out / name)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=OUT)
    arguments = parser.parse_args()
    for path in main(arguments.results, arguments.out):
        print(path)
