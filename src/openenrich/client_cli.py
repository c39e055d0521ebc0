"""The CLI's client commands: `ingest`, `query`, `runs …`, `leads …`, `entities enrich`.
They talk to a running server through `openenrich.client`, as any API client would
(`OPENENRICH_URL`, `OPENENRICH_API_KEY`), and print one line, not a traceback, when
something is wrong."""

from __future__ import annotations

import csv
import hashlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from openenrich.client import APIError, Client, ConnectionFailed, OpenEnrichError

console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

Url = Annotated[
    str | None,
    typer.Option("--url", envvar="OPENENRICH_URL", help="The server [env: OPENENRICH_URL]"),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="OPENENRICH_API_KEY", help="An API key [env: OPENENRICH_API_KEY]"
    ),
]

runs_app = typer.Typer(help="Create and follow verification runs.", no_args_is_help=True)
leads_app = typer.Typer(help="Upload and export a pipeline's leads.", no_args_is_help=True)
entities_app = typer.Typer(help="Enrich entities with one or several LLMs.", no_args_is_help=True)


@contextmanager
def connected(url: str | None, api_key: str | None) -> Iterator[Client]:
    """A client, and one line on stderr (exit 1) for whatever goes wrong with it."""
    try:
        with Client(url, api_key) as client:
            yield client
    except ConnectionFailed as error:
        _fail(f"cannot reach the server: {error}")
    except APIError as error:
        _fail(f"the server refused: {error.message} ({error.status})")
    except OpenEnrichError as error:
        _fail(str(error))


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


# -- ingest ----------------------------------------------------------------------------------

FileFormat = Literal["ndjson", "json", "csv", "parquet"]
_SUFFIXES: dict[str, FileFormat] = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}


