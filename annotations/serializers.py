"""The input rules of annotation edits, shared by REST and the volume websocket.

Both doors hand the stroke service what these serializers accept, so a payload one
refuses the other refuses too, with the same error. The fields are strict JSON types:
an integer is a JSON integer (not ``true``, not ``5.9`` or ``5.0``, not ``"5"``), a
number is not a boolean, text is a string, a UUID is a string. DRF's own fields coerce
(``IntegerField`` takes ``"5"`` and ``5.0``, ``UUIDField`` an integer, ``CharField`` a
number), which let a socket paint slice 5 for ``"index": 5.9``.
"""
from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.layer_names import LayerName
from annotations.raster import MAX_POINTS
from emportal.errors import ApplicationError

AXES = ["z", "y", "x"]
MAX_INDEX = 2**31 - 1  # no volume is deeper; keeps every index a storable integer


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    """A finite JSON number (an integer is a number too; a boolean is not)."""

    def to_internal_value(self, data: Any) -> float:
        return _finite(data, self)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


def _finite(value: Any, field: serializers.Field) -> float:
    if type(value) not in (int, float):  # bool is a subclass of int, and not a number here
        field.fail("invalid")
    try:
        number = float(value)
    except OverflowError:
        field.fail("invalid")
    if not math.isfinite(number):
        field.fail("invalid")
    return number


@extend_schema_field({"type": "array", "minItems": 1, "maxItems": MAX_POINTS,
                      "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}})
class PointsField(serializers.Field):
    """[[row, column], ...] in the stroke's plane: at most MAX_POINTS pairs of finite numbers.

    The count is checked before any point is looked at, so a million points are refused
    at once rather than after a million checks.
    """

    default_error_messages = {
        "not_a_list": "Expected a list of [row, column] points.",
        "empty": "A stroke needs at least one point.",
        "too_many": "{count} points is more than the {limit} a stroke may have.",
        "bad_point": "Point {index} is not [row, column] with two finite numbers.",
    }

    def to_internal_value(self, data: Any) -> list[list[float]]:
        if not isinstance(data, list):
            self.fail("not_a_list")
        if len(data) > MAX_POINTS:
            self.fail("too_many", count=len(data), limit=MAX_POINTS)
        if not data:
            self.fail("empty")
        points = []
        for index, point in enumerate(data):
            if type(point) is not list or len(point) != 2 or not all(type(v) in (int, float) for v in point):
                self.fail("bad_point", index=index)
            try:
                row, col = float(point[0]), float(point[1])
            except OverflowError:
                self.fail("bad_point", index=index)
            if not (math.isfinite(row) and math.isfinite(col)):
                self.fail("bad_point", index=index)
            points.append([row, col])
        return points

    def to_representation(self, value: Any) -> Any:
        return value


class StrokeInput(serializers.Serializer):
    """Shape only; the stroke service checks geometry, classes and roles."""

    uuid = StrictUUIDField()
    layer = StrictCharField(max_length=50, default=LayerName.MANUAL.value)
    axis = serializers.ChoiceField(choices=AXES)
    index = StrictIntegerField(min_value=0, max_value=MAX_INDEX)
    points = PointsField()
    radius = StrictFloatField(default=1.0)
    value = StrictIntegerField(default=0)
    mode = serializers.ChoiceField(choices=["paint", "erase", "fill", "polygon"])


class StrokeRefInput(serializers.Serializer):
    """The stroke an undo or redo names."""

    uuid = StrictUUIDField()


class CompleteSliceInput(serializers.Serializer):
    layer = StrictCharField(max_length=50, default=LayerName.MANUAL.value)
    axis = serializers.ChoiceField(choices=AXES)
    index = StrictIntegerField(min_value=0, max_value=MAX_INDEX)
    complete = StrictBooleanField(default=True)


def validated(serializer: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """`data` as `serializer` accepts it, or the ApplicationError both doors answer with.

    The error is what DRF's handler makes of a ValidationError (emportal.errors), so a
    refused websocket message reads like the refused REST request.
    """
    checked = serializer(data=data)
    if not checked.is_valid():
        raise ApplicationError("The request is not valid.", code="invalid", detail=checked.errors)
    return dict(checked.validated_data)


def stroke_input_validated(data: Any) -> dict[str, Any]:
    """A stroke payload checked by :class:`StrokeInput`, its UUID as text: what the stroke service takes."""
    payload = validated(StrokeInput, data)
    return {**payload, "uuid": str(payload["uuid"])}
