"""`GET /connect`: how to read a tenant's files directly, with SQL ready to paste.

The SQL and code are text handed to users, never executed by us. They read each stream
through its own path (one DuckDB view, one ClickHouse query, one pyarrow table per
stream): two streams may have a column of one name with types that do not mix (seed
000's text `event`, seed 003's JSON `event`), and a glob over all of them made DuckDB cast
one into the other and fail. Streams with no file yet are left out (a glob that matches
nothing is an error in DuckDB); with none at all, the snippets show the pattern to fill in.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.lake.models import LakeFile
from openenrich.lake.storage import LakeStorage
from openenrich.streams.schemas import S3SQL, LocalConnection, LocalSQL, S3Connection
from openenrich.tenancy.tenant import Tenant

PLACEHOLDER = "<stream_id>"


async def streams_with_files(session: AsyncSession, tenant: Tenant) -> list[str]:
    """The tenant's streams that have event files in the lake, by name."""
    rows = await session.scalars(
        select(LakeFile.stream_id)
        .where(tenant.owns(LakeFile), LakeFile.kind == "data")
        .distinct()
        .order_by(LakeFile.stream_id)
    )
    return list(rows)


def _string(value: str) -> str:
    """A single-quoted SQL string literal (DuckDB and ClickHouse both read `''`)."""
    return "'" + value.replace("'", "''") + "'"


def _python_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_views(root: str, stream_ids: list[str]) -> str:
    """A view per stream, then an example query. Within a stream, `union_by_name` takes
    the columns of every file (a field added later is in the newer files only)."""
    if not stream_ids:
        pattern = f"{root}/{PLACEHOLDER}/date=*/*.parquet"
        return (
            f"SELECT * FROM read_parquet({_string(pattern)}, hive_partitioning = true, "
            "union_by_name = true);"
        )
    views = [
        f"CREATE OR REPLACE VIEW {_identifier(stream_id)} AS SELECT * FROM read_parquet("
        f"{_string(f'{root}/{stream_id}/date=*/*.parquet')}, hive_partitioning = true, "
        "union_by_name = true);"
        for stream_id in stream_ids
    ]
    example = f"SELECT * FROM {_identifier(stream_ids[0])} LIMIT 10;"
    return "\n".join(["-- One view per stream; query them by name.", *views, example])


def _clickhouse_local(root: str, stream_ids: list[str]) -> str:
    """A `file()` query per stream: for `clickhouse local`, which reads any path (a
    ClickHouse server reads only under its `user_files_path`)."""
    queries = [
        f"SELECT * FROM file({_string(f'{root}/{stream_id}/date=*/*.parquet')}, 'Parquet') "
        "SETTINGS schema_inference_mode = 'union';"
        for stream_id in stream_ids or [PLACEHOLDER]
    ]
    return "\n".join(["-- clickhouse local: one query per stream", *queries])


# Files of one stream written at different times may differ in columns (and widen a
# type): the dataset reads them all with the union of their schemas.
_READ_STREAM = """\
def read_stream(path{extra_parameter}):
    files = ds.dataset(path, format='parquet', partitioning='hive'{extra_argument})
    schema = pa.unify_schemas(
        [files.schema] + [fragment.physical_schema for fragment in files.get_fragments()],
        promote_options='permissive',
    )
    return ds.dataset(path, schema=schema, format='parquet', partitioning='hive'{extra_argument}).to_table()
"""


def _python_tables(root: str, stream_ids: list[str], *, s3: str | None = None) -> str:
    """`tables`: a pyarrow table per stream. `s3` is the line that makes `s3`, the
    filesystem, for a lake on S3."""
    lines = ["import pyarrow as pa, pyarrow.dataset as ds"]
    if s3 is not None:
        lines.append("import pyarrow.fs as fs")
        lines.append(s3)
    lines.append("")
    extra = ", filesystem=s3" if s3 is not None else ""
    lines.append(_READ_STREAM.format(extra_parameter="", extra_argument=extra))
    lines.append("tables = {")
    for stream_id in stream_ids or [PLACEHOLDER]:
        lines.append(
            f"    {_python_string(stream_id)}: read_stream({_python_string(f'{root}/{stream_id}')}),"
        )
    lines.append("}")
    if s3 is not None:
        lines.append("# polars: pl.from_arrow(tables[...])")
    return "\n".join(lines)


async def connection_details(
    session: AsyncSession, settings: Settings, storage: LakeStorage, tenant: Tenant
) -> LocalConnection | S3Connection:
    """How to read this tenant's files directly, with ready-to-paste SQL."""
    prefix = storage.tenant_prefix(tenant.org_id, tenant.environment.value)
    stream_ids = await streams_with_files(session, tenant)
    if storage.is_local:
        root = storage.full_path(prefix)
        pattern = f"{root}/*/date=*/*.parquet"
        return LocalConnection(
            storage="local",
            path=root,
            example_path=pattern,
            sql=LocalSQL(
                duckdb=_duckdb_views(root, stream_ids),
                clickhouse=_clickhouse_local(root, stream_ids),
                python=_python_tables(root, stream_ids),
            ),
        )
    endpoint = (
        settings.connect_endpoint
        or settings.s3_endpoint
        or f"https://s3.{settings.s3_region}.amazonaws.com"
    )
    host = endpoint.split("://", 1)[-1].rstrip("/")
    root = storage.full_path(prefix)
    pattern = f"s3://{root}/*/date=*/*.parquet"
    key = settings.connect_access_key_id
    secret = settings.connect_secret_access_key
    shown_key, shown_secret = key or "<read access key id>", secret or "<read secret access key>"
    base = endpoint.rstrip("/")
    clickhouse = [
        f"SELECT * FROM s3({_string(f'{base}/{root}/{stream_id}/date=*/*.parquet')}, "
        f"{_string(shown_key)}, {_string(shown_secret)}, 'Parquet') "
        "SETTINGS schema_inference_mode = 'union';"
        for stream_id in stream_ids or [PLACEHOLDER]
    ]
    s3 = (
        f"s3 = fs.S3FileSystem(access_key={_python_string(shown_key)}, "
        f"secret_key={_python_string(shown_secret)}, region={_python_string(settings.s3_region)}, "
        f"endpoint_override={_python_string(endpoint)})"
    )
    return S3Connection(
        storage="s3",
        endpoint=endpoint,
        bucket=storage.bucket,
        prefix=root.split("/", 1)[1] if "/" in root else "",
        access_key_id=key,
        secret_access_key=secret,
        region=settings.s3_region,
        egress_cost=None,
        example_path=pattern,
        sql=S3SQL(
            duckdb=(
                f"SET s3_region={_string(settings.s3_region)}; SET s3_endpoint={_string(host)}; "
                f"SET s3_url_style='path'; SET s3_use_ssl={'false' if endpoint.startswith('http://') else 'true'}; "
                f"SET s3_access_key_id={_string(shown_key)}; "
                f"SET s3_secret_access_key={_string(shown_secret)};\n"
                + _duckdb_views(f"s3://{root}", stream_ids)
            ),
            clickhouse="\n".join(clickhouse),
            python=_python_tables(root, stream_ids, s3=s3),
        ),
    )
