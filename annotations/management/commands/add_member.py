from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.models import Role
from annotations.services import project_member_add


class Command(BaseCommand):
    help = "Give USERNAME a ROLE in PROJECT, creating the project and the user if missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project")
        parser.add_argument("username")
        parser.add_argument("role", choices=[r.label for r in Role])
        parser.add_argument("--password", help="set (or reset) the user's password")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            membership = project_member_add(opts["project"], opts["username"], opts["role"],
                                            password=opts["password"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{membership.user.username} is {Role(membership.role).label} of {membership.project.name}")
