from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from segmentation.demo import demo_load


class Command(BaseCommand):
    help = ("Create the demo project and the user `demo` (its manager). The password comes from "
            "EMPORTAL_DEMO_PASSWORD, or is generated once into var/demo_password and printed.")

    def handle(self, *args: Any, **opts: Any) -> None:
        stored = settings.VAR_DIR / "demo_password"
        password = os.environ.get("EMPORTAL_DEMO_PASSWORD")
        first_time = not stored.exists()
        if not password:
            password = stored.read_text().strip() if stored.exists() else secrets.token_urlsafe(9)
        if first_time or stored.read_text().strip() != password:
            stored.write_text(password)
            stored.chmod(0o600)
            self.stdout.write(self.style.WARNING(f"demo user: demo   password: {password}   "
                                                 f"(kept in {stored})"))
        demo_load(password, note=lambda line: self.stdout.write(line))
        self.stdout.write("demo project ready")
