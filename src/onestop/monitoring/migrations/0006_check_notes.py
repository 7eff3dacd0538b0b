# Check messages become notes (template + values) so they are shown in the reader's language.

from django.db import migrations, models


def _messages_to_notes(apps, schema_editor):
    # Messages written before this were English text: kept word for word.
    Check = apps.get_model("monitoring", "Check")
    CheckStateChange = apps.get_model("monitoring", "CheckStateChange")
    for model, old, new in ((Check, "last_message", "last_note"), (CheckStateChange, "message", "note")):
        rows = model.objects.exclude(**{old: ""}).only("pk", old).iterator(chunk_size=2000)
        batch = []
        for row in rows:
            setattr(row, new, {"template": "{text}", "params": {"text": getattr(row, old)}})
            batch.append(row)
            if len(batch) == 2000:
                model.objects.bulk_update(batch, [new])
                batch = []
        model.objects.bulk_update(batch, [new])


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0005_snmp_trap_engine_ids'),
    ]

    operations = [
        migrations.AddField(
            model_name='check',
            name='last_note',
            field=models.JSONField(blank=True, default=dict, verbose_name='last message'),
        ),
        migrations.AddField(
            model_name='checkstatechange',
            name='note',
            field=models.JSONField(blank=True, default=dict, verbose_name='message'),
        ),
        migrations.RunPython(_messages_to_notes, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='check',
            name='last_message',
        ),
        migrations.RemoveField(
            model_name='checkstatechange',
            name='message',
        ),
    ]
