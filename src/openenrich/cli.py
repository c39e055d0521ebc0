"""`openenrich`: serve the API, manage keys, organisations, plans and the database; and,
as a client of a running server, ingest files, query and follow runs (client_cli.py).

Every flag also comes from its `OPENENRICH_*` environment variable (see config.Settings);
a flag given on the command line wins.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich import __version__, client_cli, logs
from openenrich.config import Settings
from openenrich.db import Database, migrate
from openenrich.errors import OpenEnrichError
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment, Role

app = typer.Typer(
    name="openenrich",
    help="OpenEnrich: a self-hosted data-enrichment server.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts say "[env: …]": plain text, not markup
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
orgs_app = typer.Typer(help="List organisations and set their plan.", no_args_is_help=True)
plans_app = typer.Typer(help="List and edit plans.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(plans_app, name="plans")
app.add_typer(db_app, name="db")
client_cli.register(app)  # ingest, query, runs: through the HTTP API of a running server

console = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder [env: OPENENRICH_DATA_DIR]")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="sqlite:///PATH or postgresql://… [env: OPENENRICH_DATABASE_URL]"
    ),
]

T = TypeVar("T")


def load_settings(**flags: Any) -> Settings:
    return Settings(**{name: value for name, value in flags.items() if value is not None})


def run_in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one committed transaction; errors exit with status 1."""
    migrate.upgrade(settings.sync_database)

    async def main() -> T:
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except OpenEnrichError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from None


def print_table(table: Table) -> None:
    # Piped output (scripts, CI logs) gets whole values rather than a terminal's width.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


Rows = list[tuple[str, ...]]


def print_rows(
    settings: Settings, columns: Sequence[str], rows: Callable[[AsyncSession], Awaitable[Rows]]
) -> None:
    """Read `rows` in one session (`run_in_session`) and print them as a table."""
    table = Table(*columns)
    for row in run_in_session(settings, rows):
        table.add_row(*row)
    print_table(table)


