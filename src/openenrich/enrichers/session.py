"""The `session` enricher: which visit of a user each event belongs to.

A user's events (by `user_field`, else `anonymous_field`) are one session while no more
than the gap (`session_gap_minutes`, or the `gap_minutes` option) passes between two of
them. Each event gets the session's id, its sequence number in the session (from 1) and
whether it opened the session.

The batch is sorted by (user, event time) with numpy and split where the time difference
passes the gap; each user's first event in the batch is compared with the state the last
batch left (`stream_sessions`), read in `load` for the batch's users only, so sessions
carry over flushes and restarts. `save` upserts the new state in the flush transaction;
until it commits nothing in memory changes, so a failed flush that comes again computes
the same answers. A session's id is a hash of the stream, the user and the session's
first event time: processing the same events again gives the same ids.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field
from sqlalchemy import Connection, bindparam, delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.enrichers.columns import column, in_slices, strings
from openenrich.enrichers.models import StreamSession
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    StreamScope,
    register,
)
from openenrich.ids import utcnow

MAX_KEY = 200  # longer user ids are stored as their hash
# A batch's users go to the database as JSON parameters, unpacked there: one statement per
# CHUNK users. Rows or IN lists built by SQLAlchemy cost ~10 µs a row of CPU on the event
# loop (profiled: a flush's 78,000 users stalled requests for 0.7 s). SQLite runs on the
# loop, and a request that arrives meanwhile waits for the statement under way, at each of
# its own awaits: 100 users (~1 ms) rather than 500 took the p99 at half load of
# bench/ingest.py --template clickstream from 52-59 ms to 23-27 ms. PostgreSQL works
# while the loop goes on, so its statements are larger.
CHUNK = {"sqlite": 100, "postgresql": 500}
# The lookups of `load` run off the loop (`Database.read_in_thread`): larger statements.
LOAD_CHUNK = {"sqlite": 2_000, "postgresql": 500}
_SESSION_COLUMNS = "org_id, environment, stream_id, user_key, session_id, last_seen_us, seq"
_ON_CONFLICT = """
    ON CONFLICT (org_id, environment, stream_id, user_key) DO UPDATE SET
        session_id = excluded.session_id, last_seen_us = excluded.last_seen_us,
        seq = excluded.seq, updated_at = excluded.updated_at
"""
_LOAD = {
    "sqlite": text(
        "SELECT user_key, session_id, last_seen_us, seq FROM stream_sessions "
        "WHERE org_id = :org_id AND environment = :environment AND stream_id = :stream_id "
        "AND user_key IN (SELECT value FROM json_each(:keys))"
    ),
    # One index lookup per key, whatever the statistics say (LIMIT keeps the planner from
    # flattening the lateral subquery into a join): with `user_key IN (…)` the plan
    # psycopg prepares after a few runs scanned all the stream's users for every key (a
    # flush of 50,000 users took 390 s).
    "postgresql": text(
        "SELECT s.user_key, s.session_id, s.last_seen_us, s.seq "
        "FROM json_array_elements_text(CAST(:keys AS json)) AS k(user_key) "
        "CROSS JOIN LATERAL (SELECT * FROM stream_sessions WHERE org_id = :org_id "
        "AND environment = :environment AND stream_id = :stream_id "
        "AND user_key = k.user_key LIMIT 1) AS s"
    ),
}
_SAVE = {
    "sqlite": text(
        f"INSERT INTO stream_sessions ({_SESSION_COLUMNS}, updated_at) "  # noqa: S608
        "SELECT :org_id, :environment, :stream_id, value ->> 0, value ->> 1, value ->> 2, "
        "value ->> 3, :updated_at FROM json_each(:rows) WHERE true" + _ON_CONFLICT
    ).bindparams(bindparam("updated_at", type_=StreamSession.__table__.c.updated_at.type)),
    "postgresql": text(
        f"INSERT INTO stream_sessions ({_SESSION_COLUMNS}, updated_at) "  # noqa: S608
        "SELECT :org_id, :environment, :stream_id, r ->> 0, r ->> 1, (r ->> 2)::bigint, "
        "(r ->> 3)::bigint, :updated_at FROM json_array_elements(CAST(:rows AS json)) AS r"
        + _ON_CONFLICT
    ).bindparams(bindparam("updated_at", type_=StreamSession.__table__.c.updated_at.type)),
}
STATE_RETENTION = timedelta(days=1)
_US = 1_000_000

_sessions = table(StreamSession)


class SessionState(NamedTuple):
    """The state of a batch's users, as Arrow columns: one entry per user (by `user_key`).

    Columns rather than an object per user: a flush can touch 80,000 users, an object each
    is that many more for the garbage collector to track, and converting them all in one
    call holds the GIL (and so the event loop) for milliseconds. They are converted to and
    from Python a chunk (`CHUNK`, on the loop) or a slice (`SLICE`, in the flush thread)
    at a time."""

    user_keys: pa.Array  # string
    session_ids: pa.Array  # string
    last_seen_us: pa.Array  # int64
    seqs: pa.Array  # int64


_NO_STATE = SessionState(
    pa.array([], pa.string()),
    pa.array([], pa.string()),
    pa.array([], pa.int64()),
    pa.array([], pa.int64()),
)


def user_key(user: str) -> str:
    if len(user) <= MAX_KEY:
        return user
    return "sha256:" + hashlib.sha256(user.encode()).hexdigest()


def user_keys(users: pa.Array) -> pa.Array:
    """`user_key` of each user (a string array without nulls)."""
    long = pc.greater(pc.utf8_length(users), MAX_KEY)
    if not pc.any(long).as_py():
        return users
    hashed = [user_key(user) for user in pc.filter(users, long).to_pylist()]
    return pc.replace_with_mask(users, long, pa.array(hashed, pa.string()))


# -- session ids -------------------------------------------------------------------------------
#
# A session's id is 128 bits: a BLAKE2b digest of (stream, user), one per distinct user,
# each half mixed with the session's start by splitmix64's finalizer, a bijection, so one
# user's sessions never share an id. Computed with numpy for a whole batch at once: a
# flush of a million events opens hundreds of thousands of sessions, and hashing each in
# Python took most of the enricher's time.

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1)


def _mix(values: np.ndarray) -> np.ndarray:
    z = values.astype(np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def user_digests(stream_id: str, users: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per user: the two 64-bit halves of its digest within the stream."""
    digests = b"".join(
        hashlib.blake2b(f"{stream_id}\x00{user}".encode(), digest_size=16).digest()
        for part in in_slices(users)
        for user in part
    )
    halves = np.frombuffer(digests, dtype=">u8").reshape(-1, 2)
    return halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)


