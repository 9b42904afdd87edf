"""Writes for projects, members and volumes. Views, commands and tasks call these."""
from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from types import EllipsisType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotations.defaults import PAPER_CLASSES
from annotations.imaging import omezarr, readers, validation
from annotations.job_kinds import IMPORT
from annotations.layer_names import LayerName
from annotations.layers import layer_create, layers_describe_classes
from annotations.models import LabelClass, Membership, Project, Role, Volume
from annotations.storage import upload_dir, volume_zarr_path
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import JobContext, job_create

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".tif", ".tiff", ".h5", ".hdf5", ".mrc", ".rec", ".map")


def project_create(name: str, *, description: str = "") -> Project:
    """A project with the paper's label classes."""
    with transaction.atomic():
        project = Project.objects.create(name=name, description=description)
        label_classes_install_defaults(project)
    return project


def label_classes_install_defaults(project: Project) -> None:
    by_name: dict[str, LabelClass] = {}
    for spec in PAPER_CLASSES:
        by_name[spec.name], _ = LabelClass.objects.get_or_create(
            project=project, name=spec.name,
            defaults={"value": spec.value, "color": spec.color, "kind": spec.kind})
    for spec in PAPER_CLASSES:
        if spec.parent and by_name[spec.name].parent_id is None:
            by_name[spec.name].parent = by_name[spec.parent]
            by_name[spec.name].save(update_fields=["parent"])


def project_member_add(project_name: str, username: str, role: str | Role, *,
                       password: str | None = None) -> Membership:
    """Give `username` `role` in `project_name`, creating project and user if missing."""
    role = role if isinstance(role, Role) else Role.from_name(role)
    User = get_user_model()
    with transaction.atomic():
        project = Project.objects.filter(name=project_name).first() or project_create(project_name)
        user, created = User.objects.get_or_create(username=username)
        if password is not None:
            user.set_password(password)
            user.save()
        elif created:
            user.set_unusable_password()
            user.save()
        membership, _ = Membership.objects.update_or_create(project=project, user=user,
                                                            defaults={"role": role})
    return membership


def _role(role: str) -> Role:
    try:
        return Role.from_name(role)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="unknown_role") from None


def _user_by_login(login: str) -> Any:
    """The user named `login`, or the one whose e-mail it is (one account per e-mail)."""
    User = get_user_model()
    login = login.strip()
    user = User.objects.filter(username=login).first()
    if user is None and "@" in login:
        matches = list(User.objects.filter(email__iexact=login)[:2])
        if len(matches) > 1:
            raise ApplicationError(f"several users have the e-mail {login!r}; give the user name",
                                   code="ambiguous_user")
        user = matches[0] if matches else None
    if user is None:
        raise ApplicationError(f"there is no user {login!r}", code="unknown_user")
    return user


def _keep_a_manager(project: Project, leaving: Membership) -> None:
    """Refuse to take away the project's last manager: nobody could manage it from the browser."""
    if leaving.role == Role.MANAGER and not project.memberships.filter(role=Role.MANAGER).exclude(pk=leaving.pk).exists():
        raise ApplicationError("a project needs at least one manager; make someone else manager first",
                               code="last_manager", status_code=409)


def member_set_role(project: Project, login: str, role: str) -> Membership:
    """A manager adds an existing user (by user name or e-mail) to the project, or changes their role."""
    parsed = _role(role)
    user = _user_by_login(login)
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(project=project, user=user).first()
        if current is not None and parsed != Role.MANAGER:
            _keep_a_manager(project, current)
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": parsed})
    return membership


def member_remove(project: Project, username: str) -> None:
    """A manager takes a user out of the project (their strokes stay, under their name)."""
    with transaction.atomic():
        membership = (Membership.objects.select_for_update().select_related("user")
                      .filter(project=project, user__username=username).first())
        if membership is None:
            raise ApplicationError(f"{username!r} is not a member of this project", code="not_found", status_code=404)
        _keep_a_manager(project, membership)
        membership.delete()


_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_CLASS_VALUE = 65535  # class layers are uint16


