"""A copy of the repository as a fresh clone holds it: the tracked files and nothing beside them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.support.server import ROOT


def copy_tracked_files(destination: Path) -> Path:
    """The files `git ls-files` names, as they are in the work tree, plus `.venv` (made by `make`)."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listing.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (destination / ".venv").symlink_to((ROOT / ".venv").resolve())
    return destination