def session_ids(high: np.ndarray, low: np.ndarray, started_us: np.ndarray) -> pa.Array:
    """Ids (32 hex characters) of sessions: their user's digest halves and their start."""
    count = len(started_us)
    started = started_us.astype(np.int64).view(np.uint64)
    words = np.empty((count, 2), dtype=">u8")
    words[:, 0] = _mix(high ^ started)
    words[:, 1] = _mix(low ^ _mix(started))
    text = _HEX_PAIRS[words.view(np.uint8).reshape(count, 16)]  # (count, 16, 2) characters
    offsets = np.arange(0, 32 * (count + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(text))
    )


def session_id(stream_id: str, user: str, started_us: int) -> str:
    """One session's id (the batch computes them all at once with `session_ids`)."""
    high, low = user_digests(stream_id, pa.array([user], pa.string()))
    return str(session_ids(high, low, np.array([started_us]))[0])


# -- event times ------------------------------------------------------------------------------


def _epoch_to_us(values: np.ndarray) -> np.ndarray:
    """Epoch numbers to microseconds, the unit read from the magnitude: seconds up to
    1e11 (year 5138), milliseconds up to 1e14, microseconds up to 1e17, else nanoseconds."""
    magnitude = np.abs(values)
    scale = np.where(
        magnitude < 1e11, 1e6, np.where(magnitude < 1e14, 1e3, np.where(magnitude < 1e17, 1, 1e-3))
    )
    return np.round(values * scale).astype(np.int64)


