"""The Job model moves here from the segmentation app, its table unchanged.

State only: the table `segmentation_job` (with its rows, index and constraint) was created by
segmentation's migrations 0001-0004 and stays as it is; segmentation 0005 then removes Job from
segmentation's state and points its foreign keys here.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('annotations', '0001_initial'),
        ('segmentation', '0004_job_kind_labels'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Job',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('import', 'Import'), ('retrain', 'Retrain'), ('segment', 'Segment'), ('cells', 'Cells'), ('report', 'Report'), ('labels', 'Labels')], max_length=10)),
                        ('state', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=10)),
                        ('progress', models.FloatField(default=0.0)),
                        ('message', models.CharField(blank=True, max_length=500)),
                        ('error_code', models.CharField(blank=True, max_length=50)),
                        ('params', models.JSONField(default=dict)),
                        ('result', models.JSONField(default=dict)),
                        ('log', models.TextField(blank=True)),
                        ('cancel_requested', models.BooleanField(default=False)),
                        ('worker', models.CharField(blank=True, help_text='who claimed it', max_length=200)),
                        ('heartbeat', models.DateTimeField(blank=True, null=True)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('started', models.DateTimeField(blank=True, null=True)),
                        ('finished', models.DateTimeField(blank=True, null=True)),
                        ('lock_key', models.CharField(blank=True, default='', help_text="at most one queued or running job per (volume, lock_key); '' = no limit", max_length=80)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='annotations.project')),
                        ('volume', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='annotations.volume')),
                    ],
                    options={
                        'db_table': 'segmentation_job',
                        'ordering': ['-created'],
                        'indexes': [models.Index(fields=['state', 'heartbeat'], name='segmentatio_state_fbeb87_idx')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('state__in', ['queued', 'running']), models.Q(('lock_key', ''), _negated=True)), fields=('volume', 'lock_key'), name='one_active_job_per_volume_and_lock_key')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
