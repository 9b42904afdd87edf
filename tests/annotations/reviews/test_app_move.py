"""Review rows written while they belonged to annotations are the reviews app's rows after migrating.

The move is state only (the tables keep their names), so a database built before it must keep
every row, relation and content type; this migrates the test database back to before the move,
writes rows with the models of that time, and migrates forward again.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotations.reviews.models import AuditEvent, Comment, Notification, ReviewAssignment, ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("annotations", "0004_strokeblock"), ("reviews", None)]
#: The models of that time (reviews unapplied), with the content types and users they point at.
STATE_BEFORE = [("annotations", "0004_strokeblock"), ("contenttypes", "0002_remove_content_type_name")]


@pytest.fixture
def executor() -> Iterator[MigrationExecutor]:
    """A migration executor; whatever the test did, the database ends at the latest migrations."""
    executor = MigrationExecutor(connection)
    yield executor
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_rows_written_before_the_move_are_read_by_the_reviews_app(executor: MigrationExecutor) -> None:
    executor.migrate(BEFORE)
    old = executor.loader.project_state(STATE_BEFORE).apps
    ContentType.objects.clear_cache()
    old_ct = old.get_model("contenttypes", "ContentType")
    old_ct.objects.get_or_create(app_label="annotations", model="comment")
    user = old.get_model("auth", "User").objects.create(username="ann")
    project = old.get_model("annotations", "Project").objects.create(name="P")
    volume = old.get_model("annotations", "Volume").objects.create(project=project, name="v")
    layer = old.get_model("annotations", "LabelLayer").objects.create(volume=volume, name="manual")
    assignment = old.get_model("annotations", "ReviewAssignment").objects.create(
        project=project, volume=volume, layer=layer, reviewer=user, z1=2)
    old.get_model("annotations", "ReviewItem").objects.create(assignment=assignment, kind="slice", key=1)
    comment_model = old.get_model("annotations", "Comment")
    root = comment_model.objects.create(volume=volume, assignment=assignment, z=1, y=2, x=3, text="root", author=user)
    comment_model.objects.create(volume=volume, parent=root, z=1, y=2, x=3, text="reply")
    old.get_model("annotations", "AuditEvent").objects.create(project=project, volume=volume, action="stroke_undo")
    old.get_model("annotations", "Notification").objects.create(user=user, kind="assigned", text="hi")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()

    moved = ReviewAssignment.objects.get(pk=assignment.pk)
    assert moved.reviewer == User.objects.get(username="ann") and moved.items.get().key == 1
    assert Comment.objects.get(text="root").replies.get().text == "reply"
    assert Comment.objects.get(text="root").assignment == moved
    assert AuditEvent.objects.get().action == "stroke_undo" and Notification.objects.get().text == "hi"
    assert ReviewItem.objects.count() == 1
    assert ContentType.objects.get_for_model(Comment).pk == old_ct.objects.get(model="comment").pk
    assert not ContentType.objects.filter(app_label="annotations", model="comment").exists()
    assert ReviewAssignment.objects.create(project_id=project.pk, volume_id=volume.pk, layer_id=layer.pk).pk \
        == assignment.pk + 1