def _class_parent(project: Project, parent: str | None, *, child: LabelClass | None) -> LabelClass | None:
    """The parent class named `parent` in this project; a class may not be its own ancestor."""
    if parent in (None, ""):
        return None
    found = LabelClass.objects.filter(project=project, name=parent).first()
    if found is None:
        raise ApplicationError(f"there is no class {parent!r} in this project", code="unknown_class")
    ancestor: LabelClass | None = found
    while ancestor is not None:
        if child is not None and ancestor.pk == child.pk:
            raise ApplicationError(f"{child.name!r} cannot sit inside {parent!r}: that would make a loop",
                                   code="class_cycle")
        ancestor = ancestor.parent
    return found


def _class_name_free(project: Project, name: str, *, other_than: LabelClass | None = None) -> str:
    name = name.strip()
    if not name:
        raise ApplicationError("a class needs a name", code="invalid")
    taken = LabelClass.objects.filter(project=project, name__iexact=name)
    if other_than is not None:
        taken = taken.exclude(pk=other_than.pk)
    if taken.exists():
        raise ApplicationError(f"the project already has a class {name!r}", code="class_name_taken", status_code=409)
    return name


def _class_color(color: str) -> str:
    if not _COLOR.match(color):
        raise ApplicationError(f"colour {color!r} is not #rrggbb", code="invalid")
    return color.lower()


def label_class_create(project: Project, *, name: str, color: str, parent: str | None = None,
                       kind: str = LabelClass.Kind.SEMANTIC) -> LabelClass:
    """A manager adds a class; it takes the next free label value, so painted voxels never change meaning."""
    if kind not in LabelClass.Kind.values:
        raise ApplicationError(f"kind {kind!r} is not one of {', '.join(LabelClass.Kind.values)}", code="invalid")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one new value at a time
        name = _class_name_free(project, name)
        value = (LabelClass.objects.filter(project=project).order_by("-value").values_list("value", flat=True).first()
                 or 0) + 1
        if value > MAX_CLASS_VALUE:
            raise ApplicationError("the project has no label value left", code="invalid")
        created = LabelClass.objects.create(project=project, name=name, value=value, color=_class_color(color),
                                            kind=kind, parent=_class_parent(project, parent, child=None))
    layers_describe_classes(project)
    return created


def label_class_update(label_class: LabelClass, *, name: str | None = None, color: str | None = None,
                       parent: str | None | EllipsisType = ...) -> LabelClass:
    """A manager renames a class, changes its colour or its parent; its value (what is painted) stays."""
    fields = []
    if name is not None:
        label_class.name = _class_name_free(label_class.project, name, other_than=label_class)
        fields.append("name")
    if color is not None:
        label_class.color = _class_color(color)
        fields.append("color")
    if parent is not ...:
        label_class.parent = _class_parent(label_class.project, parent, child=label_class)
        fields.append("parent")
    if fields:
        label_class.save(update_fields=fields)
        layers_describe_classes(label_class.project)
    return label_class


# --- volumes -------------------------------------------------------------------------

def _import_voxel_size(path: Path, dataset: str | None, given: tuple[float, ...] | None,
                       *, shown_as: str | None = None) -> tuple[float, float, float]:
    """Open the source's header before any job starts: an unreadable file is refused at
    once, and a voxel size neither given nor stated by the file is asked for instead of
    becoming 1 nm. Messages name the file as the user knows it (``shown_as``, for uploads
    stored under another name). Returns the voxel size the import will use."""
    root = Path(settings.DATA_ROOT)
    name = shown_as or path.name
    try:
        with readers.open_source(path, dataset=dataset, root=root if path.is_relative_to(root) else None) as source:
            stated, facts = source.voxel_size_nm, source.metadata
    except ValueError as exc:
        raise ApplicationError(str(exc).replace(path.name, name), code="unreadable_source") from None
    if given is not None:
        return tuple(float(v) for v in given)  # type: ignore[return-value]
    if stated is None:
        partial = facts.get("pixel_size_yx_nm")
        hint = f" (it gives {partial[0]:g} x {partial[1]:g} nm in Y x X, not Z)" if partial else ""
        raise ApplicationError(f"{name} does not state its voxel size{hint}; give voxel_size_nm "
                               "as z, y, x in nm", code="voxel_size_required")
    return stated


