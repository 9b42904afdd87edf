"""The review models move here from the annotations app, their tables unchanged.

State only: the tables (annotations_reviewassignment, annotations_reviewitem, annotations_comment,
annotations_auditevent, annotations_notification, with their rows, indexes and constraint) were
created by annotations 0003 and stay as they are (the models name them in ``db_table``);
annotations 0005 then removes the models from annotations' state. The content types move too, so
permissions granted on these models keep pointing at them.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ("reviewassignment", "reviewitem", "comment", "auditevent", "notification")


def _move_content_types(apps, schema_editor, *, old: str, new: str) -> None:  # noqa: ANN001
    """Relabel the models' content types (a fresh database has none yet: post_migrate makes them)."""
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if not content_type.objects.using(db).filter(app_label=new, model=model).exists():
            content_type.objects.using(db).filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor) -> None:  # noqa: ANN001
    _move_content_types(apps, schema_editor, old="annotations", new="reviews")


def backwards(apps, schema_editor) -> None:  # noqa: ANN001
    _move_content_types(apps, schema_editor, old="reviews", new="annotations")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('annotations', '0004_strokeblock'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReviewAssignment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(choices=[('slices', 'Slices'), ('cells', 'Cells'), ('volume', 'Volume')], default='slices', max_length=10)),
                        ('z0', models.PositiveIntegerField(default=0)),
                        ('z1', models.PositiveIntegerField(default=0, help_text='exclusive')),
                        ('cells', models.JSONField(blank=True, default=list, help_text="instance ids, scope 'cells'")),
                        ('due', models.DateField(blank=True, null=True)),
                        ('note', models.TextField(blank=True)),
                        ('state', models.CharField(choices=[('open', 'Open'), ('in_review', 'In Review'), ('changes_requested', 'Changes Requested'), ('fixed', 'Fixed'), ('approved', 'Approved')], default='open', max_length=20)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('updated', models.DateTimeField(auto_now=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reviews_created', to=settings.AUTH_USER_MODEL)),
                        ('fixer', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reviews_to_fix', to=settings.AUTH_USER_MODEL)),
                        ('layer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_assignments', to='annotations.labellayer')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_assignments', to='annotations.project')),
                        ('reviewer', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reviews_to_do', to=settings.AUTH_USER_MODEL)),
                        ('volume', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_assignments', to='annotations.volume')),
                    ],
                    options={
                        'db_table': 'annotations_reviewassignment',
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Comment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('z', models.PositiveIntegerField()),
                        ('y', models.PositiveIntegerField()),
                        ('x', models.PositiveIntegerField()),
                        ('text', models.TextField()),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('resolved', models.BooleanField(default=False)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('author', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('layer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='annotations.labellayer')),
                        ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='replies', to='reviews.comment')),
                        ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('volume', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='comments', to='annotations.volume')),
                        ('assignment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='comments', to='reviews.reviewassignment')),
                    ],
                    options={
                        'db_table': 'annotations_comment',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='ReviewItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('slice', 'Slice'), ('cell', 'Cell')], max_length=5)),
                        ('key', models.PositiveBigIntegerField(help_text='z of a slice or id of a cell')),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('approved', 'Approved'), ('changes_requested', 'Changes Requested'), ('fixed', 'Fixed')], default='pending', max_length=20)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('assignment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='reviews.reviewassignment')),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'annotations_reviewitem',
                        'ordering': ['assignment', 'kind', 'key'],
                    },
                ),
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('layer', models.CharField(blank=True, max_length=50)),
                        ('at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('action', models.CharField(max_length=50)),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('actor', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audit_events', to='annotations.project')),
                        ('volume', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='audit_events', to='annotations.volume')),
                    ],
                    options={
                        'db_table': 'annotations_auditevent',
                        'ordering': ['at', 'id'],
                        'indexes': [models.Index(fields=['volume', 'at'], name='annotations_volume__fee6d6_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('assigned', 'Assigned'), ('changes_requested', 'Changes Requested'), ('approved', 'Approved'), ('fixed', 'Fixed'), ('comment', 'Comment')], max_length=20)),
                        ('text', models.CharField(max_length=500)),
                        ('link', models.CharField(blank=True, max_length=500)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('read', models.BooleanField(default=False)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'annotations_notification',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['user', 'read'], name='annotations_user_id_cec82d_idx')],
                    },
                ),
                migrations.AddIndex(
                    model_name='reviewassignment',
                    index=models.Index(fields=['project', 'state'], name='annotations_project_8f610d_idx'),
                ),
                migrations.AddIndex(
                    model_name='comment',
                    index=models.Index(fields=['volume', 'resolved'], name='annotations_volume__dc5257_idx'),
                ),
                migrations.AddConstraint(
                    model_name='reviewitem',
                    constraint=models.UniqueConstraint(fields=('assignment', 'kind', 'key'), name='one_item_per_key'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
