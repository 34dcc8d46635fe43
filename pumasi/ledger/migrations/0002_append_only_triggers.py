"""Append-only in the database itself: triggers refusing UPDATE and DELETE on transactions and
postings, written for the vendor at hand (SQLite or PostgreSQL)."""

from django.db import migrations


def install(apps, schema_editor):
    from pumasi.ledger import triggers

    for sql in triggers.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


def uninstall(apps, schema_editor):
    from pumasi.ledger import triggers

    for sql in triggers.uninstall_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
