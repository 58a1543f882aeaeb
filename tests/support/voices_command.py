"""``manage.py voices`` run in the test's process."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def voices(*args: str) -> str:
    """What ``manage.py voices ARGS`` prints."""
    out = StringIO()
    call_command("voices", *args, stdout=out)
    return out.getvalue()