def _parse_one(text: str) -> int | None:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return int(_epoch_to_us(np.array([number]))[0])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def event_times_us(values: pa.Array) -> pa.Array:
    """Event times as int64 microseconds since the epoch (null where there is none):
    a timestamp column, epoch seconds/milliseconds/… as numbers, or ISO 8601 text."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.cast(kind.value_type)
        kind = values.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return pc.cast(
            pc.cast(values, pa.timestamp("us", tz=getattr(kind, "tz", None))), pa.int64()
        )
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(values, pa.float64())
        valid = pc.fill_null(pc.is_finite(numbers), False)  # NaN and infinities are no time
        finite = pc.if_else(valid, numbers, 0.0)
        converted = _epoch_to_us(finite.to_numpy(zero_copy_only=False))
        return pc.if_else(valid, pa.array(converted), pa.scalar(None, pa.int64()))
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        values = values.cast(pa.string())
        kind = values.type
    if pa.types.is_string(kind):
        for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):
            try:
                return pc.cast(pc.cast(values, target), pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        return pa.array(
            [None if v is None else _parse_one(v) for v in values.to_pylist()], pa.int64()
        )
    return pa.nulls(len(values), pa.int64())


# -- the enricher -----------------------------------------------------------------------------


@register
class SessionEnricher(Enricher):
    name = "session"
    version = 1
    description = (
        "Session id per user with an inactivity gap, the event's sequence number in its "
        "session, and whether it opened the session; carried across batches and restarts"
    )

    class Options(EnricherOptions):
        user_field: str = Field(default="user_id", min_length=1)
        anonymous_field: str | None = "anonymous_id"
        time_field: str = Field(default="timestamp", min_length=1)
        gap_minutes: float | None = Field(default=None, gt=0)  # default: the setting
        prefix: str = "session_"

    options: Options

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        minutes = self.options.gap_minutes or env.settings.session_gap_minutes
        self.gap_us = round(minutes * 60 * _US)
        self._state = _NO_STATE  # loaded for the batch at hand
        self._pending = _NO_STATE  # what apply computed, to save
        # The stream, named by `load`: part of every session id.
        self._stream_id = ""

    def inputs(self) -> list[str]:
        fields = [self.options.user_field]
        if self.options.anonymous_field:
            fields.append(self.options.anonymous_field)
        return [*fields, self.options.time_field, "_ingested_at"]

    def outputs(self) -> list[OutputColumn]:
        p = self.options.prefix
        return [
            OutputColumn(f"{p}id", "string", "the session's id (32 hex characters)"),
            OutputColumn(f"{p}seq", "int64", "the event's number in its session, from 1"),
            OutputColumn(f"{p}is_new", "boolean", "the event opened the session"),
        ]

    def _users(self, table_: pa.Table) -> pa.Array:
        users = strings(table_, self.options.user_field)
        if self.options.anonymous_field:
            users = pc.coalesce(users, strings(table_, self.options.anonymous_field))
        return users

    def _times(self, table_: pa.Table) -> pa.Array:
        times = event_times_us(column(table_, self.options.time_field))
        if "_ingested_at" in table_.column_names:
            times = pc.coalesce(times, event_times_us(column(table_, "_ingested_at")))
        return times

    def _keys(self, table_: pa.Table) -> pa.Array:
        keys = user_keys(pc.unique(self._users(table_).drop_null()))
        return keys.take(pc.sort_indices(keys))

    async def load(self, database: Database, scope: StreamScope, table_: pa.Table) -> None:
        # Off the event loop: the users' keys in a thread, and the lookups with them
        # (`read_in_thread`).
        keys = await asyncio.to_thread(self._keys, table_)
        self._state = await database.read_in_thread(
            lambda connection: _read_state(connection, scope, keys)
        )
        self._stream_id = scope.stream_id

    def apply(self, table_: pa.Table) -> dict[str, pa.Array]:
        """Sessions of the batch, continuing the state `load` read (`load` also names the
        stream, which is part of the ids: call it first, as the flusher does)."""
        p = self.options.prefix
        rows = table_.num_rows
        users = self._users(table_)
        times = self._times(table_)
        valid = pc.and_(pc.is_valid(users), pc.is_valid(times))
        positions = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
        row_run = np.full(rows, -1, dtype=np.int64)  # each row's session run, -1: none
        seqs = np.zeros(rows, dtype=np.int64)
        opened = np.zeros(rows, dtype=bool)
        state, self._state = self._state, _NO_STATE
        pending = _NO_STATE
        run_ids: pa.Array = pa.array([], pa.string())
        if len(positions):
            encoded = pc.dictionary_encode(users.take(pa.array(positions)))
            distinct = user_keys(encoded.dictionary)
            user_index = encoded.indices.to_numpy()
            event_us = times.take(pa.array(positions)).to_numpy()
            order = np.lexsort((event_us, user_index))  # stable: ties keep arrival order
            sorted_user = user_index[order]
            sorted_us = event_us[order]
            count = len(order)

            first = np.ones(count, dtype=bool)
            first[1:] = sorted_user[1:] != sorted_user[:-1]
            step = np.zeros(count, dtype=np.int64)
            step[1:] = sorted_us[1:] - sorted_us[:-1]
            new = ~first & (step > self.gap_us)

            # Users that have a session from earlier batches: their first event here
            # continues it unless the gap passed since its last event.
            known = pc.index_in(distinct, value_set=state.user_keys)
            carried = known.is_valid().to_numpy(zero_copy_only=False)
            last_seen = pc.fill_null(state.last_seen_us.take(known), 0).to_numpy()
            base_seq = pc.fill_null(state.seqs.take(known), 0).to_numpy()
            carried_ids = state.session_ids.take(known)
            first_user = sorted_user[first]
            continues = carried[first_user] & (
                sorted_us[first] - last_seen[first_user] <= self.gap_us
            )
            new[first] = ~continues

            starts = new | first  # where a run of one session begins in sorted order
            start_at = np.flatnonzero(starts)
            run = np.cumsum(starts) - 1
            run_continues = ~new[start_at]  # only a user's first run can continue
            run_user = sorted_user[start_at]
            run_base = np.where(run_continues, base_seq[run_user], 0)
            sorted_seq = np.arange(count) - start_at[run] + 1 + run_base[run]

            high, low = user_digests(self._stream_id, distinct)
            fresh = session_ids(high[run_user], low[run_user], sorted_us[start_at])
            kept = carried_ids.take(pa.array(run_user))
            run_ids = pc.if_else(pa.array(run_continues), kept, fresh)
            rows_at = positions[order]
            row_run[rows_at] = run
            seqs[rows_at] = sorted_seq
            opened[rows_at] = new

            last = np.ones(count, dtype=bool)  # each user's last event in sorted order
            last[:-1] = sorted_user[1:] != sorted_user[:-1]
            last_at = np.flatnonzero(last)
            last_user = sorted_user[last_at]
            last_run = run[last_at]
            seen = sorted_us[last_at]
            # Late events do not move a carried session back.
            late = run_continues[last_run] & (last_seen[last_user] > seen)
            seen = np.where(late, last_seen[last_user], seen)
            pending = SessionState(
                distinct.take(pa.array(last_user)),
                run_ids.take(pa.array(last_run)),
                pa.array(seen, pa.int64()),
                pa.array(sorted_seq[last_at], pa.int64()),
            )
        self._pending = pending
        none = row_run < 0  # rows without a user or a time have no session
        return {
            f"{p}id": run_ids.take(pa.array(row_run, mask=none)),
            f"{p}seq": pa.array(seqs, pa.int64(), mask=none),
            f"{p}is_new": pa.array(opened, pa.bool_(), mask=none),
        }

    async def save(self, session: AsyncSession, scope: StreamScope) -> None:
        pending = self._pending
        dialect = session.get_bind().dialect.name
        now = utcnow()
        chunk = CHUNK[dialect]
        for start in range(0, len(pending.user_keys), chunk):
            # A chunk's rows live only until they are encoded (see SessionState).
            columns = (values.slice(start, chunk).to_pylist() for values in pending)
            rows = orjson.dumps(list(zip(*columns, strict=True)))
            await session.execute(
                _SAVE[dialect],
                {
                    "org_id": scope.org_id,
                    "environment": scope.environment,
                    "stream_id": scope.stream_id,
                    "rows": rows.decode(),
                    "updated_at": now,
                },
            )
            await asyncio.sleep(0)  # let requests in between chunks

    def committed(self) -> None:
        self._pending = _NO_STATE

    def discarded(self) -> None:
        self._pending = _NO_STATE
        self._state = _NO_STATE


def _read_state(connection: Connection, scope: StreamScope, keys: pa.Array) -> SessionState:
    """The stored state of the users `keys` (sorted); run by `Database.read_in_thread`."""
    dialect = connection.dialect.name
    chunk = LOAD_CHUNK[dialect]
    found: list[SessionState] = [_NO_STATE]
    for start in range(0, len(keys), chunk):
        rows = connection.execute(
            _LOAD[dialect],
            {
                "org_id": scope.org_id,
                "environment": scope.environment,
                "stream_id": scope.stream_id,
                "keys": orjson.dumps(keys.slice(start, chunk).to_pylist()).decode(),
            },
        ).all()
        if rows:
            key, sid, last_seen, seq = zip(*rows, strict=True)
            found.append(
                SessionState(
                    pa.array(key, pa.string()),
                    pa.array(sid, pa.string()),
                    pa.array(last_seen, pa.int64()),
                    pa.array(seq, pa.int64()),
                )
            )
    return SessionState(*(pa.concat_arrays(parts) for parts in zip(*found, strict=True)))


async def purge_sessions(database: Database, settings: Settings) -> None:
    """Housekeeping: forget sessions no event touched for a day (longer than any gap)."""
    cutoff = utcnow() - max(STATE_RETENTION, timedelta(minutes=settings.session_gap_minutes))
    async with database.session() as session:
        await session.execute(delete(_sessions).where(_sessions.c.updated_at < cutoff))
        await session.commit()
