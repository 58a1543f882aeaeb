from django.contrib import admin
from django.http import HttpRequest

from speech.models import Usage


@admin.register(Usage)
class UsageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["created", "model", "voice", "engine", "characters", "status", "cached", "ttfb_ms", "duration_ms"]
    list_filter = ["status", "engine", "model", "cached"]
    search_fields = ["client", "voice"]
    date_hierarchy = "created"
    readonly_fields = [field.name for field in Usage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
