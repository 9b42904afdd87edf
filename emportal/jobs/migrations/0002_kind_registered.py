"""Job.kind takes any kind an app registers (no choices; validated by job_create) and room
for longer names."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
        ('segmentation', '0005_job_moved_to_jobs_app'),
    ]

    operations = [
        migrations.AlterField(
            model_name='job',
            name='kind',
            field=models.CharField(max_length=32),
        ),
    ]
