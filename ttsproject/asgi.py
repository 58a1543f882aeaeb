"""The site under an ASGI server (uvicorn, daphne, hypercorn): ``uvicorn ttsproject.asgi:application``.

The app warms its voice and encoders at start in the background by itself (SPEECH["WARM_UP"]); this
site also waits for it here, at import, which every ASGI server does in each of its worker processes
before it accepts a request (Django takes no part in ASGI's lifespan protocol).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ttsproject.settings")
django_application = get_asgi_application()

from speech.asgi_bodies import bounded_bodies  # noqa: E402  (needs the settings configured above)
from speech.warmup import warm_up  # noqa: E402

# A request's body must arrive whole, within Django's size limit, in ASGI_REQUEST_TIMEOUT seconds.
application = bounded_bodies(django_application, float(os.environ.get("ASGI_REQUEST_TIMEOUT", "10")))

warm_up()
