"""Django's `flush`, able to empty the ledger tables too.

Why here: the ledger's DELETE triggers refuse every row deletion, and on SQLite `flush`
(run after every transactional test, by anyone's tests) empties tables with DELETE FROM.
Emptying the whole database is not editing the ledger, so the guard is lifted for exactly
that statement list and put back at once.
"""

from __future__ import annotations

from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

from pumasi.ledger.triggers import without_delete_guard


class Command(DjangoFlush):
    def handle(self, **options):
        connection = connections[options["database"]]
        with without_delete_guard(connection):
            return super().handle(**options)