def _start_import(project: Project, *, path: Path, name: str, user: Any,
                  voxel_size_nm: tuple[float, float, float] | None, remove_source: bool,
                  dataset: str | None = None, shown_as: str | None = None) -> Job:
    from annotations.tasks import volume_import_task

    try:
        voxel_size_nm = _import_voxel_size(path, dataset, voxel_size_nm, shown_as=shown_as)
    except ApplicationError:
        if remove_source:
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    with transaction.atomic():
        volume = Volume.objects.create(project=project, name=name, created_by=user if user and
                                       user.is_authenticated else None,
                                       source={"file": path.name})
        job = job_create(kind=IMPORT, project_id=project.pk, volume_id=volume.pk, user=user,
                         params={"path": str(path), "voxel_size_nm": voxel_size_nm,
                                 "remove_source": remove_source, "dataset": dataset},
                         enqueue=lambda job_id: volume_import_task.delay(job_id))
    return job


def volume_import_from_path(project: Project, user_path: str, *, user: Any = None, name: str | None = None,
                            voxel_size_nm: tuple[float, float, float] | None = None,
                            dataset: str | None = None) -> Job:
    """Queue an import of a file or folder inside DATA_ROOT; anything outside is refused."""
    try:
        path = validation.resolve_inside(Path(settings.DATA_ROOT), user_path)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="path_refused") from None
    if not path.exists():
        raise ApplicationError(f"{user_path!r} does not exist in the data root", code="not_found")
    return _start_import(project, path=path, name=name or path.stem, user=user,
                         voxel_size_nm=voxel_size_nm, remove_source=False, dataset=dataset)


def upload_store(upload: Any, *, stem: str, hint: str = "") -> tuple[Path, str]:
    """Check an upload (already streamed to disk by Django) and move it into a folder of its
    own under the upload dir as ``<stem><suffix>``; returns that path and the user's file name.
    Unknown file types (``hint`` is added to that refusal) and files over UPLOAD_MAX_BYTES are
    refused before anything is stored."""
    original = Path(upload.name or "upload").name
    suffix = Path(original).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ApplicationError(f"{original!r}: unsupported file type {suffix or '(none)'}; "
                               f"upload one of {', '.join(UPLOAD_SUFFIXES)}{hint}", code="unsupported_format")
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise ApplicationError(f"{original!r} is {upload.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES}",
                               code="too_large", status_code=413)
    folder = upload_dir() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / f"{stem}{suffix}"
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target, original


def volume_import_from_upload(project: Project, upload: Any, *, user: Any = None, name: str | None = None,
                              voxel_size_nm: tuple[float, float, float] | None = None) -> Job:
    """Move an uploaded file aside (:func:`upload_store`) and queue its import."""
    target, original = upload_store(upload, stem="upload")
    return _start_import(project, path=target, name=name or Path(original).stem, user=user,
                         voxel_size_nm=voxel_size_nm, remove_source=True, shown_as=original)


def volume_import_local(project: Project, path: Path, *, name: str | None = None, dataset: str | None = None,
                        voxel_size_nm: tuple[float, ...] | None = None,
                        on_progress: Callable[[float], None] | None = None) -> Job:
    """Import `path` in this process (management commands, the demo), recorded as a job."""
    from emportal.jobs.services import job_running

    voxel_size_nm = _import_voxel_size(path, dataset, voxel_size_nm)
    with transaction.atomic():
        volume = Volume.objects.create(project=project, name=name or path.stem, source={"file": path.name})
        job = job_create(kind=IMPORT, project_id=project.pk, volume_id=volume.pk,
                         params={"path": str(path), "voxel_size_nm": voxel_size_nm, "remove_source": False,
                                 "dataset": dataset})
    with job_running(job.pk) as ctx:
        ctx.on_progress = on_progress
        volume_import_run(ctx)
    job.refresh_from_db()
    return job


