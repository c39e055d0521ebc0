"""`GET /connect`: how to read a tenant's files directly, with SQL ready to paste.

The SQL here is text handed to users, never executed by us.
"""

from __future__ import annotations

from openenrich.config import Settings
from openenrich.lake.storage import LakeStorage
from openenrich.streams.schemas import S3SQL, LocalConnection, LocalSQL, S3Connection
from openenrich.tenancy.tenant import Tenant


def connection_details(
    settings: Settings, storage: LakeStorage, tenant: Tenant
) -> LocalConnection | S3Connection:
    """How to read this tenant's files directly, with ready-to-paste SQL."""
    prefix = storage.tenant_prefix(tenant.org_id, tenant.environment.value)
    if storage.is_local:
        root = storage.full_path(prefix)
        pattern = f"{root}/*/date=*/*.parquet"
        return LocalConnection(
            storage="local",
            path=root,
            example_path=pattern,
            sql=LocalSQL(
                duckdb=f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, union_by_name = true);",
                python=(
                    "import pyarrow.dataset as ds\n"
                    f"table = ds.dataset('{root}/<stream_id>', format='parquet', partitioning='hive').to_table()"
                ),
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
                f"SET s3_region='{settings.s3_region}'; SET s3_endpoint='{host}'; "
                f"SET s3_url_style='path'; SET s3_use_ssl={'false' if endpoint.startswith('http://') else 'true'}; "
                f"SET s3_access_key_id='{shown_key}'; SET s3_secret_access_key='{shown_secret}'; "
                f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, union_by_name = true);"
            ),
            clickhouse=(
                f"SELECT * FROM s3('{endpoint.rstrip('/')}/{root}/*/date=*/*.parquet', "
                f"'{shown_key}', '{shown_secret}', 'Parquet');"
            ),
            python=(
                "import pyarrow.dataset as ds, pyarrow.fs as fs\n"
                f"s3 = fs.S3FileSystem(access_key='{shown_key}', secret_key='{shown_secret}', "
                f"region='{settings.s3_region}', endpoint_override='{endpoint}')\n"
                f"table = ds.dataset('{root}/<stream_id>', filesystem=s3, format='parquet', partitioning='hive').to_table()\n"
                "# polars: pl.from_arrow(table)"
            ),
        ),
    )
