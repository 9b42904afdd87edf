from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotations.models import Project
from annotations.services import volume_import_local
from emportal.errors import ApplicationError


class Command(BaseCommand):
    help = "Import a volume (TIFF folder or file, HDF5, MRC, Zarr) into a project, here and now, with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True)
        parser.add_argument("--name")
        parser.add_argument("--dataset", help="HDF5 dataset or Zarr array name, or the image number of a TIFF holding several")
        parser.add_argument("--voxel-size-nm", type=float, nargs=3, metavar=("Z", "Y", "X"),
                            help="required when the file does not state it")

    def handle(self, *args: Any, **opts: Any) -> None:
        project = Project.objects.filter(name=opts["project"]).first()
        if project is None:
            raise CommandError(f"no project {opts['project']!r}; create it with add_member")
        path: Path = opts["path"].expanduser().resolve()
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        with tqdm(total=100, unit="%", desc=path.name) as bar:
            def progress(fraction: float) -> None:
                bar.update(int(100 * fraction) - bar.n)
            try:
                job = volume_import_local(project, path, name=opts["name"], dataset=opts["dataset"],
                                          voxel_size_nm=tuple(opts["voxel_size_nm"]) if opts["voxel_size_nm"] else None,
                                          on_progress=progress)
            except ApplicationError as exc:
                raise CommandError(exc.message.replace("give voxel_size_nm as", "give --voxel-size-nm")) from None
        if job.state != job.State.SUCCEEDED:
            raise CommandError(f"import failed: {job.message}")
        self.stdout.write(self.style.SUCCESS(job.message))
