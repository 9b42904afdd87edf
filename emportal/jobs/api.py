"""REST endpoints for jobs: a project's list, one job, cancel.

Reads change nothing: failing jobs whose worker died is the beat's work (tasks.py).
"""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import project_for_user
from annotations.models import Role
from emportal.jobs.models import Job
from emportal.jobs.services import job_cancel, job_payload
from emportal.schema import ErrorOutput


class JobOutput(serializers.Serializer):
    """A job as `job_payload` shapes it: what every endpoint that queues work answers (202)."""

    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="a kind an app registered, e.g. import, retrain, report")
    state = serializers.ChoiceField(choices=Job.State.choices)
    progress = serializers.FloatField(help_text="0..1")
    message = serializers.CharField()
    error_code = serializers.CharField(help_text="'' unless failed, e.g. invalid_input, worker_lost, queue_lost")
    volume = serializers.IntegerField(allow_null=True)
    result = serializers.DictField()
    created = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)


# What an endpoint that queues a job answers: the job, or 409 naming the one already active.
QUEUED_RESPONSES = {202: JobOutput, 409: ErrorOutput}


def queued(job: Job) -> Response:
    """The 202 answer of an endpoint that queued `job` (see QUEUED_RESPONSES)."""
    return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)


def _job_for_user(request: Request, job_id: int, *, min_role: Role = Role.VIEWER) -> Job:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise Http404("not found")
    project_for_user(request.user, job.project_id, min_role=min_role)
    return job


class JobListApi(APIView):
    @extend_schema(responses=JobOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        jobs = Job.objects.filter(project=project).order_by("-created")[:100]
        return Response([job_payload(job) for job in jobs])


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutput)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(job_payload(_job_for_user(request, job_id)))


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOutput)
    def post(self, request: Request, job_id: int) -> Response:
        job = _job_for_user(request, job_id, min_role=Role.ANNOTATOR)
        return Response(job_payload(job_cancel(job)))
