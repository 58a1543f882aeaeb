"""A host project's own NinjaAPI that mounts the app's router, as django-ninja users do."""

from django.urls import path
from ninja import NinjaAPI

from speech.api import router

api = NinjaAPI(urls_namespace="host-api")
api.add_router("/speech/", router)

urlpatterns = [path("api/", api.urls)]
