"""REST endpoint of the cells job: queue one, read the latest run (its cell list and Dice)."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import volume_for_user
from annotations.layer_names import LayerName
from annotations.models import Role
from emportal.jobs.api import QUEUED_RESPONSES, queued
from emportal.schema import nullable
from segmentation.cells import services
from segmentation.modelloop.api import run_or_null
from segmentation.modelloop.outputs import RunOutput
from segmentation.modelloop.selectors import latest_run


class CellsInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=list(services.METHODS), default="fusion")
    flow = serializers.ChoiceField(choices=list(services.FLOWS), default="dis")
    compare = serializers.BooleanField(default=False)


class CellsApi(APIView):
    @extend_schema(request=CellsInput, responses=QUEUED_RESPONSES)
    def post(self, request: Request, volume_id: int) -> Response:
        """Queue cell instances from the painted key slices into the "cells_auto" layer."""
        volume, _ = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = CellsInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.volume_cells(volume, request.user, **data.validated_data)
        return queued(job)

    @extend_schema(responses={200: nullable(RunOutput)})
    def get(self, request: Request, volume_id: int) -> HttpResponse:
        """The latest cells run: the cell list and, with ground truth, per-cell Dice (null when none)."""
        volume, _ = volume_for_user(request.user, volume_id)
        run = latest_run(volume, LayerName.CELLS_AUTO)
        return run_or_null(run)
