"""The statements an upload writes its rows with: one per table, whatever the batch size.

Measured on a 4,000-lead upload, SQLAlchemy's own bulk paths cost more than the
database: on PostgreSQL its multi-row VALUES (insertmanyvalues) sent statements of
18,000 placeholders that psycopg spent ~1 s splitting; on SQLite the per-value
processing of timestamps and parameter dictionaries took longer than the inserts. So:

- PostgreSQL: `INSERT … SELECT … FROM json_array_elements(<the rows as one JSON text>)`,
  one round trip and a handful of parameters however many rows (list parameters, as
  arrays, cost psycopg more CPU to write than orjson the JSON); `ON CONFLICT DO NOTHING
  RETURNING id` says which leads were new.
- SQLite: the driver's `executemany` of one `INSERT … ON CONFLICT DO NOTHING` over plain
  tuples (its C loop). It returns no rows, only how many went in: when some did not, the
  ids are looked up (the upload holds the write lock since its quota check, so nothing
  else changed them in between).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Column, Dialect, text
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.leads.models import Lead
from openenrich.tenancy.tenant import Tenant

_LOOKUP_CHUNK = 1000  # values per SQLite lookup (it binds at most 32,766)


def _dialect(session: AsyncSession) -> Dialect:
    assert session.bind is not None
    return session.bind.dialect


def stored_time(session: AsyncSession, column: Column[Any], moment: datetime) -> Any:
    """`moment` as the column's type writes it (on SQLite, UTC text) for raw statements."""
    dialect = _dialect(session)
    # dialect_impl: a type decorator's own bind_processor skips its dialect type's.
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(moment) if process is not None else moment


async def existing_keys(session: AsyncSession, tenant: Tenant, keys: Sequence[str]) -> set[str]:
    """Which of `keys` (normalised addresses) the tenant's account already has."""
    if _dialect(session).name == "postgresql":
        # One index probe per key (LATERAL … LIMIT 1): given `IN (…)`, the planner, which
        # guesses 100 rows for a JSON array, hashes the keys and scans every lead of
        # the account (1.3 s for 4,000 keys over 20,000 leads).
        rows = await session.execute(
            text(
                "SELECT found.email_key "
                "FROM json_array_elements_text(CAST(:keys AS json)) AS k(key) "
                "CROSS JOIN LATERAL (SELECT email_key FROM leads WHERE org_id = :org_id "
                "AND environment = :environment AND email_key = k.key LIMIT 1) AS found"
            ),
            {
                "org_id": tenant.org_id,
                "environment": tenant.environment.value,
                "keys": orjson.dumps(list(keys)).decode(),
            },
        )
        return {row[0] for row in rows}
    found: set[str] = set()
    connection = await session.connection()
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = tuple(keys[start : start + _LOOKUP_CHUNK])
        marks = ", ".join("?" * len(chunk))
        rows = await connection.exec_driver_sql(
            f"SELECT email_key FROM leads WHERE org_id = ? AND environment = ? "  # noqa: S608
            f"AND email_key IN ({marks})",
            (tenant.org_id, tenant.environment.value, *chunk),
        )
        found.update(row[0] for row in rows)
    return found


# The same for every row of a batch.
_CONSTANT = ("org_id", "environment", "enrichment_status", "created_at", "updated_at")


def _json_rows(columns: Sequence[Sequence[Any]]) -> str:
    """Columns as one JSON array of row arrays: a single text parameter, however many rows
    (psycopg writes a list parameter as an array in Python, ~25 ms of CPU per 4,000)."""
    return orjson.dumps(list(zip(*columns, strict=True))).decode()


def _rows(columns: Sequence[Sequence[Any]], constants: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Column lists and per-batch constants as the row tuples executemany binds."""
    # Not strict: the constants repeat for ever, the columns (all one length) end it.
    return list(zip(*columns, *(itertools.repeat(value) for value in constants), strict=False))


async def insert_leads(
    session: AsyncSession, tenant: Tenant, columns: dict[str, list[Any]], now: datetime
) -> set[str]:
    """Insert leads given column by column (`id`, `email`, `email_key`, `custom_fields` as
    JSON text, and the lead fields some row of the batch has: a column bound as NULL on
    every row still costs SQLite its binding, twice the insert's time for the cookbook's
    address-only rows). Rows whose address the account already has are left alone.
    Returns the ids inserted."""
    ids = columns["id"]
    if not ids:
        return set()
    names = list(columns)
    listed = ", ".join((*names, *_CONSTANT))
    at = stored_time(session, table(Lead).c.created_at, now)
    if _dialect(session).name == "postgresql":
        values = ", ".join(
            f"CAST(r->>{position} AS jsonb)" if name == "custom_fields" else f"r->>{position}"
            for position, name in enumerate(names)
        )
        statement = text(
            f"INSERT INTO leads ({listed}) "  # noqa: S608
            f"SELECT {values}, :org_id, :environment, 'NOT_ENRICHED', :now, :now "
            "FROM json_array_elements(CAST(:rows AS json)) AS r "
            "ON CONFLICT (org_id, environment, email_key) DO NOTHING RETURNING id"
        )
        params = {
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "now": at,
            "rows": _json_rows(list(columns.values())),
        }
        return {row[0] for row in await session.execute(statement, params)}
    # SQLite: executemany returns no rows, only how many it inserted. All of them, as a
    # rule: then nothing else is asked. Otherwise the ids are looked up (the upload holds
    # the write lock, so what is there now is what this statement left).
    marks = ", ".join("?" * (len(names) + len(_CONSTANT)))
    constants = (tenant.org_id, tenant.environment.value, "NOT_ENRICHED", at, at)
    connection = await session.connection()
    result = await connection.exec_driver_sql(
        f"INSERT INTO leads ({listed}) VALUES ({marks}) "  # noqa: S608
        "ON CONFLICT (org_id, environment, email_key) DO NOTHING",
        _rows(list(columns.values()), constants),
    )
    if result.rowcount == len(ids):
        return set(ids)
    inserted: set[str] = set()
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = tuple(ids[start : start + _LOOKUP_CHUNK])
        found = await connection.exec_driver_sql(
            f"SELECT id FROM leads WHERE id IN ({', '.join('?' * len(chunk))})",  # noqa: S608
            chunk,
        )
        inserted.update(row[0] for row in found)
    return inserted


async def link_leads(
    session: AsyncSession,
    tenant: Tenant,
    pipeline_id: str,
    ids: list[str],
    lead_ids: list[str],
    now: datetime,
) -> None:
    """Add the leads to the pipeline (junction rows `ids`), stage IMPORTED."""
    if not ids:
        return
    at = stored_time(session, table(Lead).c.created_at, now)
    listed = "id, lead_id, org_id, environment, pipeline_id, stage, created_at"
    if _dialect(session).name == "postgresql":
        await session.execute(
            text(
                f"INSERT INTO pipeline_leads ({listed}) "  # noqa: S608
                "SELECT r->>0, r->>1, :org_id, :environment, :pipeline_id, 'IMPORTED', :now "
                "FROM json_array_elements(CAST(:rows AS json)) AS r"
            ),
            {
                "org_id": tenant.org_id,
                "environment": tenant.environment.value,
                "pipeline_id": pipeline_id,
                "now": at,
                "rows": _json_rows([ids, lead_ids]),
            },
        )
        return
    constants = (tenant.org_id, tenant.environment.value, pipeline_id, "IMPORTED", at)
    connection = await session.connection()
    await connection.exec_driver_sql(
        f"INSERT INTO pipeline_leads ({listed}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        _rows([ids, lead_ids], constants),
    )
