"""The answers of the model-loop API (and the cells run) as serializers, so the OpenAPI schema
states every field.

Each one describes what a function of `selectors` returns (named in its docstring);
tests/segmentation/modelloop/test_outputs.py checks real payloads against the schema.
"""
from __future__ import annotations

from rest_framework import serializers

from emportal.jobs.models import Job


class ModelOutput(serializers.Serializer):
    """`selectors.model_payload`: a model version as the API and the panel show it."""

    id = serializers.IntegerField()
    project = serializers.IntegerField()
    volume = serializers.IntegerField(allow_null=True, help_text="the volume whose labels trained it")
    parent = serializers.IntegerField(allow_null=True, help_text="the version it was fine-tuned from")  # type: ignore[assignment]  # a field, not Field.parent
    job = serializers.IntegerField(allow_null=True)
    active = serializers.BooleanField(help_text="the version Segment uses and Retrain fine-tunes")
    classes = serializers.DictField(child=serializers.IntegerField(), help_text="{class name: label value}")
    hierarchy = serializers.DictField(child=serializers.CharField(allow_null=True),
                                      help_text="{class: enclosing class or null}")
    labels_hash = serializers.CharField(allow_blank=True, help_text="sha256 of the labels it was trained on")
    labeled_voxels = serializers.IntegerField()
    curve = serializers.ListField(child=serializers.DictField(), help_text="[{step, loss, val_dice}] during training")
    val_dice = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                     help_text="{class: Dice on held-out labeled slices}, null where not measured")
    mean_val_dice = serializers.FloatField(allow_null=True)
    config = serializers.DictField(help_text="the training configuration it was made with")
    created_by = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField(allow_null=True)


class ModelCompareOutput(serializers.Serializer):
    """`selectors.models_compare`: two versions and the change in Dice per class (b - a)."""

    a = ModelOutput()
    b = ModelOutput()
    classes = serializers.ListField(child=serializers.CharField())
    delta = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                  help_text="{class: Dice of b - Dice of a}, null where either lacks it")
    same_labels = serializers.BooleanField(help_text="both were trained on the same labels (same hash)")


class LayerStateOutput(serializers.Serializer):
    """`selectors.layer_write_state`: whether a job-written layer is whole."""

    state = serializers.ChoiceField(choices=["complete", "writing", "partial"])
    job = serializers.IntegerField(allow_null=True, help_text="the last job that wrote the layer")
    job_state = serializers.ChoiceField(choices=Job.State.choices, allow_null=True)
    message = serializers.CharField(allow_blank=True)


class RunOutput(serializers.Serializer):
    """`selectors.run_payload`: a segmentation or cells run as the panels read it."""

    id = serializers.IntegerField()
    volume = serializers.IntegerField()
    model_version = serializers.IntegerField(allow_null=True)
    job = serializers.IntegerField(allow_null=True)
    layer = serializers.CharField(help_text="the layer it wrote: prediction or cells_auto")
    outputs = serializers.DictField(help_text='what the run made; "kind" is prediction (timings, class_voxels, '
                                              'suggestions: [{z, y0, x0, y1, x1, score, dismissed, ...}]) or cells '
                                              '(method, flow, key slices, the cell list and, with truth, Dice)')
    created = serializers.DateTimeField(allow_null=True)
    layer_state = LayerStateOutput()


class StrokeAcceptedOutput(serializers.Serializer):
    uuid = serializers.UUIDField()
    version = serializers.IntegerField(help_text="the layer's version after the stroke")
    duplicate = serializers.BooleanField(help_text="true when this UUID was applied before (200, nothing changed)")
