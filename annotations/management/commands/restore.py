from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.backup import backup_restore


class Command(BaseCommand):
    help = "Restore a backup made by `backup`: database rows and the media store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)
        parser.add_argument("--force", action="store_true", help="replace a database that holds projects")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            backup_restore(opts["archive"], force=opts["force"])
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("restored")
