"""`GET /v1/pipelines/{id}/leads`: a pipeline's leads, newest first, by page or as one
streamed export.

Order: `pipeline_lead_created_at` DESC, then `pipeline_lead_id` DESC. An upload gives its
rows one timestamp, so the id is what orders them (UUIDv7, counted up within a batch:
the last row of a batch lists first); without that tiebreak two reads of one page could
order equal timestamps differently and repeat or skip rows across pages.

Paging, two ways:

- `limit`/`offset`, as the reference. New leads arrive at the top, so while another
  client uploads, every row below would shift down by the number added and an offset
  loop would read some rows twice. So an offset-0 page records a mark (`marks.py`): the
  newest row then, and the total then. That page and the same key's later offset pages
  of the same size list the rows at or below it, with that total: the pages of the
  pipeline as it was at offset 0, whatever is uploaded meanwhile. An offset page without
  a mark (expired, or a walk that did not start at 0) is live.
- `after=<cursor>` (`pagination.next_cursor`): a keyset on (created_at, id), stable
  whatever is added while a client pages: rows added later sort above the cursor, so a
  walk from the first page sees every row that existed when it started, once.

`format=ndjson|csv` streams the whole pipeline (from `after`, when given) in keyset
batches, each read on its own, so memory stays flat and no connection is held while the
client reads.

Pages are built from Core rows and written by orjson, with the stored JSON (custom fields,
validation observations) passed through as text (`orjson.Fragment`) and timestamps
formatted by the database: a 10,000-row page is ~20 ms of Python, not ~200 with pydantic
and datetime objects per row.
"""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Row,
    String,
    Text,
    bindparam,
    cast,
    func,
    literal,
    select,
    tuple_,
    type_coerce,
)

from openenrich.db import Database, table
from openenrich.errors import BadRequest
from openenrich.ids import parse_uuid
from openenrich.leads import marks, pipelines
from openenrich.leads.models import LEAD_FIELDS, Lead, Pipeline, PipelineLead
from openenrich.tenancy.tenant import Principal, Tenant

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
EXPORT_BATCH = 5000

# Every column of a listing row, in the order `_columns` selects them.
CSV_HEADER = (
    "pipeline_lead_id",
    "pipeline_lead_stage",
    "pipeline_lead_email_validation_status",
    "pipeline_lead_email_validation",
    "pipeline_lead_created_at",
    "lead_id",
    "lead_email",
    *(f"lead_{name}" for name in LEAD_FIELDS),
    "lead_custom_fields",
    "lead_enrichment_status",
    "lead_created_at",
    "lead_updated_at",
)
_LEAD_KEYS = CSV_HEADER[5:]


def _timestamp(column: Any, dialect: str) -> ColumnElement[str]:
    """`2026-02-05T18:00:00.000Z` (ids.isoformat: milliseconds, truncated), written by the
    database. SQLite keeps `YYYY-MM-DD HH:MM:SS.ffffff`, cut here (a value written without
    the fraction gets `.000`); its strftime would round the milliseconds."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    raw = type_coerce(column, String)
    time = func.substr(raw + ".000000", 12, 12)
    return type_coerce(func.substr(raw, 1, 10) + "T" + time + "Z", String)


def _columns(links: Any, leads: Any, dialect: str) -> tuple[ColumnElement[Any], ...]:
    return (
        links.c.id,
        links.c.stage,
        links.c.email_validation_status,
        cast(links.c.email_validation, Text),
        _timestamp(links.c.created_at, dialect),
        leads.c.id,
        leads.c.email,
        *(leads.c[name] for name in LEAD_FIELDS),
        cast(leads.c.custom_fields, Text),
        leads.c.enrichment_status,
        _timestamp(leads.c.created_at, dialect),
        _timestamp(leads.c.updated_at, dialect),
    )


def _as_dict(row: Sequence[Any]) -> dict[str, Any]:
    values = tuple(row)
    lead = dict(zip(_LEAD_KEYS, values[5:], strict=False))  # of one length
    lead["lead_custom_fields"] = orjson.Fragment(lead["lead_custom_fields"])
    validation = values[3]
    return {
        "pipeline_lead_id": values[0],
        "pipeline_lead_stage": values[1],
        "pipeline_lead_email_validation_status": values[2],
        "pipeline_lead_email_validation": (
            None if validation is None else orjson.Fragment(validation)
        ),
        "pipeline_lead_created_at": values[4],
        "lead": lead,
    }


# -- cursors -------------------------------------------------------------------------------


def encode_cursor(pipeline_lead_id: str) -> str:
    """Opaque to clients: the row's id, base64url. What it points at is looked up, so the
    position is exact whatever precision the database keeps timestamps in."""
    return base64.urlsafe_b64encode(uuid.UUID(pipeline_lead_id).bytes).rstrip(b"=").decode()


def _bad_cursor() -> BadRequest:
    return BadRequest("after: not a cursor of this pipeline's listing (use pagination.next_cursor)")


def decode_cursor(cursor: str) -> str:
    if len(cursor) != 22:
        raise _bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "==")
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    if len(raw) != 16:
        raise _bad_cursor()
    return str(uuid.UUID(bytes=raw))


# -- reads ---------------------------------------------------------------------------------


def _total(connection: Connection, tenant: Tenant, pipeline_id: str) -> int:
    """The pipeline's kept count, or the 404 when the tenant has no such pipeline."""
    pipeline = table(Pipeline)
    total = connection.execute(
        select(pipeline.c.total_leads).where(
            pipeline.c.id == pipeline_id,
            pipeline.c.org_id == tenant.org_id,
            pipeline.c.environment == tenant.environment.value,
        )
    ).scalar_one_or_none()
    if total is None:
        raise pipelines.not_found()
    return int(total)


