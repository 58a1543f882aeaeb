"""``{% speech_player %}``: the player widget, and ``{% speech_reader %}``: a page read aloud; every URL they
need is resolved here, not in JS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from speech.page_tokens import page_token
from speech.schemas import SPEEDS

register = template.Library()

# Every module of the player, preloaded and mapped: the files themselves are the list.
MODULES = sorted(path.stem for path in (Path(__file__).parents[1] / "static" / "speech").glob("*.js"))
JSON_IN_HTML = str.maketrans({"<": "\\u003C", ">": "\\u003E", "&": "\\u0026"})
IMPORT_MAP_DONE = "_speech_import_map"  # set on the request once a tag has written the page's import map
READER_SPEEDS = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@register.inclusion_tag("speech/player.html", takes_context=True)
def speech_player(context: template.Context, path: str = "") -> dict[str, Any]:
    request = context["request"]
    modules = module_urls()
    setattr(request, IMPORT_MAP_DONE, True)  # the player's template always writes one
    return {
        "config": page_config(request, path),
        "speeds": SPEEDS,
        "modules": [url for name, url in modules.items() if "/reader" not in name],
        "import_map": import_map(modules),
        "csp_nonce": getattr(request, "csp_nonce", ""),  # set by speech.csp.ContentSecurityPolicyMiddleware
    }


@register.inclusion_tag("speech/reader.html", takes_context=True)
def speech_reader(
    context: template.Context, selector: str, voice: str = "", speed: float | str = 1, label: str = "Listen"
) -> dict[str, Any]:
    """``{% speech_reader "#article" voice="" speed=1 label="Listen" %}``: reads the element ``selector``
    names aloud, marking the word heard (docs/reader.md). No voice: one of the element's language."""
    request = context["request"]
    speed = float(speed)
    if not SPEEDS[0] <= speed <= SPEEDS[1]:
        raise template.TemplateSyntaxError(f"speech_reader: speed {speed} is outside {SPEEDS[0]}-{SPEEDS[1]}")
    modules = module_urls()
    # One import map a page: a second one (another reader, or a player after it) would be refused.
    first = not getattr(request, IMPORT_MAP_DONE, False)
    setattr(request, IMPORT_MAP_DONE, True)
    choices = sorted({*READER_SPEEDS, speed})
    return {
        "config": {**page_config(request), "selector": selector, "voice": voice, "speed": speed},
        "label": label,
        "speed": _speed_text(speed),
        "speed_choices": [_speed_text(value) for value in choices],
        "modules": [url for name, url in modules.items() if _reader_module(name)],
        "import_map": import_map(modules) if first else "",
        "csp_nonce": getattr(request, "csp_nonce", ""),
    }


def page_config(request: HttpRequest, path: str = "") -> dict[str, Any]:
    """The URLs and the credential the page's player uses: resolved here, under any prefix, never in JS."""
    return {
        "endpoint": reverse("speech:api:create_speech"),
        "voicesUrl": reverse("speech:api:list_voices"),
        "streamUrl": reverse("speech:stream"),
        # The page's own credential, signed by the server and bound to this visitor's session:
        # the page's requests pass without an API key (and the <audio> fallback's URL carries it).
        "pageToken": page_token(request),
        "path": request.GET.get("path", path) or None,
    }


def module_urls() -> dict[str, str]:
    """Each module's plain URL -> its (hashed) static URL."""
    return {f"{settings.STATIC_URL}speech/{name}.js": static(f"speech/{name}.js") for name in MODULES}


def _reader_module(url: str) -> bool:
    """The reader loads these: not the player widget's own."""
    return not url.endswith(("/widget.js", "/voices.js"))


def _speed_text(speed: float) -> str:
    return f"{speed:g}"


def import_map(modules: dict[str, str]) -> SafeString:
    """Maps each module's plain URL to its hashed one, so relative imports between the modules
    load the same (cache-busted) files as the <script> and modulepreload tags."""
    return mark_safe(json.dumps({"imports": modules}).translate(JSON_IN_HTML))
