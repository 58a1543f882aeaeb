"""``{% speech_player %}``: the player widget, with every URL it needs resolved here, not in JS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from speech.schemas import SPEEDS
from speech.security import page_token

register = template.Library()

# Every module of the player, preloaded and mapped: the files themselves are the list.
MODULES = sorted(path.stem for path in (Path(__file__).parents[1] / "static" / "speech").glob("*.js"))
JSON_IN_HTML = str.maketrans({"<": "\\u003C", ">": "\\u003E", "&": "\\u0026"})


@register.inclusion_tag("speech/player.html", takes_context=True)
def speech_player(context: template.Context, path: str = "") -> dict[str, Any]:
    request = context["request"]
    modules = {f"{settings.STATIC_URL}speech/{name}.js": static(f"speech/{name}.js") for name in MODULES}
    return {
        "config": {
            "endpoint": reverse("speech:api:create_speech"),
            "voicesUrl": reverse("speech:api:list_voices"),
            "streamUrl": reverse("speech:stream"),
            # The page's own credential, signed by the server and bound to this visitor's session:
            # the page's requests pass without an API key (and the <audio> fallback's URL carries it).
            "pageToken": page_token(request),
            "path": request.GET.get("path", path) or None,
        },
        "speeds": SPEEDS,
        "modules": modules.values(),
        "import_map": import_map(modules),
        "csp_nonce": getattr(request, "csp_nonce", ""),  # set by speech.security.ContentSecurityPolicyMiddleware
    }


def import_map(modules: dict[str, str]) -> SafeString:
    """Maps each module's plain URL to its hashed one, so relative imports between the modules
    load the same (cache-busted) files as the <script> and modulepreload tags."""
    return mark_safe(json.dumps({"imports": modules}).translate(JSON_IN_HTML))
