"""Usage records: one row per synthesis, written when its stream ends."""

from __future__ import annotations

from django.db import models


class Usage(models.Model):
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    client = models.CharField(max_length=80, help_text="API key id, session or IP the request came from.")
    model = models.CharField(max_length=200)
    voice = models.CharField(max_length=200)
    engine = models.CharField(max_length=100)
    response_format = models.CharField(max_length=10)
    characters = models.PositiveIntegerField(help_text="Characters of input: what upstream engines bill.")
    bytes = models.PositiveBigIntegerField(default=0)
    status = models.PositiveSmallIntegerField(help_text="HTTP status; 499 when the client hung up mid-stream.")
    cached = models.BooleanField(default=False, help_text="Replayed from the audio cache.")
    ttfb_ms = models.FloatField(null=True, blank=True, help_text="Time to the first audio byte.")
    duration_ms = models.FloatField(null=True, blank=True, help_text="Time from the request to the stream's end.")
    request_id = models.CharField(max_length=100, blank=True, db_index=True, help_text="The x-request-id answered.")

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "usage"

    def __str__(self) -> str:
        return f"{self.model}/{self.voice} {self.characters} chars, {self.status}"
