"""Read-only SQL over one tenant's streams, in a DuckDB that can read nothing else and
cannot take the server down with it.

Each query runs in a fresh in-memory DuckDB, in a process of its own:

- every stream is a view over a pyarrow dataset of exactly that stream's files (the
  manifest lists them), so local and S3 lakes work the same and no path is ever opened
  by DuckDB itself; its dead letters are the view `dlq.<stream>` (and `<stream>_dlq`, the
  older name, which no stream id may take);
- file system access is off (`enable_external_access = false`), extensions can be
  neither installed nor loaded, nothing spills to disk, and the configuration is locked
  before user SQL runs;
- only a single SELECT statement is accepted (COPY, ATTACH, INSTALL, SET, PRAGMA … are
  refused before they run);
- the answer is rendered in the query's process and stops at a row and a byte limit.

Why a process: DuckDB's `memory_limit` covers its buffer manager only. A scalar function
such as `repeat('x', 2000000000)` builds its value outside it (measured: 3.8 GB resident
for that one query under a 512 MB limit) and is never interrupted while it does (16 s
and more under a 10 s limit). A process gets an address-space limit (so such an
allocation fails at once, cleanly), is watched for its resident size, and is killed at
the time limit, whatever it is doing. Processes are forked from a small host process that
has DuckDB and pyarrow imported (started at the first query): ~5 ms per query instead of
~0.4 s to start one. (Not multiprocessing's fork server: its children import the server's
`__main__` again, ~1 s and the whole app per query under `openenrich serve`.)
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from openenrich.config import Settings
from openenrich.errors import BadRequest, InternalError, RateLimited, ServiceUnavailable
from openenrich.json_output import decimal_number
from openenrich.lake.storage import LakeStorage

Format = Literal["json", "csv", "arrow"]
Truncation = Literal["rows", "bytes"]

# DuckDB hands results over one vector (2,048 rows) at a time; a batch is what the
# renderer holds as Python objects at once.
BATCH_ROWS = 2048
# What the query's process may map beyond its memory limit and result: DuckDB's and
# pyarrow's thread stacks and allocator arenas (measured: ~130 MB more after connecting
# under a limit).
ADDRESS_SPACE_SLACK = 256 * 1024 * 1024
# How often the server looks at a running query's resident size.
WATCH_SECONDS = 0.02
ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"

# Long enough for a fork on a loaded machine; a host that cannot fork in this time is
# restarted.
START_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class QueryResult:
    """`body` is the rows in `format`: a JSON array of arrays, CSV with a header line, or
    an Arrow IPC stream."""

    columns: list[tuple[str, str]]
    body: bytes
    row_count: int
    truncated_by: Truncation | None

    @property
    def truncated(self) -> bool:
        return self.truncated_by is not None


@dataclass(frozen=True, slots=True)
class QueryLimits:
    rows: int
    bytes: int
    memory: int
    timeout: float
    threads: int


@dataclass(frozen=True, slots=True)
class _Job:
    """What the query's process gets: datasets (pickled with their file system), never
    paths for DuckDB to open."""

    streams: dict[str, ds.Dataset | None]
    dead_letters: dict[str, ds.Dataset | None]
    sql: str
    format: Format
    limits: QueryLimits


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class QuerySandbox:
    """Runs queries in their own processes, at most `concurrency` at once on this server
    and `tenant_concurrency` per owner."""

    def __init__(self, storage: LakeStorage, settings: Settings) -> None:
        self.storage = storage
        self.limits = QueryLimits(
            rows=settings.query_row_limit,
            bytes=settings.query_result_max_bytes,
            memory=int(settings.query_memory_limit),
            timeout=settings.query_timeout_seconds,
            threads=settings.query_threads,
        )
        self.memory_label = settings.query_memory_limit.human_readable(decimal=True)
        self.concurrency = settings.query_concurrency
        self.tenant_concurrency = settings.query_tenant_concurrency
        self._lock = threading.Lock()
        self._running: Counter[Hashable] = Counter()
        # Its own threads, as many as queries may run: a query waiting for its process
        # never holds a thread the rest of the server needs.
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="query")
        self._host = _ForkHost()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._host.close()

    def submit(
        self,
        owner: Hashable,
        streams: Mapping[str, Sequence[tuple[str, int]]],
        dead_letters: Mapping[str, Sequence[tuple[str, int]]],
        sql: str,
        format: Format,
    ) -> Future[QueryResult]:
        """Start a query, or refuse it at once when too many are running. `streams` and
        `dead_letters` map a stream id to its files (relative path, size)."""
        self._admit(owner)
        try:
            future = self._executor.submit(self._run, streams, dead_letters, sql, format)
        except BaseException:
            self._release(owner)
            raise
        # Given back when the query ends however it ends, also when it is cancelled
        # before it started.
        future.add_done_callback(lambda _: self._release(owner))
        return future

    def _admit(self, owner: Hashable) -> None:
        with self._lock:
            if self._running[owner] >= self.tenant_concurrency:
                raise RateLimited(
                    f"Too many queries at once: at most {self.tenant_concurrency} per tenant",
                    headers={"Retry-After": "1"},
                )
            if self._running.total() >= self.concurrency:
                raise ServiceUnavailable(
                    f"The server is running all the queries it can ({self.concurrency});"
                    " retry shortly",
                    headers={"Retry-After": "1"},
                )
            self._running[owner] += 1

    def _release(self, owner: Hashable) -> None:
        with self._lock:
            self._running[owner] -= 1
            if self._running[owner] <= 0:
                del self._running[owner]

    def _run(
        self,
        streams: Mapping[str, Sequence[tuple[str, int]]],
        dead_letters: Mapping[str, Sequence[tuple[str, int]]],
        sql: str,
        format: Format,
    ) -> QueryResult:
        job = _Job(
            streams={name: self._dataset(files) for name, files in streams.items()},
            dead_letters={name: self._dataset(files) for name, files in dead_letters.items()},
            sql=sql,
            format=format,
            limits=self.limits,
        )
        connection = self._host.fork()
        finished = False
        try:
            if not connection.poll(START_SECONDS):
                self._host.restart()
                raise InternalError("query failed: its process did not start")
            _started, pid = connection.recv()
            # The child is blocked reading its job, so `pid` is still its own.
            with _Process(pid) as process:
                try:
                    connection.send(job)
                    result = self._wait(process, connection)
                    finished = True
                    return result
                finally:
                    if not finished:
                        process.kill()
        except (EOFError, OSError):
            raise InternalError("query failed: its process could not be reached") from None
        finally:
            connection.close()

    def read_here(
        self, files: Sequence[tuple[str, int]], sql: str, parameters: Sequence[object] = ()
    ) -> list[tuple[Any, ...]]:
        """Our own SQL, never a client's, over `files` as the view `source`, in this
        process and thread (it blocks). The DuckDB is a query's (`sandboxed`) with one
        thread, but no process of its own and no admission: what a process guards against
        is what a client's SQL can build, and a fixed statement of ours builds nothing
        unexpected. A process would cost ~60 ms and could answer 429 when the tenant's
        queries are running."""
        db = sandboxed(threads=1, memory=self.limits.memory)
        try:
            dataset = self._dataset(files)
            if dataset is None:
                return []
            db.register("source", dataset)
            return db.execute(sql, list(parameters)).fetchall()
        except (duckdb.OutOfMemoryException, MemoryError, pa.ArrowMemoryError):
            raise BadRequest(
                f"reading the lake needs more memory than the limit ({self.memory_label})"
            ) from None
        finally:
            db.close()

    def _dataset(self, files: Sequence[tuple[str, int]]) -> ds.Dataset | None:
        # Footers are read here, where the storage's schema cache lives.
        return self.storage.dataset(files) if files else None

    def _wait(self, process: _Process, receiver: Connection) -> QueryResult:
        deadline = time.monotonic() + self.limits.timeout
        most_resident: int | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BadRequest(
                    f"query stopped after {self.limits.timeout:g} s (the time limit)"
                ) from None
            if receiver.poll(min(left, WATCH_SECONDS)):
                try:
                    kind, value = receiver.recv()
                except EOFError:
                    # Killed from outside, or an abort in DuckDB: under our limits, most
                    # likely memory.
                    raise BadRequest(
                        "query failed: its process ended without an answer; it may have "
                        f"needed more memory than the limit ({self.memory_label})"
                    ) from None
                if kind == "ready":
                    most_resident = int(value) + self.limits.memory
                elif kind == "result":
                    columns, row_count, truncated_by = value
                    return QueryResult(columns, receiver.recv_bytes(), row_count, truncated_by)
                elif kind == "refused":
                    raise BadRequest(str(value))
                elif kind == "memory":
                    raise BadRequest(self._memory_message())
                else:
                    raise InternalError(f"query failed: {value}")
            elif most_resident is not None:
                resident = _resident_bytes(process.pid)
                if resident is not None and resident > most_resident:
                    raise BadRequest(self._memory_message())

    def _memory_message(self) -> str:
        return f"query stopped: it needs more memory than the limit ({self.memory_label})"


def _resident_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None  # gone, or not Linux: the address-space limit still holds


def _mapped_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


class _Process:
    """A query's process, to watch and to kill. A pidfd where there is one, so a kill
    can never reach a process that took the pid over."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._pidfd: int | None = None

    def __enter__(self) -> _Process:
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(self.pid)
        return self

    def __exit__(self, *_: object) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)


