"""Driving the page the way a person does, and reading what the player reported."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page

EVENTS = ("firstbyte", "lastbyte", "playing", "progress", "ended", "error")


def open_player(page: Page, url: str, path: str | None = None) -> None:
    page.goto(f"{url}/?path={path}" if path else f"{url}/")
    poll(page, "() => !!document.querySelector('[data-speech-player]')?.speechPlayer")
    poll(page, "() => document.querySelector('.sp-voice').options.length > 1")
    page.evaluate(
        """(events) => {
            const player = document.querySelector('[data-speech-player]').speechPlayer;
            window.speechLog = [];
            for (const name of events) {
                player.on(name, (detail) => window.speechLog.push({name, at: Date.now(), ...detail}));
            }
        }""",
        list(EVENTS),
    )


def wait_for(page: Page, *names: str, timeout: float = 90) -> None:
    script = "(names) => window.speechLog.some((event) => names.includes(event.name))"
    poll(page, script, list(names), timeout)


def poll(page: Page, script: str, arg: Any = None, timeout: float = 30) -> None:
    """Wait until ``script`` returns true. Not ``wait_for_function``: the page's CSP forbids the
    string evaluation it uses, while ``evaluate`` goes through the DevTools protocol."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {script}")
        time.sleep(0.05)


def log(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("window.speechLog")
    return events


def first(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(event for event in events if event["name"] == name)
