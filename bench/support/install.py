"""Build the app's wheel and install it into a fresh venv, offline and in seconds.

The wheel is built with the shared venv's setuptools (no build isolation, nothing downloaded) and
installed with ``--no-deps`` into a new venv whose only extra path is a ``.pth`` line pointing at
the shared venv's site-packages, where Django and the other dependencies already are. ``speech``
itself is importable in that venv only from the installed wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from speech import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]
PIP: list[str | Path] = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def build_wheel(workdir: Path) -> Path:
    src, dist = workdir / "src", workdir / "dist"
    shutil.copytree(ROOT / "speech", src / "speech", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src)
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src], check=True, timeout=300)
    [wheel] = dist.glob("django_speech_stream-*.whl")
    return wheel


def shared_deps(work: Path) -> Path:
    """The shared venv's packages as a folder of links, without this project (`make` installs it there
    editable): a venv that has this folder on its path finds every dependency, and no `speech`."""
    deps = work / "shared-deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.startswith(("django_speech_stream", "__editable__", "speech")):
            (deps / entry.name).symlink_to(entry)
    return deps


def venv_with(wheel: Path, venv: Path) -> tuple[Path, Path]:
    """A fresh venv where `pip install django-speech-stream` found the wheel: (its python, its site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    (site / "shared-deps.pth").write_text(f"{shared_deps(venv.parent)}\n")
    install = [*PIP, "--python", python, "install", "--no-deps", "--no-index", "--find-links", wheel.parent]
    subprocess.run([*install, DISTRIBUTION], check=True, timeout=300)
    return python, site
