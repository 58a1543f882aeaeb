"""The repository is self-contained: the tests that read fixtures pass in a copy of the tracked files
alone, in an empty folder with nothing beside it (no ../shared, no untracked file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.clone import copy_tracked_files

# Every test module that reads tests/fixtures/ (directly or through the fake upstream).
FIXTURE_TESTS = ["tests/test_client_decode.py", "tests/test_proxy_routing.py", "tests/e2e/test_ogg.py"]


def test_fixture_tests_pass_in_a_copy_of_the_tracked_files(tmp_path: Path) -> None:
    repo = copy_tracked_files(tmp_path / "repo", venv=False)  # run by this venv's python: no make, no venv
    assert sorted(path.name for path in tmp_path.iterdir()) == ["repo"]
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "PYTEST_"))}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *FIXTURE_TESTS]

    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=1800)

    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
