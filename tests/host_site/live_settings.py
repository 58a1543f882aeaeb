"""The repository's site with the live-text views of tests/host_site/live.py mounted beside it."""

from ttsproject.settings import *  # noqa: F403

ROOT_URLCONF = "tests.host_site.live"