def volume_import_run(ctx: JobContext) -> None:
    """The import job's work: convert the source blockwise to an OME-Zarr pyramid."""
    job = ctx.job
    assert job.volume_id is not None  # import jobs are created with their volume (deleted with it)
    volume = Volume.objects.get(pk=job.volume_id)
    source_path = Path(job.params["path"])
    dest = volume_zarr_path(volume)
    try:
        ctx.progress(0.0, f"reading {source_path.name}")
        root = None if job.params.get("remove_source") else Path(settings.DATA_ROOT)
        source = readers.open_source(source_path, dataset=job.params.get("dataset"),
                                     root=root if root and source_path.is_relative_to(root) else None)
        try:
            voxel = job.params.get("voxel_size_nm") or source.voxel_size_nm
            if voxel is None:
                raise ValueError(f"{source_path.name} does not state its voxel size; give it (z, y, x in nm)")
            voxel = tuple(float(v) for v in voxel)
            info = omezarr.write_pyramid(
                source, dest, voxel_size_nm=voxel, name=volume.name,
                on_progress=lambda f: ctx.progress(0.95 * f, f"converting: {int(100 * f)} %"))
        finally:
            source.close()
        notice = source.metadata.get("notice")
        if notice:
            volume.source = {**volume.source, "notice": notice}
        volume_finish_import(volume, info=info, voxel_size_nm=voxel, source_format=source.format)
        job.result = {"volume": volume.pk, "shape": list(volume.shape), **({"notice": notice} if notice else {})}
        job.message = f"imported {volume.name}: {' x '.join(map(str, volume.shape))} voxels" + \
            (f". {notice}" if notice else "")
    except BaseException:
        Volume.objects.filter(pk=volume.pk).update(state=Volume.State.FAILED)
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        if job.params.get("remove_source"):
            shutil.rmtree(source_path.parent, ignore_errors=True)


def volume_finish_import(volume: Volume, *, info: Any, voxel_size_nm: tuple[float, ...],
                         source_format: str = "") -> Volume:
    """Record the pyramid on the volume, create its manual label layer, mark it ready."""
    dest = volume_zarr_path(volume)
    layer_create(volume, LayerName.MANUAL)
    z, y, x = info.levels[0].shape
    volume.shape_z, volume.shape_y, volume.shape_x = int(z), int(y), int(x)
    volume.voxel_z_nm, volume.voxel_y_nm, volume.voxel_x_nm = (float(v) for v in voxel_size_nm)
    volume.dtype = str(info.dtype)
    volume.zarr_path = str(dest.relative_to(Path(settings.MEDIA_ROOT)))
    base = info.levels[0].scale_nm
    volume.levels = [{"level": i, "shape": [int(s) for s in level.shape],
                      "downsample": [round(s / b) for s, b in zip(level.scale_nm, base)]}
                     for i, level in enumerate(info.levels)]
    volume.window = [float(info.window[0]), float(info.window[1])]
    volume.source = {**volume.source, "format": source_format}
    volume.state = Volume.State.READY
    volume.save()
    return volume


def volume_set_voxel_size(volume: Volume, user: Any, voxel_size_nm: tuple[float, ...]) -> Volume:
    """A manager corrects a volume's voxel size: the OME-Zarr scales of the image and every
    label layer, the volume's record, an audit event, and a signal on which reports made
    in the old units are computed again."""
    from annotations.signals import audit, volume_voxel_size_changed

    new = tuple(float(v) for v in voxel_size_nm)
    if len(new) != 3 or not all(1e-3 <= v <= 1e6 for v in new):
        raise ApplicationError(f"voxel size must be three numbers z, y, x in 0.001..1e6 nm, got {list(voxel_size_nm)}")
    if volume.state != Volume.State.READY:
        raise ApplicationError(f"volume is {volume.state}", code="volume_not_ready", status_code=409)
    old = volume.voxel_size_nm
    if new == old:
        return volume
    omezarr.set_voxel_size(volume_zarr_path(volume), new)
    with transaction.atomic():
        volume.voxel_z_nm, volume.voxel_y_nm, volume.voxel_x_nm = new
        volume.save(update_fields=["voxel_z_nm", "voxel_y_nm", "voxel_x_nm"])
        audit(volume, user, "voxel_size_changed", detail={"from": list(old), "to": list(new)})
        transaction.on_commit(lambda: volume_voxel_size_changed.send(sender=Volume, volume=volume, user=user))
    return volume
