"""The site with API keys that carry their own limits (SPEECH["API_KEYS"] dicts, one stored hashed)."""

import hashlib

from ttsproject.settings import *  # noqa: F403

SPEECH["API_KEYS"] = [  # noqa: F405
    {"key": "key-a", "name": "alpha", "max_streams": 1, "rate": None},
    {"key_sha256": hashlib.sha256(b"key-b").hexdigest(), "name": "beta", "rate": "3/hour"},
    {"key": "key-d", "name": "delta", "rate": "8/4s"},
    "key-c",  # a plain string: the site-wide limits
]
