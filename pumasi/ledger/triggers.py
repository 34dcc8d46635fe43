"""The database half of "append-only": triggers that refuse UPDATE and DELETE on transactions
and postings, on SQLite and PostgreSQL. Installed by migration 0002; the flush command uses
`without_delete_guard` because emptying a whole test database is not editing the ledger."""

from __future__ import annotations

from contextlib import contextmanager

GUARDED_TABLES = ("ledger_transaction", "ledger_posting")
MESSAGE = "the ledger is append-only: post a reversal instead"


def _sqlite_statements(table: str, op: str) -> list[str]:
    name = f"{table}_no_{op.lower()}"
    return [
        f"DROP TRIGGER IF EXISTS {name}",
        f"CREATE TRIGGER {name} BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, '{table}: {MESSAGE}'); END",
    ]


PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%: {MESSAGE} (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
END $$
"""


def install_sql(vendor: str, ops: tuple[str, ...] = ("UPDATE", "DELETE")) -> list[str]:
    statements: list[str] = []
    if vendor == "sqlite":
        for table in GUARDED_TABLES:
            for op in ops:
                statements += _sqlite_statements(table, op)
    elif vendor == "postgresql":
        statements.append(PG_FUNCTION)
        for table in GUARDED_TABLES:
            for op in ops:
                name = f"{table}_no_{op.lower()}"
                statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                statements.append(
                    f"CREATE TRIGGER {name} BEFORE {op} ON {table} FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
                )
    else:
        raise RuntimeError(f"pumasi's ledger has no append-only triggers for the {vendor} database")
    return statements


def uninstall_sql(vendor: str, ops: tuple[str, ...] = ("UPDATE", "DELETE")) -> list[str]:
    statements = []
    for table in GUARDED_TABLES:
        for op in ops:
            name = f"{table}_no_{op.lower()}"
            statements.append(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if vendor == "postgresql" else ""))
    return statements


def install(connection, ops: tuple[str, ...] = ("UPDATE", "DELETE")) -> None:
    with connection.cursor() as cursor:
        for sql in install_sql(connection.vendor, ops):
            cursor.execute(sql)


def uninstall(connection, ops: tuple[str, ...] = ("UPDATE", "DELETE")) -> None:
    with connection.cursor() as cursor:
        for sql in uninstall_sql(connection.vendor, ops):
            cursor.execute(sql)


@contextmanager
def without_delete_guard(connection):
    """Lift the DELETE triggers for a whole-database flush (SQLite flushes with DELETE FROM;
    PostgreSQL's TRUNCATE fires no row triggers, so there is nothing to lift)."""
    if connection.vendor != "sqlite":
        yield
        return
    uninstall(connection, ("DELETE",))
    try:
        yield
    finally:
        install(connection, ("DELETE",))
