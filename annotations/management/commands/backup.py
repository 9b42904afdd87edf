from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotations.backup import backup_write


class Command(BaseCommand):
    help = "Write the database and the media store (volumes, labels, models, reports) to one .tar.gz."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path)

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(f"backup written to {backup_write(opts['out'])}")
