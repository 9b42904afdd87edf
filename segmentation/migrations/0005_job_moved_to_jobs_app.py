"""Job now belongs to the jobs app (emportal/jobs, table unchanged): the foreign keys of model
versions, runs and reports point there, and Job leaves this app's state. No table changes."""
import django.db.models.deletion
from django.db import migrations, models


def _job_fk() -> models.ForeignKey:
    return models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='jobs.job')


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
        ('segmentation', '0004_job_kind_labels'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name='modelversion', name='job', field=_job_fk()),
                migrations.AlterField(model_name='segmentationrun', name='job', field=_job_fk()),
                migrations.AlterField(model_name='featurereport', name='job', field=_job_fk()),
                migrations.DeleteModel(name='Job'),
            ],
            database_operations=[],
        ),
    ]
