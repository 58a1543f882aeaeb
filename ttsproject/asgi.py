"""The site under an ASGI server (uvicorn, daphne, hypercorn): ``uvicorn ttsproject.asgi:application``.

Django does not take part in ASGI's lifespan protocol, so the voice and encoders are warmed here, at
import, which every ASGI server does in each of its worker processes before it accepts a request.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ttsproject.settings")
application = get_asgi_application()

from speech.warmup import warm_up  # noqa: E402  (needs the settings configured above)

warm_up()
