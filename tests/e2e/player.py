"""Driving the page the way a person does, and reading what the player reported."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

EVENTS = ("firstbyte", "lastbyte", "playing", "progress", "ended", "error")


def open_player(page: Page, url: str, path: str | None = None) -> None:
    page.goto(f"{url}/?path={path}" if path else f"{url}/")
    page.wait_for_function("document.querySelector('[data-speech-player]')?.speechPlayer")
    page.wait_for_function("document.querySelector('.sp-voice').options.length > 1")
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
    page.wait_for_function(script, arg=list(names), timeout=timeout * 1000)


def log(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("window.speechLog")
    return events


def first(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(event for event in events if event["name"] == name)
