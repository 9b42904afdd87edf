"""Projects, memberships, volumes, label classes and label layers."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.IntegerChoices):
    """Ordered: a higher role can do everything a lower one can."""

    VIEWER = 10, "viewer"
    ANNOTATOR = 20, "annotator"
    REVIEWER = 30, "reviewer"
    MANAGER = 40, "manager"

    @classmethod
    def from_name(cls, name: str) -> Role:
        for role in cls:
            if role.label == name.lower():
                return role
        raise ValueError(f"unknown role {name!r}; use one of {', '.join(r.label for r in cls)}")


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.IntegerField(choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} is {Role(self.role).label} of {self.project}"


class LabelClass(models.Model):
    class Kind(models.TextChoices):
        SEMANTIC = "semantic"
        INSTANCE = "instance"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    value = models.PositiveIntegerField()
    color = models.CharField(max_length=7, help_text="#rrggbb")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SEMANTIC)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")

    class Meta:
        ordering = ["value"]
        constraints = [
            models.UniqueConstraint(fields=["project", "value"], name="one_class_per_value"),
            models.UniqueConstraint(fields=["project", "name"], name="one_class_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        from annotations.defaults import hex_to_rgba

        return hex_to_rgba(self.color)


class Volume(models.Model):
    class State(models.TextChoices):
        IMPORTING = "importing"
        READY = "ready"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="volumes")
    name = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IMPORTING)
    shape_z = models.PositiveIntegerField(default=0)
    shape_y = models.PositiveIntegerField(default=0)
    shape_x = models.PositiveIntegerField(default=0)
    voxel_z_nm = models.FloatField(default=1.0)
    voxel_y_nm = models.FloatField(default=1.0)
    voxel_x_nm = models.FloatField(default=1.0)
    dtype = models.CharField(max_length=16, blank=True)
    zarr_path = models.CharField(max_length=500, blank=True, help_text="relative to MEDIA_ROOT")
    levels = models.JSONField(default=list, help_text="[{level, shape, downsample}] of the pyramid")
    window = models.JSONField(default=list, help_text="suggested contrast [lo, hi]")
    source = models.JSONField(default=dict, help_text="where it came from: format, file name, metadata")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.shape_z, self.shape_y, self.shape_x)

    @property
    def voxel_size_nm(self) -> tuple[float, float, float]:
        return (self.voxel_z_nm, self.voxel_y_nm, self.voxel_x_nm)


class LabelLayer(models.Model):
    """A label volume stored as an NGFF label group inside the volume's OME-Zarr."""

    class Kind(models.TextChoices):
        LABELS = "labels"  # class values
        INSTANCES = "instances"  # cell ids

    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=50)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LABELS)
    version = models.PositiveIntegerField(default=0, help_text="bumped by every change, for acks and cache keys")
    editable = models.BooleanField(default=True)
    max_value = models.PositiveBigIntegerField(default=0, help_text="largest value ever painted (new cell ids)")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["volume", "name"], name="one_layer_per_name")]

    def __str__(self) -> str:
        return f"{self.volume}:{self.name}"


class CompleteSlice(models.Model):
    """A slice whose unpainted voxels count as background for training."""

    layer = models.ForeignKey(LabelLayer, on_delete=models.CASCADE, related_name="complete_slices")
    axis = models.CharField(max_length=1, choices=[("z", "z"), ("y", "y"), ("x", "x")])
    index = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["layer", "axis", "index"], name="one_mark_per_slice")]


class Stroke(models.Model):
    """One edit of a label layer, kept forever: the layer is the replay of the active strokes.

    The effect is stored, not only the gesture: `mask` (bit-packed, zlib) over the 3D box
    z0:z1, y0:y1, x0:x1 says which voxels the stroke set, to `value` or, for bulk writes, to
    the voxels in `after`. `before` holds what those voxels held, compressed, for audit
    and fast restores. Undo and redo flip `active` and recompute the box from the log,
    which stays exact when other people's strokes overlap.
    """

    class Mode(models.TextChoices):
        PAINT = "paint"
        ERASE = "erase"
        FILL = "fill"
        POLYGON = "polygon"
        REPLACE = "replace"  # bulk writes: demo slices, accepted predictions, label imports (StrokeBlock)

    layer = models.ForeignKey(LabelLayer, on_delete=models.CASCADE, related_name="strokes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    uuid = models.UUIDField(unique=True)
    created = models.DateTimeField(auto_now_add=True)
    axis = models.CharField(max_length=1)
    index = models.PositiveIntegerField()
    mode = models.CharField(max_length=10, choices=Mode.choices)
    value = models.PositiveBigIntegerField(default=0)
    radius = models.FloatField(default=0)
    points = models.JSONField(default=list)
    z0 = models.PositiveIntegerField()
    z1 = models.PositiveIntegerField()
    y0 = models.PositiveIntegerField()
    y1 = models.PositiveIntegerField()
    x0 = models.PositiveIntegerField()
    x1 = models.PositiveIntegerField()
    mask = models.BinaryField()
    after = models.BinaryField(null=True)
    before = models.BinaryField()
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(help_text="layer version this stroke produced")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["layer", "z0", "z1"])]

    def __str__(self) -> str:
        return f"{self.mode} {self.uuid} on {self.layer}"


class StrokeBlock(models.Model):
    """One box of a stroke too large for one row (a label import), stored like a Stroke's effect.

    The stroke's own `mask` is then empty and its box spans all its blocks; replay and undo
    read only the blocks a box touches, so neither holds the whole volume in memory.
    """

    stroke = models.ForeignKey(Stroke, on_delete=models.CASCADE, related_name="blocks")
    z0 = models.PositiveIntegerField()
    z1 = models.PositiveIntegerField()
    y0 = models.PositiveIntegerField()
    y1 = models.PositiveIntegerField()
    x0 = models.PositiveIntegerField()
    x1 = models.PositiveIntegerField()
    mask = models.BinaryField()
    after = models.BinaryField()
    before = models.BinaryField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["stroke", "z0", "z1"])]
