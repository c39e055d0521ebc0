"""Where Parquet files live: a local folder or an S3 prefix, through pyarrow's filesystems.

Layout, below the lake's root:

    {org_id}/{environment}/{stream_id}/date=YYYY-MM-DD/{file}.parquet        events
    {org_id}/{environment}/{stream_id}/_dlq/date=YYYY-MM-DD/{file}.parquet   dead letters

Each tenant's files sit under their own prefix, which is what the query sandbox exposes.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from openenrich.config import Settings
from openenrich.fsync import fsync_dir, fsync_file


class LakeStorage:
    def __init__(self, settings: Settings) -> None:
        url = settings.lake
        self.url = url
        self._schemas: dict[tuple[str, int], pa.Schema] = {}
        self._schemas_lock = threading.Lock()
        if url.startswith("s3://"):
            self.is_local = False
            self.root = url[len("s3://") :].strip("/")
            self.bucket = self.root.split("/", 1)[0]
            endpoint = urlsplit(settings.s3_endpoint) if settings.s3_endpoint else None
            self.fs: pafs.FileSystem = pafs.S3FileSystem(
                access_key=settings.s3_access_key_id,
                secret_key=settings.s3_secret_access_key,
                region=settings.s3_region,
                endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
            )
            self.staging = settings.data_dir / "staging"
            self.staging.mkdir(parents=True, exist_ok=True)
        else:
            self.is_local = True
            path = Path(url).expanduser().resolve()
            path.mkdir(parents=True, exist_ok=True)
            self.root = str(path)
            self.bucket = ""
            self.fs = pafs.LocalFileSystem()

    # -- paths ---------------------------------------------------------------------------

    @staticmethod
    def tenant_prefix(org_id: str, environment: str) -> str:
        return f"{org_id}/{environment}"

    @staticmethod
    def relative_path(
        org_id: str, environment: str, stream_id: str, kind: str, day: str, name: str
    ) -> str:
        folder = f"{stream_id}/_dlq" if kind == "dlq" else stream_id
        return f"{org_id}/{environment}/{folder}/date={day}/{name}.parquet"

    def full_path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def display_path(self, relative: str) -> str:
        """How users address a file: a local path or an s3:// URL."""
        return self.full_path(relative) if self.is_local else f"s3://{self.full_path(relative)}"

    # -- writing ---------------------------------------------------------------------------

    def staging_path(self, relative: str) -> Path:
        """Where to write a file before `publish`: next to its final place on a local lake
        (so the rename is atomic), in the data folder's staging area for S3."""
        if self.is_local:
            final = Path(self.full_path(relative))
            final.parent.mkdir(parents=True, exist_ok=True)
            return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
        return self.staging / f"{uuid.uuid4().hex}.parquet"

    def publish(self, staged: Path, relative: str) -> int:
        """Make the staged file the lake file at `relative`, atomically and durably.

        A reader sees the whole file or nothing. Publishing again to the same path (after a
        crash and recovery) replaces the file. Returns the file's size in bytes.
        """
        size = staged.stat().st_size
        if self.is_local:
            fsync_file(staged)
            final = Path(self.full_path(relative))
            os.replace(staged, final)
            fsync_dir(final.parent)
        else:
            with (
                open(staged, "rb") as source,
                self.fs.open_output_stream(self.full_path(relative)) as target,
            ):
                shutil.copyfileobj(source, target, 8 * 1024 * 1024)
            staged.unlink()
        with self._schemas_lock:
            self._schemas = {k: v for k, v in self._schemas.items() if k[0] != relative}
        return size

    def discard(self, staged: Path) -> None:
        staged.unlink(missing_ok=True)

    # -- reading ---------------------------------------------------------------------------

    def schema(self, relative: str, size: int) -> pa.Schema:
        key = (relative, size)
        with self._schemas_lock:
            cached = self._schemas.get(key)
        if cached is None:
            cached = pq.read_schema(self.full_path(relative), filesystem=self.fs)
            with self._schemas_lock:
                self._schemas[key] = cached
        return cached

    def dataset(self, files: Sequence[tuple[str, int]]) -> ds.Dataset:
        """One dataset over `files` (relative path, size), with every file's columns."""
        schemas = [self.schema(relative, size) for relative, size in files]
        return ds.dataset(
            [self.full_path(relative) for relative, _ in files],
            format="parquet",
            filesystem=self.fs,
            schema=unify(schemas),
        )


def unify(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """The union of the files' columns. A column whose types cannot be promoted into one
    (an integer in one file, a string in another) is read as a string everywhere."""
    if not schemas:
        return pa.schema([])
    try:
        return pa.unify_schemas(list(schemas), promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    fields: dict[str, pa.DataType] = {}
    for schema in schemas:
        for field in schema:
            known = fields.get(field.name)
            if known is None or known == field.type or pa.types.is_null(field.type):
                fields.setdefault(field.name, field.type)
                if known is not None and pa.types.is_null(known):
                    fields[field.name] = field.type
                continue
            try:
                merged = pa.unify_schemas(
                    [pa.schema([(field.name, known)]), pa.schema([(field.name, field.type)])],
                    promote_options="permissive",
                )
                fields[field.name] = merged.field(field.name).type
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                fields[field.name] = pa.string()
    return pa.schema(list(fields.items()))
