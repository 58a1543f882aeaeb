import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host_site.settings")
application = get_asgi_application()

from speech.warmup import warm_up  # noqa: E402  (4. under ASGI: warm the voice before the first request)

warm_up()
