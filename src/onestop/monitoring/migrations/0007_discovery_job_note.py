# A discovery job's message becomes a note (template + values), shown in the reader's language.

from django.db import migrations, models


def _messages_to_notes(apps, schema_editor):
    # Messages written before this were in the worker's language: kept word for word.
    DiscoveryJob = apps.get_model("monitoring", "DiscoveryJob")
    for job in DiscoveryJob.objects.exclude(message="").only("pk", "message").iterator():
        job.note = {"template": "{text}", "params": {"text": job.message}}
        job.save(update_fields=["note"])


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0006_check_notes'),
    ]

    operations = [
        migrations.AddField(
            model_name='discoveryjob',
            name='note',
            field=models.JSONField(blank=True, default=dict, verbose_name='message'),
        ),
        migrations.RunPython(_messages_to_notes, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='discoveryjob',
            name='message',
        ),
    ]