def show(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"openenrich {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    """OpenEnrich: a self-hosted data-enrichment server."""


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="[env: OPENENRICH_HOST, default 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="[env: OPENENRICH_PORT, default 8080]")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    lake_url: Annotated[
        str | None,
        typer.Option("--lake-url", help="Folder or s3:// URL [env: OPENENRICH_LAKE_URL]"),
    ] = None,
) -> None:
    """Run the HTTP API and the background workers in one process."""

    import uvicorn

    from openenrich.app import create_app

    settings = load_settings(
        host=host, port=port, data_dir=data_dir, database_url=database_url, lake_url=lake_url
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs.configure(settings)
    try:
        plaintext = run_in_session(settings, service.bootstrap)
    except IntegrityError:  # another process bootstrapped this database at the same moment
        plaintext = None
    if plaintext is not None:
        typer.echo("Created organisation 'default' with an admin API key. It is shown only once:")
        typer.echo(plaintext)
    typer.echo(
        f"OpenEnrich {__version__} on http://{settings.host}:{settings.port} (docs at /docs)"
    )
    sys.stdout.flush()
    uvicorn.run(
        create_app(settings, freeze_gc_after_startup=True),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=logs.uvicorn_log_config(),
        access_log=False,  # ours (http/access_log.py) names the key's prefix and the duration
        server_header=False,
    )


@app.command()
def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs run at once [env: OPENENRICH_WORKER_CONCURRENCY]"),
    ] = None,
) -> None:
    """Run the background workers alone, without the HTTP API: start as many as the jobs
    need, next to `serve` processes started with OPENENRICH_WORKERS_IN_SERVE=false. On
    PostgreSQL they may run on any machine; on SQLite, on the database's machine."""
    import signal

    from openenrich import background
    from openenrich.http.state import AppState

    settings = load_settings(
        data_dir=data_dir, database_url=database_url, worker_concurrency=concurrency
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs.configure(settings)
    migrate.upgrade(settings.sync_database)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        state = AppState(settings)
        async with background.started(state, api=False, run_workers=True) as runtime:
            await background.warm_up(state)
            background.freeze_startup_objects()
            typer.echo(
                f"OpenEnrich {__version__} worker {runtime.node_id}: "
                f"{settings.worker_concurrency} jobs at once"
            )
            sys.stdout.flush()
            await stopping.wait()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the newest schema."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    migrate.upgrade(settings.sync_database)
    typer.echo(f"database at revision {migrate.current_revision(settings.sync_database)}")


@db_app.command("current")
def db_current(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the database's schema revision and the newest one this version knows."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    typer.echo(f"current: {migrate.current_revision(settings.sync_database) or 'empty'}")
    typer.echo(f"head:    {migrate.head_revision()}")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option("--org", help="Organisation name (created if missing)")],
    role: Annotated[Role, typer.Option("--role")] = Role.MEMBER,
    test: Annotated[bool, typer.Option("--test", help="Make an sk_test_ key")] = False,
    name: Annotated[str, typer.Option("--name", help="A label for the key")] = "",
    expires_in_days: Annotated[int | None, typer.Option("--expires-in-days", min=1)] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Runs made with this key skip plan approval")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key; the plaintext key is the last line printed."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def work(session: AsyncSession) -> tuple[str, str]:
        organization = await service.ensure_organization(session, org)
        key, plaintext = await service.create_key(
            session,
            organization,
            environment=Environment.TEST if test else Environment.LIVE,
            role=role,
            name=name,
            expires_in=timedelta(days=expires_in_days) if expires_in_days else None,
            auto_approve=auto_approve,
        )
        return key.prefix, plaintext

    prefix, plaintext = run_in_session(settings, work)
    environment = "test" if test else "live"
    typer.echo(f"Created {role.value} {environment} key {prefix}… for '{org}'. Shown only once:")
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's keys")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List keys: prefix, name, role, environment, created, last used, revoked."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def rows(session: AsyncSession) -> Rows:
        orgs = {o.id: o.name for o in await service.list_organizations(session)}
        only = await service.get_organization(session, org) if org else None
        return [
            (
                key.prefix,
                orgs[key.org_id],
                key.name,
                key.role,
                key.environment,
                show(key.created_at),
                show(key.last_used_at),
                show(key.revoked_at),
                show(key.expires_at),
            )
            for key in await service.list_keys(session, org=only)
        ]

    columns = ["prefix", "org", "name", "role", "environment"]
    print_rows(settings, [*columns, "created", "last used", "revoked", "expires"], rows)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's 16-character prefix")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key; it is refused from the next request on."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def work(session: AsyncSession) -> str:
        key = await service.revoke_key(session, prefix)
        return key.prefix

    typer.echo(f"revoked {run_in_session(settings, work)}")


@orgs_app.command("list")
def orgs_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List organisations and their plans."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def rows(session: AsyncSession) -> Rows:
        return [
            (o.name, o.plan_name, show(o.created_at))
            for o in await service.list_organizations(session)
        ]

    print_rows(settings, ["name", "plan", "created"], rows)


@orgs_app.command("set-plan")
def orgs_set_plan(
    name: Annotated[str, typer.Argument(help="Organisation name")],
    plan: Annotated[str, typer.Argument(help="Plan name (see `openenrich plans list`)")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Put an organisation on a plan."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def work(session: AsyncSession) -> str:
        return (await service.set_org_plan(session, name, plan)).plan_name

    typer.echo(f"'{name}' is now on plan '{run_in_session(settings, work)}'")


def limit_value(raw: str | None, parse: Callable[[str], T]) -> T | service.Unlimited | None:
    if raw is None:
        return None
    if raw.lower() == "unlimited":
        return service.UNLIMITED
    try:
        return parse(raw)
    except (ValueError, InvalidOperation):
        raise typer.BadParameter(f"{raw!r} is neither a number nor 'unlimited'") from None


@plans_app.command("list")
def plans_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List plans and their limits (- means unlimited)."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    def fmt(value: object) -> str:
        return "-" if value is None else str(value)

    async def rows(session: AsyncSession) -> Rows:
        return [
            (
                p.name,
                p.display_name,
                fmt(p.requests_per_second),
                fmt(p.events_per_month),
                fmt(p.lead_quota),
                p.credit_policy,
                fmt(p.max_credits),
            )
            for p in await service.list_plans(session)
        ]

    columns = ["name", "display", "req/s", "events/month", "leads", "credits", "max credits"]
    print_rows(settings, columns, rows)


@plans_app.command("set")
def plans_set(
    name: Annotated[str, typer.Argument(help="Plan name; created if missing")],
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    rps: Annotated[
        str | None, typer.Option("--rps", help="Requests/s per key, or 'unlimited'")
    ] = None,
    events_per_month: Annotated[str | None, typer.Option("--events-per-month")] = None,
    lead_quota: Annotated[str | None, typer.Option("--lead-quota")] = None,
    credit_policy: Annotated[
        str | None, typer.Option("--credit-policy", help="unlimited or prepaid")
    ] = None,
    max_credits: Annotated[str | None, typer.Option("--max-credits")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create or edit a plan. Give a limit as a number or as 'unlimited'."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    changes = service.PlanChanges(
        display_name=display_name,
        description=description,
        requests_per_second=limit_value(rps, float),
        events_per_month=limit_value(events_per_month, int),
        lead_quota=limit_value(lead_quota, int),
        credit_policy=credit_policy,
        max_credits=limit_value(max_credits, Decimal),
    )

    async def work(session: AsyncSession) -> str:
        return (await service.upsert_plan(session, name, changes)).name

    typer.echo(f"plan '{run_in_session(settings, work)}' saved")


def main() -> None:
    app()