def read_events(path: Path, format: FileFormat | None = None) -> tuple[int, Iterator[bytes]]:
    """How many events `path` holds and the events as JSON. NDJSON and CSV are read as
    they are sent; a JSON array and Parquet are read whole first."""
    kind = format or _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise OpenEnrichError(
            f"{path.name}: say what it holds with --format (ndjson, json, csv or parquet)"
        )
    if not path.is_file():
        raise OpenEnrichError(f"{path}: no such file")
    if kind == "ndjson":
        with path.open("rb") as file:
            total = sum(1 for line in file if line.strip())
        return total, _ndjson(path)
    if kind == "json":
        try:
            items = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise OpenEnrichError(f"{path.name} is not JSON: {error}") from None
        if not isinstance(items, list):
            raise OpenEnrichError(f"{path.name} holds no JSON array of events")
        return len(items), (orjson.dumps(item) for item in items)
    if kind == "csv":
        with path.open(newline="", encoding="utf-8") as file:
            total = max(sum(1 for _ in csv.reader(file)) - 1, 0)
        return total, _csv(path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.num_rows, (orjson.dumps(row) for row in table.to_pylist())


def _ndjson(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise OpenEnrichError(f"{path.name}, line {number}: not JSON ({error})") from None
            yield line.strip()


def _csv(path: Path) -> Iterator[bytes]:
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            yield orjson.dumps(row)


def batch_key_prefix(path: Path, stream: str, batch_bytes: int) -> str:
    """What names a file's batches for the server (their Idempotency-Keys): its content,
    the stream and the batch size (which cuts the batches), so that running the same
    command again after an interruption sends the same keys, and the server stores
    nothing twice."""
    digest = hashlib.sha256(f"{stream}\0{batch_bytes}\0".encode())
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return f"file-{digest.hexdigest()[:40]}"


def ingest(
    file: Annotated[Path, typer.Argument(help="NDJSON, a JSON array, CSV or Parquet")],
    stream: Annotated[str, typer.Option("--stream", "-s", help="The stream to send to")],
    format: Annotated[
        str | None, typer.Option(help="ndjson, json, csv or parquet (else from the suffix)")
    ] = None,
    batch_bytes: Annotated[
        int, typer.Option(min=1024, max=1_000_000, help="The most bytes a batch holds")
    ] = 1_000_000,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Send a file's events to a stream, in batches under the server's 1 MiB cap. Run it
    again after an interruption: what was stored is not stored twice."""
    if format is not None and format not in _SUFFIXES.values():
        _fail(f"--format {format}: use ndjson, json, csv or parquet")
    with connected(url, api_key) as client:
        total, events = read_events(file, format)  # type: ignore[arg-type]
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=not console.is_terminal,
        )
        with progress:
            task = progress.add_task(f"{file.name} → {stream}", total=total, rate="")

            def sent(batch: Any, answer: dict[str, Any]) -> None:
                progress.advance(task, batch.count)
                elapsed = progress.tasks[0].elapsed or 0
                done = progress.tasks[0].completed
                rate = f"{done / elapsed:,.0f} events/s" if elapsed else ""
                progress.update(task, rate=rate)

            prefix = batch_key_prefix(file, stream, batch_bytes)
            result = client.streams.ingest(
                stream, events, max_bytes=batch_bytes, on_batch=sent, idempotency_prefix=prefix
            )
        rejected = f", {result.rejected:,} to the dead-letter queue" if result.rejected else ""
        out.print(f"{result.accepted:,} events accepted in {result.batches:,} batches{rejected}")


# -- query -----------------------------------------------------------------------------------


def query(
    sql: Annotated[str, typer.Argument(help="Read-only SQL (DuckDB); each stream is a table")],
    format: Annotated[str, typer.Option(help="table, csv or json")] = "table",
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Run SQL over your streams and print the rows."""
    if format not in ("table", "csv", "json"):
        _fail(f"--format {format}: use table, csv or json")
    with connected(url, api_key) as client:
        if format == "csv":
            sys.stdout.write(client.streams.query(sql, format="csv"))
            return
        answer = client.streams.query(sql)
    if format == "json":
        names = [column["name"] for column in answer["columns"]]
        for row in answer["rows"]:
            sys.stdout.write(orjson.dumps(dict(zip(names, row, strict=True))).decode() + "\n")
        return
    table = Table(*(column["name"] for column in answer["columns"]))
    for row in answer["rows"]:
        table.add_row(*("" if value is None else str(value) for value in row))
    Console(width=None if sys.stdout.isatty() else 240).print(table)
    if answer.get("truncated"):
        console.print(f"(truncated by {answer.get('truncated_by')})")


# -- runs ------------------------------------------------------------------------------------


@runs_app.command("create")
def runs_create(
    message: Annotated[str, typer.Argument(help="What to verify, in plain language")],
    workflow: Annotated[str | None, typer.Option(help="A workflow's slug")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it until it ends")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Send it again with this key: the same run")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Start a verification run and print its id (or, with --wait, follow it)."""
    with connected(url, api_key) as client:
        run = client.runs.create(message, workflow=workflow, idempotency_key=idempotency_key)
        if not wait:
            out.print(run["id"])
            return
        console.print(f"run {run['id']}", highlight=False)
        _follow(client, run["id"])


@runs_app.command("follow")
def runs_follow(
    run_id: Annotated[str, typer.Argument(help="The run's id")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Print a run's events as they happen, and its answer as it is written."""
    with connected(url, api_key) as client:
        _follow(client, run_id)


_SAY: dict[str, Callable[[Any], str | None]] = {
    "answer.delta": lambda data: str(data.get("text", "")),
    "tool_call": lambda data: f"· {data.get('name')} {data.get('status')}",
    "run.requires_approval": lambda data: (
        "plan waiting for approval: " + str((data.get("plan") or {}).get("summary", ""))
    ),
}


def _follow(client: Client, run_id: str) -> None:
    for event in client.runs.events(run_id):
        say = _SAY.get(event.type)
        line = say(event.data if isinstance(event.data, dict) else {}) if say else None
        if line:
            out.print(line)
    run = client.runs.get(run_id)
    verdict = (run.get("report") or {}).get("verdict")
    summary = f"run {run['status']}" + (f": {verdict}" if verdict else "")
    out.print(f"{summary} ({run['credits_used']} credits)")
    if run["status"] != "completed":
        raise typer.Exit(1)


# -- leads -----------------------------------------------------------------------------------


@leads_app.command("upload")
def leads_upload(
    file: Annotated[Path, typer.Argument(help="A CSV with a header row (email, first_name, …)")],
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="The pipeline's id")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Upload a CSV's leads to a pipeline, in chunks under the server's caps, three at a
    time. Leads already in the account (by email) are skipped, so a re-run adds nothing."""
    with connected(url, api_key) as client:
        total, rows = read_events(file, "csv")
        # An empty cell is a field not given, not an empty value.
        leads = ({k: v for k, v in orjson.loads(row).items() if v != ""} for row in rows)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} leads"),
            TimeElapsedColumn(),
            console=console,
            transient=not console.is_terminal,
        )
        with progress:
            task = progress.add_task(f"{file.name} → {pipeline}", total=total)
            result = client.leads.upload(
                pipeline, leads, on_chunk=lambda answer: progress.advance(task, answer["received"])
            )
        out.print(
            f"{result.created:,} created, {result.skipped:,} skipped, {result.failed:,} failed "
            f"of {result.received:,} leads"
        )
        if result.failed:
            raise typer.Exit(1)


@leads_app.command("export")
def leads_export(
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="The pipeline's id")],
    format: Annotated[str, typer.Option(help="csv or ndjson")] = "csv",
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Write every lead of a pipeline to standard output, with its enriched values."""
    if format not in ("csv", "ndjson"):
        _fail(f"--format {format}: use csv or ndjson")
    with connected(url, api_key) as client:
        for chunk in client.leads.export_file(pipeline, format):  # type: ignore[arg-type]
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()


# -- entities --------------------------------------------------------------------------------

BATCH_MAX = 1_000  # entities in one job: the server's default OPENENRICH_ENTITIES_BATCH_MAX


@entities_app.command("enrich")
def entities_enrich(
    file: Annotated[Path, typer.Argument(help="Entities: NDJSON, a JSON array or CSV")],
    schema: Annotated[str, typer.Option("--schema", help="A saved schema's id")],
    models: Annotated[str, typer.Option("--models", help="provider::model keys, comma separated")],
    strategy: Annotated[
        str | None, typer.Option(help="single_pass (default) or multi_expertise")
    ] = None,
    arbitration_model: Annotated[
        str | None, typer.Option(help="A model that settles the fields the others dispute")
    ] = None,
    skip_classification: Annotated[
        bool, typer.Option("--skip-classification", help="Do not check the entity's type first")
    ] = False,
    format: Annotated[str | None, typer.Option(help="ndjson, json or csv")] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Enrich a file's entities against a saved schema: a line per entity as it is done
    (its records, and the fused one with several models), then the total cost."""
    if format is not None and format not in ("ndjson", "json", "csv"):
        _fail(f"--format {format}: use ndjson, json or csv")
    chosen = [model.strip() for model in models.split(",") if model.strip()]
    if not chosen:
        _fail("--models: name at least one provider::model")
    options: dict[str, Any] = {"skip_classification": skip_classification}
    if strategy is not None:
        options["strategy"] = strategy
    if arbitration_model is not None:
        options["arbitration_model"] = arbitration_model
    with connected(url, api_key) as client:
        total, rows = read_events(file, format)  # type: ignore[arg-type]
        entities = [orjson.loads(row) for row in rows]
        if any(not isinstance(entity, dict) for entity in entities):
            _fail(f"{file.name}: each entity must be a JSON object")
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} entities"),
            TimeElapsedColumn(),
            console=console,
            transient=not console.is_terminal,
        )
        failed = 0
        cost = 0.0
        with progress:
            task = progress.add_task(f"{file.name}, {len(chosen)} models", total=total)
            for start in range(0, len(entities), BATCH_MAX):
                part = entities[start : start + BATCH_MAX]
                job = client.entities.enrich_batch(part, schema_id=schema, models=chosen, **options)
                for event in client.entities.events(job["job_id"]):
                    data = event.data if isinstance(event.data, dict) else {}
                    kind = data.get("type")
                    if kind == "entity_completed":
                        progress.advance(task)
                        failed += data.get("status") != "completed"
                        index = start + int(data.get("entity_index") or 0)
                        line = _entity_line(index, entities[index], data)
                        progress.console.print(line, highlight=False, soft_wrap=True)
                    elif kind == "paused":
                        why = data.get("detail") or data.get("reason")
                        progress.console.print(
                            f"job {job['job_id']} paused ({why}): POST /api/llm/continue/"
                            f"{job['job_id']} goes on, POST /api/llm/cancel/… ends it",
                            highlight=False,
                        )
                    elif kind == "error":
                        progress.console.print(f"[red]job error:[/red] {data.get('message')}")
                    elif kind == "completed":
                        cost += float(data.get("total_cost") or 0)
        out.print(
            f"{total - failed:,} of {total:,} entities enriched, {failed:,} failed; cost {cost:.6f}"
        )
        if failed:
            raise typer.Exit(1)


def _entity_line(index: int, entity: dict[str, Any], data: dict[str, Any]) -> str:
    name = entity.get("name") or entity.get("company") or entity.get("title") or ""
    label = f"#{index} {name}".rstrip()
    if data.get("status") != "completed":
        return f"✗ {label}: failed ({data.get('error') or 'no model answered'})"
    records = ", ".join(data.get("record_ids") or [])
    fused = data.get("fusion_record_id")
    return f"✓ {label}: records {records}" + (f"; fused {fused}" if fused else "")


def register(app: typer.Typer) -> None:
    """Add the client commands to the `openenrich` CLI."""
    app.command()(ingest)
    app.command()(query)
    app.add_typer(runs_app, name="runs")
    app.add_typer(leads_app, name="leads")
    app.add_typer(entities_app, name="entities")
