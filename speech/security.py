"""The dotted paths that host sites' settings name from before the split of this module, kept working:
``speech.security.ContentSecurityPolicyMiddleware`` (now ``speech.csp``) and ``speech.security.client_ip``
(django-axes' ``AXES_CLIENT_IP_CALLABLE``, now ``speech.clients``). Nothing of the app imports it."""

from __future__ import annotations

from speech.clients import client_ip
from speech.csp import ContentSecurityPolicyMiddleware

__all__ = ["ContentSecurityPolicyMiddleware", "client_ip"]