class _ForkHost:
    """The process query processes are forked from, started at the first query."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    def fork(self) -> Connection:
        """A connection to a new query process, which first sends ("started", pid) and
        then waits for its job."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                try:
                    socket.send_fds(self._running(), [b"f"], [theirs.fileno()])
                except OSError:
                    # The host died (killed from outside): one more try with a new one.
                    self._stop()
                    socket.send_fds(self._running(), [b"f"], [theirs.fileno()])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return Connection(ours.detach())

    def restart(self) -> None:
        with self._lock:
            self._stop()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _running(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._control:
            return self._control
        self._stop()
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-c",
                    "import sys; from openenrich.lake.query import host; host(int(sys.argv[1]))",
                    str(theirs.fileno()),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self._control = ours
        return ours

    def _stop(self) -> None:
        if self._control is not None:
            # The host ends when its control socket closes; running queries finish.
            self._control.close()
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def host(control_fd: int) -> None:
    """The fork host's loop: one child per file descriptor received, until the server
    closes the control socket."""
    # Children are reaped by the kernel: the host never waits for one.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # A Ctrl-C reaches the whole process group; the server decides when the host ends
    # (by closing the control socket), and stops its running queries itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, 1, 1)
        except OSError:
            return
        if not message:
            return
        for fd in fds:
            if os.fork() == 0:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = 1
                try:
                    _child(Connection(fd))
                    code = 0
                finally:
                    os._exit(code)
            os.close(fd)


# -- in the query's process -----------------------------------------------------------


def _child(sender: Connection) -> None:
    """The query's process: sends ("started", pid), reads its job, answers with
    ("ready", resident bytes) once the sandbox is set up, then one of ("result", …)
    followed by the body, ("refused", message), ("memory", None) or ("failed", message)."""
    sender.send(("started", os.getpid()))
    job: _Job = sender.recv()
    try:
        columns, body, row_count, truncated_by = _execute(sender, job)
    except BadRequest as error:
        sender.send(("refused", error.message))
    except (duckdb.OutOfMemoryException, MemoryError, pa.ArrowMemoryError):
        sender.send(("memory", None))
    except duckdb.PermissionException:
        sender.send(("refused", "queries may read only your own streams"))
    except duckdb.Error as error:
        sender.send(("refused", f"query failed: {_first_line(error)}"))
    except Exception as error:
        sender.send(("failed", f"{type(error).__name__}: {_first_line(error)}"))
    else:
        sender.send(("result", (columns, row_count, truncated_by)))
        sender.send_bytes(body)
    finally:
        sender.close()


def _execute(
    sender: Connection, job: _Job
) -> tuple[list[tuple[str, str]], bytes, int, Truncation | None]:
    limits = job.limits
    pa.set_cpu_count(limits.threads)
    db = sandboxed(threads=limits.threads, memory=limits.memory)
    _create_views(db, job)
    _check(db, job.sql)
    mapped = _mapped_bytes()
    if mapped is not None:
        _limit_address_space(mapped + limits.memory + limits.bytes + ADDRESS_SPACE_SLACK)
    sender.send(("ready", _resident_bytes(os.getpid()) or 0))
    reader = db.sql(job.sql).limit(limits.rows + 1).to_arrow_reader(BATCH_ROWS)
    columns = [(field.name, str(field.type)) for field in reader.schema]
    render = _RENDERERS[job.format](reader.schema)
    truncated_by: Truncation | None = None
    rows = 0
    for batch in reader:
        if rows + batch.num_rows > limits.rows:
            batch, truncated_by = batch.slice(0, limits.rows - rows), "rows"
        taken = render.add(batch, limits.bytes)
        rows += taken
        if taken < batch.num_rows:
            truncated_by = "bytes"
        if truncated_by is not None:
            break
    return columns, render.finish(), rows, truncated_by


def sandboxed(*, threads: int, memory: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read only the datasets registered with it: no file
    system (nor S3, nor HTTP), no extensions, no spilling to disk, its configuration
    locked. Every DuckDB that reads the lake is opened here."""
    db = duckdb.connect(
        config={
            "threads": threads,
            "memory_limit": f"{memory}B",
            # In-memory with no temporary directory: past the limit a query fails
            # instead of filling the disk.
            "temp_directory": "",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    db.execute("SET enable_external_access = false")
    db.execute("SET TimeZone = 'UTC'")
    db.execute("SET lock_configuration = true")
    return db


def _create_views(db: duckdb.DuckDBPyConnection, job: _Job) -> None:
    """Stream views in the main schema, dead letters in `dlq`. Sources are registered
    under names with a space, which no stream id has, so they cannot hide a stream."""
    taken: set[str] = set()
    sources = 0

    def source(dataset: ds.Dataset | None) -> str:
        nonlocal sources
        if dataset is None:
            return "(SELECT NULL::VARCHAR AS _event_id WHERE false)"
        name = f"source {sources}"
        sources += 1
        db.register(name, dataset)
        return quote(name)

    for name, dataset in job.streams.items():
        db.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {source(dataset)}")  # noqa: S608
        taken.add(name.casefold())
    db.execute("CREATE SCHEMA dlq")
    for name, dataset in job.dead_letters.items():
        view = f"dlq.{quote(name)}"
        db.execute(f"CREATE VIEW {view} AS SELECT * FROM {source(dataset)}")  # noqa: S608
        # The older name, unless a stream from before ids ending in _dlq were refused
        # has it: then the name is that stream's.
        older = f"{name}_dlq"
        if older.casefold() not in taken:
            db.execute(f"CREATE VIEW {quote(older)} AS SELECT * FROM {view}")  # noqa: S608
            taken.add(older.casefold())


def _check(db: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = db.extract_statements(sql)
    except duckdb.Error as error:
        raise BadRequest(f"query failed: {_first_line(error)}") from None
    if len(statements) != 1:
        raise BadRequest("send exactly one SQL statement")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise BadRequest("only SELECT statements are allowed")


def _limit_address_space(size: int) -> None:
    # Memory DuckDB's buffer manager does not see (a huge string a function builds)
    # fails to allocate here instead of growing without bound.
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        size = min(size, hard)
    resource.setrlimit(resource.RLIMIT_AS, (size, hard))


# -- rendering, within the byte limit ----------------------------------------------------


class _Renderer:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.size = 0

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        """Add the rows of `batch` that fit in `budget` bytes in all; how many did."""
        raise NotImplementedError

    def finish(self) -> bytes:
        raise NotImplementedError

    def _fit(
        self, batch: pa.RecordBatch, budget: int, size: Callable[[pa.RecordBatch], int]
    ) -> int:
        """The most leading rows of `batch` whose encoding fits in what is left."""
        left = budget - self.size
        rows: int = batch.num_rows
        if size(batch) <= left:
            return rows
        low, high = 0, rows - 1
        while low < high:
            middle = (low + high + 1) // 2
            if size(batch.slice(0, middle)) <= left:
                low = middle
            else:
                high = middle - 1
        return low


class _JsonRows(_Renderer):
    """A JSON array of rows, each an array of values (columns may share a name)."""

    def __init__(self, schema: pa.Schema) -> None:
        super().__init__(schema)
        self.rows: list[bytes] = []
        self.size = 2  # the brackets

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        columns = [column.to_pylist() for column in batch.columns]
        for taken, row in enumerate(zip(*columns, strict=True)):
            encoded = orjson.dumps(row, default=_json_value, option=orjson.OPT_NON_STR_KEYS)
            extra = len(encoded) + (1 if self.rows else 0)
            if self.size + extra > budget:
                return taken
            self.rows.append(encoded)
            self.size += extra
        rows: int = batch.num_rows
        return rows

    def finish(self) -> bytes:
        return b"[" + b",".join(self.rows) + b"]"


class _Csv(_Renderer):
    def __init__(self, schema: pa.Schema) -> None:
        super().__init__(schema)
        for field in schema:
            try:
                _csv(pa.RecordBatch.from_pylist([], schema=pa.schema([field])), header=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise BadRequest(
                    f"column '{field.name}' ({field.type}) has no CSV form: "
                    "ask for JSON or Arrow, or cast it to text"
                ) from None
        self.parts = [_csv(pa.RecordBatch.from_pylist([], schema=schema), header=True)]
        self.size = len(self.parts[0])

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        taken = self._fit(batch, budget, lambda rows: len(_csv(rows, header=False)))
        if taken:
            part = _csv(batch.slice(0, taken), header=False)
            self.parts.append(part)
            self.size += len(part)
        return taken

    def finish(self) -> bytes:
        return b"".join(self.parts)


class _Arrow(_Renderer):
    """An Arrow IPC stream: the schema, each batch, the end-of-stream marker."""

    def __init__(self, schema: pa.Schema) -> None:
        super().__init__(schema)
        self.sink = pa.BufferOutputStream()
        self.writer = pa.ipc.new_stream(self.sink, schema)
        self.size = self.sink.tell() + len(ARROW_EOS)

    def add(self, batch: pa.RecordBatch, budget: int) -> int:
        taken = self._fit(batch, budget, pa.ipc.get_record_batch_size)
        if taken:
            self.writer.write_batch(batch.slice(0, taken))
            self.size = self.sink.tell() + len(ARROW_EOS)
        return taken

    def finish(self) -> bytes:
        self.writer.close()
        return bytes(self.sink.getvalue().to_pybytes())


_RENDERERS: dict[Format, Callable[[pa.Schema], _Renderer]] = {
    "json": _JsonRows,
    "csv": _Csv,
    "arrow": _Arrow,
}


def _csv(batch: pa.RecordBatch, *, header: bool) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=header))
    return bytes(sink.getvalue().to_pybytes())


def _json_value(value: object) -> object:
    """What orjson does not know: decimals (DuckDB sums are HUGEINT) as numbers, bytes as
    hex, the rest as text."""
    if isinstance(value, Decimal):
        return decimal_number(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else repr(error)
