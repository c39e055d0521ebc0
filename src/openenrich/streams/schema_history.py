"""Schema history of evolve-mode streams: what changed in the fields of each batch
written to the lake, and the /schema-events report of it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db.text import column_length, storable
from openenrich.ids import new_id, utcnow
from openenrich.lake.detect import describe_events
from openenrich.lake.engine import FlushedFile
from openenrich.lake.parquet import Column
from openenrich.streams.configuration import get_stream
from openenrich.streams.models import SCHEMA_EVENT_KEY, SchemaEvent, SchemaField, Stream
from openenrich.streams.schemas import SchemaEventOut, SchemaEvents
from openenrich.tenancy.tenant import Tenant

# Field names in the schema tables: the client's keys, which may be longer or hold a NUL.
FIELD_NAME_LENGTH = column_length(SchemaField.field)


def _upsert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def track_schema(
    session: AsyncSession, files: Sequence[FlushedFile], *, scratch: Path
) -> None:
    """Compare each flushed batch of an evolve-mode stream with the schema seen so far.

    A field is *new* when it has a value in the batch and was never seen (or declared); its
    type *changed* when its values have another type than the last batch it had values in;
    it is *missing* when a field seen before has no value in any event of the batch. Each
    change is one row whose `event_count` keeps counting the events that show it.

    Without declared fields, the stream's first log record (the first events accepted)
    sets the baseline, not its first flushed batch: a batch holds the union of its
    records' fields, so a field that came later would otherwise be taken for part of the
    baseline whenever both landed in one flush. Only that one record is looked at again
    (`describe_events`, in a thread, once per stream); after it, anything a batch holds
    that the schema table does not know is new, wherever in the batch it came.
    `scratch` is a folder for that look.
    """
    assert session.bind is not None
    dialect = session.bind.dialect.name
    for file in files:
        if file.kind != "data":
            continue
        stream = await session.scalar(
            select(Stream).where(
                Stream.org_id == file.org_id,
                Stream.environment == file.environment,
                Stream.stream_id == file.stream_id,
            )
        )
        if stream is None or stream.schema_mode != "evolve":
            continue
        scope = {
            "org_id": file.org_id,
            "environment": file.environment,
            "stream_id": file.stream_id,
        }
        known = {
            row.field: row for row in await session.scalars(select(SchemaField).filter_by(**scope))
        }
        now = utcnow()
        # Names as the schema tables hold them on both backends; names that only differ past
        # the cut are one field here.
        seen = {
            storable(column.name, FIELD_NAME_LENGTH): column
            for column in file.columns
            if column.present > 0
        }
        # The first record's own fields, when they are the baseline: a type of theirs that
        # the batch as a whole widened is a change, shown by the events after that record.
        leading: dict[str, Column] = {}
        if not known:
            baseline = {name: spec["type"] for name, spec in (stream.fields or {}).items()}
            if not baseline:
                first = await asyncio.to_thread(describe_events, file.first_events, scratch)
                if first is None:  # DuckDB reads it only normalised: the batch's fields
                    baseline = {name: column.type for name, column in seen.items()}
                else:
                    leading = {
                        storable(column.name, FIELD_NAME_LENGTH): column
                        for column in first
                        if column.present > 0
                    }
                    baseline = {name: column.type for name, column in leading.items()}
            for name, kind in baseline.items():
                row = SchemaField(id=new_id("fld"), field=name, type=kind, updated_at=now, **scope)
                session.add(row)
                known[name] = row
            await session.flush()

        changes: list[tuple[str, str, str, str, int]] = []
        for name, column in seen.items():
            field = known.get(name)
            if field is None:
                changes.append(("new_field", name, column.type, "", column.present))
                row = SchemaField(
                    id=new_id("fld"), field=name, type=column.type, updated_at=now, **scope
                )
                session.add(row)
                known[name] = row
            elif field.type != column.type:
                count = column.present
                if name in leading:  # the first record's events had the baseline's type
                    count = max(1, count - leading[name].present)
                changes.append(("type_change", name, column.type, field.type, count))
                field.type = column.type
                field.updated_at = now
        for name in known:
            if name not in seen:
                changes.append(("missing_field", name, "", "", file.rows))
        # Changes seen before keep counting the events that show them.
        earlier = await session.scalars(select(SchemaEvent).filter_by(**scope))
        fresh = {(kind, name, detected, previous) for kind, name, detected, previous, _ in changes}
        for event in earlier:
            if (event.type, event.field, event.detected_type, event.previous_type) in fresh:
                continue
            showing = seen.get(event.field)
            if (
                event.type in ("new_field", "type_change")
                and showing is not None
                and showing.type == event.detected_type
            ):
                changes.append(
                    (
                        event.type,
                        event.field,
                        event.detected_type,
                        event.previous_type,
                        showing.present,
                    )
                )
        await session.flush()
        if not changes:
            continue
        statement = _upsert(dialect)(SchemaEvent).values(
            [
                {
                    "id": new_id("sch"),
                    **scope,
                    "type": kind,
                    "field": name,
                    "detected_type": detected,
                    "previous_type": previous,
                    "detected_at": now,
                    "updated_at": now,
                    "event_count": count,
                }
                for kind, name, detected, previous, count in changes
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=list(SCHEMA_EVENT_KEY),
            set_={
                "event_count": SchemaEvent.event_count + statement.excluded.event_count,
                "updated_at": statement.excluded.updated_at,
            },
        )
        await session.execute(statement)


async def schema_events(
    session: AsyncSession, tenant: Tenant, stream_id: str, days: int
) -> SchemaEvents:
    """The stream's schema changes, oldest first. `previous_type` (a type change's) and
    `detected_type` (when there is one) are None where they do not apply: the route leaves
    them out."""
    await get_stream(session, tenant, stream_id)
    rows = await session.scalars(
        select(SchemaEvent)
        .where(
            tenant.owns(SchemaEvent),
            SchemaEvent.stream_id == stream_id,
            SchemaEvent.detected_at >= utcnow() - timedelta(days=days),
        )
        .order_by(SchemaEvent.detected_at, SchemaEvent.id)
    )
    events = [
        SchemaEventOut(
            type=row.type,
            field=row.field,
            previous_type=row.previous_type if row.type == "type_change" else None,
            detected_type=row.detected_type or None,
            detected_at=row.detected_at,
            event_count=row.event_count,
        )
        for row in rows
    ]
    return SchemaEvents(stream_id=stream_id, schema_events=events)
