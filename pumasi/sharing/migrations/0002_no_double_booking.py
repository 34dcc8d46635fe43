"""No two live bookings of one resource may overlap: an exclusion constraint on PostgreSQL.

On SQLite there is no such constraint; `services.create_booking` checks and inserts inside one
write transaction, and SQLite's IMMEDIATE transactions hold the database write lock from BEGIN,
so two processes cannot both pass the check."""

from django.db import migrations

LIVE = "('held', 'confirmed', 'checked_in', 'overstay')"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        "ALTER TABLE sharing_booking ADD CONSTRAINT booking_no_overlap EXCLUDE USING gist "
        "(resource_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
        f"WHERE (status IN {LIVE})"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE sharing_booking DROP CONSTRAINT IF EXISTS booking_no_overlap")


class Migration(migrations.Migration):
    dependencies = [("sharing", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
