"""The review models now belong to the reviews app (annotations/reviews, tables unchanged): they
leave this app's state. No table changes; no foreign key of this app points at them."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0004_strokeblock'),
        ('reviews', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Comment'),
                migrations.DeleteModel(name='ReviewItem'),
                migrations.DeleteModel(name='ReviewAssignment'),
                migrations.DeleteModel(name='AuditEvent'),
                migrations.DeleteModel(name='Notification'),
            ],
            database_operations=[],
        ),
    ]
