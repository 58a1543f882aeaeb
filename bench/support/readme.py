"""The copy-paste blocks of the README and the docs (docs/*.md): fenced ```sh, ```python, ```django and ```js.

A block that cannot run on a test machine says why in an HTML comment on the line above it, which
GitHub does not show: ``<!-- not run: plays on the default audio device, and the test machine has none -->``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.support.server import ROOT
from speech import DISTRIBUTION

FENCE = re.compile(
    r"^(?:<!-- not run: (?P<reason>.+?) -->\n)?```(?P<lang>sh|python|django|js)\n(?P<code>.*?)^```$", re.M | re.S
)


# The pages whose blocks the README tests run, in the order of the docs site's nav (mkdocs.yml), which is
# the order a reader follows them (the host-site blocks build one site, in this order). The other pages'
# examples are run by the tests of what they show: OWN_TESTS.
HOST_GUIDE = "docs/host-site.md"  # every block of it goes into the reader's own site
DOCS = [
    "README.md",
    "docs/index.md",
    "docs/getting-started.md",
    HOST_GUIDE,
    "docs/api.md",
    "docs/player.md",  # the one ```js block: tests/e2e/test_readme_js.py
    "docs/voices.md",
    "docs/configuration.md",
    "docs/security.md",  # the API key example: also tests/test_auth.py
    "docs/deploying.md",  # the nginx section: also tests/test_topology.py
    "docs/performance.md",
    "docs/troubleshooting.md",
    "docs/how-it-works.md",
]
OWN_TESTS = {
    "docs/live-text.md": "tests/test_live_response.py",
    "docs/reader.md": "tests/e2e/test_reader.py",
    "docs/kokoro.md": "tests/test_kokoro_engine.py",
    # Pages that show a file of the repository's root (docs/hooks.py), and run logs: no blocks to run.
    "docs/benchmarks.md": "BENCHMARKS.md",
    "docs/changelog.md": "CHANGELOG.md",
    "docs/benchmark-history.md": "BENCHMARKS.md",
}


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    not_run: str | None
    file: str = "README.md"

    @property
    def host_file(self) -> str | None:
        """``settings.py`` or ``urls.py`` for the blocks that go into the reader's own site."""
        first = self.code.splitlines()[0]
        return first[2:] if self.lang == "python" and first in ("# settings.py", "# urls.py") else None

    @property
    def for_host_site(self) -> bool:
        return (
            self.file == HOST_GUIDE or self.host_file is not None or self.lang == "django" or DISTRIBUTION in self.code
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.lang})"


def readme_blocks() -> list[Block]:
    """Every block of the README and the docs."""
    blocks = []
    for name in DOCS:
        path = ROOT / name
        if not path.exists():
            continue
        text = path.read_text()
        blocks += [
            Block(match["lang"], match["code"], text.count("\n", 0, match.start("code")), match["reason"], name)
            for match in FENCE.finditer(text)
        ]
    return blocks