def _position(connection: Connection, pipeline_id: str, after: str) -> tuple[Any, str]:
    """(created_at as stored, id) of the cursor's row, which must be in the pipeline."""
    links = table(PipelineLead)
    found = connection.execute(
        select(type_coerce(links.c.created_at, String), links.c.id).where(
            links.c.id == after, links.c.pipeline_id == pipeline_id
        )
    ).first()
    if found is None:
        raise _bad_cursor()
    return found[0], found[1]


def _rows(
    connection: Connection,
    pipeline_id: str,
    size: int,
    *,
    offset: int = 0,
    below: tuple[Any, str] | None = None,
    upto: tuple[Any, str] | None = None,
) -> Sequence[Row[Any]]:
    """A page of rows (those strictly `below` a position and at or below `upto`, when
    given), read along the (pipeline_id, created_at, id) index.

    SQLite walks that index for the join as written. PostgreSQL, on a freshly filled
    pipeline (no statistics yet), joined every row of the pipeline and sorted them wide,
    on disk (275 ms for 10,000 of 20,000); so there the junction rows are taken first,
    limit and all, and their leads joined after (its nested loop keeps their order)."""
    links, leads = table(PipelineLead), table(Lead)
    dialect = connection.dialect.name
    conditions = [links.c.pipeline_id == pipeline_id]
    # Positions are stored values as they came back, compared as the database stores them.
    stamp_type = DateTime(timezone=True) if dialect == "postgresql" else String()
    key = tuple_(links.c.created_at, links.c.id)
    if below is not None:
        conditions.append(
            key < tuple_(bindparam("at", below[0], type_=stamp_type), bindparam("id", below[1]))
        )
    if upto is not None:
        conditions.append(
            key
            <= tuple_(
                bindparam("upto_at", upto[0], type_=stamp_type), bindparam("upto_id", upto[1])
            )
        )
    order = (links.c.created_at.desc(), links.c.id.desc())
    if dialect == "postgresql":
        page = select(links).where(*conditions).order_by(*order).limit(size).offset(offset)
        rows = page.subquery("page")
        statement = (
            select(*_columns(rows, leads, dialect))
            .select_from(rows.join(leads, leads.c.id == rows.c.lead_id))
            .order_by(rows.c.created_at.desc(), rows.c.id.desc())
        )
    else:
        statement = (
            select(*_columns(links, leads, dialect))
            .select_from(links.join(leads, leads.c.id == links.c.lead_id))
            .where(*conditions)
            .order_by(*order)
            .limit(size)
            .offset(offset)
        )
    return connection.execute(statement).all()


def _answer(rows: Sequence[Row[Any]], size: int, offset: int | None, total: int) -> bytes:
    """The page's JSON, from up to `size + 1` rows (one more says there is more)."""
    has_more = len(rows) > size
    rows = rows[:size]
    answer = {
        "data": [_as_dict(row) for row in rows],
        "pagination": {
            "limit": size,
            "offset": offset,
            "total": total,
            "has_more": has_more,
            "next_cursor": encode_cursor(rows[-1][0]) if has_more else None,
        },
    }
    return orjson.dumps(answer)


def _page(
    connection: Connection,
    tenant: Tenant,
    pipeline_id: str,
    size: int,
    offset: int | None,
    after: str | None,
) -> bytes:
    """A live page: from `offset`, or below the cursor `after`."""
    total = _total(connection, tenant, pipeline_id)
    below = None if after is None else _position(connection, pipeline_id, after)
    rows = _rows(connection, pipeline_id, size + 1, offset=offset or 0, below=below)
    return _answer(rows, size, offset, total)


