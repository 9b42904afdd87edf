"""Start Django for a benchmark on a throw-away database and media root (never var/)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def django_scratch() -> Path:
    """Point settings at a fresh temporary folder, set Django up and migrate; returns the folder.

    The folder is removed when the process exits (a stroke run leaves ~75 MB).
    """
    scratch = Path(tempfile.mkdtemp(prefix="emportal-bench-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ["EMPORTAL_VAR_DIR"] = str(scratch)
    os.environ["MEDIA_ROOT"] = str(scratch / "media")
    os.environ["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    os.environ["EMPORTAL_FAST_PASSWORD_HASHER"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emportal.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return scratch
