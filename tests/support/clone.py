"""A copy of the repository as a fresh clone holds it: the tracked files and nothing beside them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.support.install import shared_deps
from bench.support.server import ROOT


def copy_tracked_files(destination: Path, venv: bool = True) -> Path:
    """The files `git ls-files` names, as they are in the work tree, and (for `make` in the copy) a `.venv`
    of the copy's own."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listing.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if venv:
        own_venv(destination / ".venv")
    return destination


def own_venv(venv: Path) -> None:
    """A venv that finds every dependency in the shared one (a .pth line to a folder of links to its
    packages), so that `make` in the copy installs nothing but the copy itself, editable, here: never
    into the shared venv, whose `speech` must stay the checkout's. Its `pip` is the shared one run by the
    venv's python (found through the same line, so it installs here), not a copy made by ensurepip: that
    took seconds of each `make run` test's set-up."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    (site / "shared-deps.pth").write_text(f"{shared_deps(venv)}\n")
    (venv / "bin" / "pip").write_text(f'#!/bin/sh\nexec "{python}" -m pip "$@"\n')
    (venv / "bin" / "pip").chmod(0o755)
