"""On PostgreSQL, the database itself refuses to change audit and domain events, and refuses to
delete audit events younger than 180 days (the retention floor), whoever connects.

SQLite is the single-machine default; there the model layer enforces the same rule (test
databases on SQLite are emptied with DELETE, which such a trigger would block).
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION onestop_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION '% is append-only: rows cannot be updated', TG_TABLE_NAME;
    END IF;
    IF TG_TABLE_NAME = 'core_auditevent' AND OLD.occurred_at > now() - interval '180 days' THEN
        RAISE EXCEPTION 'audit events are kept at least 180 days';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
"""

TRIGGERS = [
    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION onestop_append_only();"
    for table in ("core_auditevent", "core_domainevent")
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for statement in TRIGGERS:
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ("core_auditevent", "core_domainevent"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS onestop_append_only();")


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
