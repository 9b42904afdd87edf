from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A named token of one user. The key is never stored: only its SHA-256 (a random
    240-bit key needs no slow hash) and its first characters, to tell tokens apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="the key's first characters")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key, hex")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of user {self.user_id}"
