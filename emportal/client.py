"""A small Python client for EM Portal's REST API, authenticated with an API token.

Create a token on the account page (click your user name at the top right), then::

    from emportal.client import EMPortal

    portal = EMPortal("https://em.example.org", token="emp_...")   # or $EMPORTAL_TOKEN
    project = portal.projects()[0]
    job = portal.wait(portal.upload(project["id"], "cell.tif", voxel_size_nm=(8, 4, 4)))
    volume_id = job.volume
    # ... paint a few slices (and cell keys) in the browser, then:
    portal.wait(portal.retrain(volume_id, minutes=5))
    portal.wait(portal.segment(volume_id))
    portal.wait(portal.cells(volume_id))
    report = portal.wait(portal.report(volume_id))
    table = portal.report_table(report.result["report"])   # a pandas DataFrame

It needs only ``requests`` (and ``pandas`` for :meth:`EMPortal.report_table`), so this one
file can be copied next to a script. Every refusal of the server raises
:class:`EMPortalError` with the API's error code and message.
"""
from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    import pandas

FINISHED = ("succeeded", "failed", "cancelled")


class EMPortalError(Exception):
    """A request the server refused, or a job that did not succeed."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Job:
    """A background job (import, retrain, segment, cells, report) as ``/api/jobs/<id>/`` shows it."""

    id: int
    kind: str
    state: str
    progress: float  # 0..1
    message: str = ""
    error_code: str = ""
    volume: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    finished: str | None = None

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Job:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in payload.items() if k in known})


def print_progress(job: Job) -> None:
    """The default progress display of :meth:`EMPortal.wait`: one updating line on stderr."""
    end = "\n" if job.done else ""
    sys.stderr.write(f"\r{job.kind} {job.id}: {job.state} {job.progress:4.0%} {job.message[:60]:<60}{end}")
    sys.stderr.flush()


class EMPortal:
    """One EM Portal server, as the user whose token this is (same roles as in the browser).

    Parameters
    ----------
    url
        The server's address, e.g. ``"https://em.example.org"``.
    token
        An API token from the account page; ``None`` reads ``$EMPORTAL_TOKEN``.
    timeout
        Seconds to wait for each answer (uploads get ten times this).
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        token = token or os.environ.get("EMPORTAL_TOKEN")
        if not token:
            raise EMPortalError("give a token (create one on the account page) or set $EMPORTAL_TOKEN")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})

    # ------------------------------------------------------------------ plumbing
    def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        """One API request; a refusal (4xx/5xx) raises :class:`EMPortalError`."""
        response = self.session.request(method, f"{self.url}{path}", timeout=timeout or self.timeout, **kwargs)
        if response.status_code >= 400:
            code, message = "error", response.text[:500] or response.reason
            try:
                error = response.json().get("error", {})
                code, message = error.get("code", code), error.get("message", message)
            except (ValueError, AttributeError):
                pass
            raise EMPortalError(f"{method} {path}: {response.status_code} {message}", status=response.status_code,
                                code=code)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # ------------------------------------------------------------------ reads
    def projects(self) -> list[dict[str, Any]]:
        """The projects you are a member of: ``[{"id", "name", "description"}, ...]``."""
        return list(self._json("GET", "/api/projects/"))

    def volumes(self, project_id: int) -> list[dict[str, Any]]:
        """The project's volumes: ``[{"id", "name", "shape", "voxel_size_nm", "dtype"}, ...]`` (ZYX)."""
        return list(self._json("GET", f"/api/projects/{project_id}/volumes/"))

    def job(self, job_id: int) -> Job:
        return Job.from_payload(self._json("GET", f"/api/jobs/{job_id}/"))

    def reports(self, volume_id: int) -> list[dict[str, Any]]:
        """The volume's feature reports, newest first."""
        return list(self._json("GET", f"/api/volumes/{volume_id}/reports/")["reports"])

    def report_table(self, report_id: int) -> pandas.DataFrame:
        """A report's table of cells (one row per cell, units in the column names) as a DataFrame."""
        import pandas

        body = self.request("GET", f"/api/reports/{report_id}/download/csv/").content
        return pandas.read_csv(io.BytesIO(body))

    # ------------------------------------------------------------------ work (each returns its job)
    def upload(self, project_id: int, path: str | os.PathLike[str], *, name: str | None = None,
               voxel_size_nm: tuple[float, float, float] | None = None) -> Job:
        """Upload a volume file (TIFF, HDF5, MRC, ...) into the project; its import runs as a job.

        ``voxel_size_nm`` is (z, y, x) in nanometres; without it the server reads the file's
        own calibration.
        """
        path = Path(path)
        data: dict[str, str] = {"name": name or path.stem}
        if voxel_size_nm is not None:
            data["voxel_size_nm"] = ",".join(str(float(v)) for v in voxel_size_nm)
        with path.open("rb") as handle:
            payload = self._json("POST", f"/api/projects/{project_id}/volumes/", data=data,
                                 files={"file": (path.name, handle)}, timeout=self.timeout * 10)
        return Job.from_payload(payload)

    def retrain(self, volume_id: int, *, minutes: float = 5.0, from_scratch: bool = False,
                max_steps: int | None = None, config: dict[str, int] | None = None) -> Job:
        """Train a new model version on the volume's labels for at most ``minutes`` (or
        ``max_steps``); ``config`` overrides integer training options of the server."""
        body: dict[str, Any] = {"minutes": minutes, "from_scratch": from_scratch}
        if max_steps is not None:
            body["max_steps"] = max_steps
        if config is not None:
            body["config"] = config
        return Job.from_payload(self._json("POST", f"/api/volumes/{volume_id}/retrain/", json=body))

    def segment(self, volume_id: int, *, model: int | None = None, tta: bool = False) -> Job:
        """Predict the volume into its "prediction" layer with a model version (default: the active one)."""
        body: dict[str, Any] = {"tta": tta}
        if model is not None:
            body["model"] = model
        return Job.from_payload(self._json("POST", f"/api/volumes/{volume_id}/segment/", json=body))

    def cells(self, volume_id: int) -> Job:
        """Cell instances from the painted key slices into the volume's "cells_auto" layer."""
        return Job.from_payload(self._json("POST", f"/api/volumes/{volume_id}/cells/", json={}))

    def report(self, volume_id: int, *, labels_layer: str | None = None, cells_layer: str | None = None,
               meshes: bool = True) -> Job:
        """Measure every cell of the volume; the finished job's ``result["report"]`` is the report id."""
        body: dict[str, Any] = {"meshes": meshes}
        body.update({k: v for k, v in (("labels_layer", labels_layer), ("cells_layer", cells_layer)) if v})
        return Job.from_payload(self._json("POST", f"/api/volumes/{volume_id}/reports/", json=body))

    def wait(self, job: Job | int, *, timeout: float | None = None, poll: float = 1.0,
             progress: Callable[[Job], None] | bool = True) -> Job:
        """Poll the job until it finishes; returns it when it succeeded, raises otherwise.

        ``progress`` is called with each new state of the job (``True``: a line on stderr,
        ``False``: silent); ``timeout`` in seconds (``None``: no limit).
        """
        show = print_progress if progress is True else (progress or None)
        job_id = job if isinstance(job, int) else job.id
        deadline = None if timeout is None else time.monotonic() + timeout
        last: tuple[str, float, str] | None = None
        while True:
            current = self.job(job_id)
            if show is not None and (current.state, current.progress, current.message) != last:
                show(current)
                last = (current.state, current.progress, current.message)
            if current.done:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise EMPortalError(f"job {job_id} did not finish within {timeout} s", code="timeout")
            time.sleep(poll)
        if current.state != "succeeded":
            raise EMPortalError(f"{current.kind} job {job_id} {current.state}: {current.message}",
                                code=current.error_code or current.state)
        return current
