"""Trigram search for Korean: an FTS5 trigram table on SQLite, pg_trgm GIN indexes on PostgreSQL.

Hand-written because each database needs its own DDL; the other vendor's branch is a no-op.
The FTS5 table is kept in step by `pumasi.cocreation.search` (called from the services)."""

from django.db import migrations

FTS_TABLE = "cocreation_search_fts"


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(title, body, tokenize='trigram')"
        )
    elif connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS cocreation_search_title_trgm ON cocreation_searchdocument "
            "USING gin (title gin_trgm_ops)"
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS cocreation_search_body_trgm ON cocreation_searchdocument "
            "USING gin (body gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    elif connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS cocreation_search_title_trgm")
        schema_editor.execute("DROP INDEX IF EXISTS cocreation_search_body_trgm")


class Migration(migrations.Migration):
    dependencies = [("cocreation", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
