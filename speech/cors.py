"""The CORS headers browser clients of the API need, for a host site's django-cors-headers settings.

The app decides which origins may call its API: ``SPEECH["CORS_ORIGINS"]``, answered through
corsheaders' ``check_request_enabled`` signal for the app's URLs only (``speech.apps.allow_api_origins``).
The headers are the site's corsheaders settings; browser clients need the ones below (checked by
``speech.W005``)::

    CORS_ALLOW_HEADERS = ALLOW_HEADERS
    CORS_EXPOSE_HEADERS = EXPOSE_HEADERS

Site settings import this module: it imports no more than the app's settings code (``speech.conf``).
"""

from __future__ import annotations

from corsheaders.defaults import default_headers

from speech.conf import CORS_REQUEST_HEADERS, CORS_RESPONSE_HEADERS

ALLOW_HEADERS = (*default_headers, *CORS_REQUEST_HEADERS)
EXPOSE_HEADERS = CORS_RESPONSE_HEADERS