def _marked_page(
    connection: Connection, pipeline_id: str, size: int, offset: int | None, mark: marks.Mark
) -> bytes:
    """A page of the pipeline as it was at the mark."""
    if mark.anchor is None:  # empty then
        return _answer((), size, offset, mark.total)
    rows = _rows(connection, pipeline_id, size + 1, offset=offset or 0, upto=mark.anchor)
    return _answer(rows, size, offset, mark.total)


def _offset_page(
    connection: Connection,
    principal: Principal,
    pipeline_id: str,
    size: int,
    offset: int,
    seconds: float,
) -> tuple[bytes, marks.Mark | None]:
    """A page past the first: as of the key's mark when it has a fresh one, else live."""
    mark = marks.find(connection, principal, pipeline_id, size, seconds)
    if mark is None:
        return _page(connection, principal.tenant, pipeline_id, size, offset, None), None
    _total(connection, principal.tenant, pipeline_id)  # the 404, should the pipeline go
    return _marked_page(connection, pipeline_id, size, offset, mark), mark


def page_bounds(
    limit: int | None, offset: int | None, after: str | None
) -> tuple[int, int | None, str | None]:
    size, skip = pipelines.page_bounds(limit, offset, DEFAULT_LIMIT, MAX_LIMIT)
    if after is None:
        return size, skip, None
    if offset is not None:
        raise BadRequest("offset and after cannot be combined: after is where the page starts")
    return size, None, decode_cursor(after)


async def page(
    database: Database,
    principal: Principal,
    pipeline_id: str,
    limit: int | None,
    offset: int | None,
    after: str | None,
    *,
    snapshot_seconds: float,
) -> bytes:
    """One page, as the JSON answer's bytes (`schemas.LeadPage`). `snapshot_seconds`: how
    long an offset walk's mark lasts after its last use."""
    size, skip, start = page_bounds(limit, offset, after)
    key = parse_uuid(pipeline_id)
    if key is None:
        raise pipelines.not_found()
    tenant = principal.tenant
    if start is not None:  # a cursor walk needs no mark: new rows land above it
        return await database.read(lambda c: _page(c, tenant, key, size, None, start))
    if not skip:
        mark = await marks.take(database, principal, key, size)
        if mark is None:
            raise pipelines.not_found()
        taken = mark
        return await database.read(lambda c: _marked_page(c, key, size, offset, taken))
    body, found = await database.read(
        lambda c: _offset_page(c, principal, key, size, skip, snapshot_seconds)
    )
    if found is not None:
        await marks.keep(database, principal, key, size, found, snapshot_seconds)
    return body


# -- exports -------------------------------------------------------------------------------


def _csv_lines(rows: Sequence[Sequence[Any]], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def _ndjson_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    return b"".join(orjson.dumps(_as_dict(row)) + b"\n" for row in rows)


async def export(
    database: Database,
    tenant: Tenant,
    pipeline_id: str,
    format: Literal["ndjson", "csv"],
    after: str | None,
) -> AsyncIterator[bytes]:
    """The whole pipeline (below `after`), newest first. Checks run before it returns, so
    a 404 or a bad cursor is answered before the stream starts."""
    key = parse_uuid(pipeline_id)
    if key is None:
        raise pipelines.not_found()
    start = None if after is None else decode_cursor(after)

    def first(connection: Connection) -> tuple[Any, str] | None:
        _total(connection, tenant, key)
        return None if start is None else _position(connection, key, start)

    below = await database.read(first)
    return _export(database, key, format, below)


async def _export(
    database: Database,
    pipeline_id: str,
    format: Literal["ndjson", "csv"],
    below: tuple[Any, str] | None,
) -> AsyncIterator[bytes]:
    if format == "csv":
        yield _csv_lines((), header=True)
    while True:
        rows, below = await database.read(
            functools.partial(_batch, pipeline_id=pipeline_id, below=below)
        )
        if rows:
            yield _csv_lines(rows, header=False) if format == "csv" else _ndjson_lines(rows)
        if below is None:
            return


def _batch(
    connection: Connection, *, pipeline_id: str, below: tuple[Any, str] | None
) -> tuple[Sequence[Row[Any]], tuple[Any, str] | None]:
    """A batch of rows, and where the next one starts (None after the last)."""
    rows = _rows(connection, pipeline_id, EXPORT_BATCH, below=below)
    if len(rows) < EXPORT_BATCH:
        return rows, None
    return rows, _position(connection, pipeline_id, rows[-1][0])
