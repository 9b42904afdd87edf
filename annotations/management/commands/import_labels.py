from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotations.label_import import KINDS, MODES, label_import_local
from annotations.layer_names import LayerName
from annotations.models import Volume
from emportal.errors import ApplicationError


class Command(BaseCommand):
    help = ("Import a label volume (TIFF, HDF5, MRC, Zarr, OME-Zarr labels) into a layer of a volume as one "
            "undoable stroke, here and now, with a progress bar.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--volume", type=int, required=True, help="the volume's id")
        parser.add_argument("--layer", default=LayerName.MANUAL.value, help="an editable layer, or a new one (default: manual)")
        parser.add_argument("--map", dest="mapping", default="",
                            help="file value=class, e.g. 1=mitochondrion,2=nucleus,3=0 (0 ignores a value)")
        parser.add_argument("--kind", choices=[str(k) for k in KINDS],
                            help="for a new layer: labels (classes, mapped) or instances (cell ids, kept)")
        parser.add_argument("--mode", choices=MODES, default="merge",
                            help="merge: the file's zeros keep what the layer holds; replace: the layer is the file")
        parser.add_argument("--dataset", help="HDF5 dataset, Zarr array or NGFF label group, TIFF image number")
        parser.add_argument("--user", help="who the stroke and the audit trail name (default: nobody)")

    def handle(self, *args: Any, **opts: Any) -> None:
        volume = Volume.objects.select_related("project").filter(pk=opts["volume"]).first()
        if volume is None:
            raise CommandError(f"no volume {opts['volume']}")
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"no user {opts['user']!r}")
        path: Path = opts["path"].expanduser().resolve()
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        with tqdm(total=100, unit="%", desc=path.name) as bar:
            def progress(fraction: float) -> None:
                bar.update(int(100 * fraction) - bar.n)
            try:
                job = label_import_local(volume, path, user=user, layer=opts["layer"], kind=opts["kind"],
                                         mapping=opts["mapping"] or None, dataset=opts["dataset"], mode=opts["mode"],
                                         on_progress=progress)
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
        if job.state != job.State.SUCCEEDED:
            raise CommandError(f"label import failed: {job.message}")
        self.stdout.write(self.style.SUCCESS(f"{job.message}; undo with stroke {job.result['stroke']}"))
