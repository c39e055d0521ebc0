"""Server settings, read from `OPENENRICH_*` environment variables and command-line flags.

Every field is documented in docs/configuration.md; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

MIB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENENRICH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("openenrich-data")
    database_url: str | None = None
    lake_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    log_format: Literal["text", "json"] = "text"

    max_body_bytes: int = Field(default=1 * MIB, ge=1)
    max_ingest_body_bytes: int = Field(default=1 * MIB, ge=1)
    max_lead_upload_bytes: int = Field(default=4 * MIB, ge=1)
    # Lead uploads: rows per request, and uploads one tenant may have in progress at once.
    lead_upload_max_rows: int = Field(default=25_000, ge=1)
    lead_upload_concurrency: int = Field(default=3, ge=1)
    body_read_timeout_seconds: float = Field(default=5.0, gt=0)
    # Below every parser's own recursion limit, and orjson's 254 when it writes answers.
    json_max_depth: int = Field(default=64, ge=8, le=200)

    rate_limit_backend: Literal["auto", "memory", "database"] = "auto"
    last_used_resolution_seconds: float = Field(default=1.0, ge=0)

    db_pool_size: int = Field(default=10, ge=1)
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"

    # Event streams: write-ahead log and flushing to Parquet.
    wal_dir: Path | None = None
    wal_group_commit_ms: float = Field(default=0.5, ge=0)
    wal_segment_bytes: int = Field(default=64 * MIB, ge=MIB)
    flush_max_events: int = Field(default=100_000, ge=1)
    flush_max_bytes: int = Field(default=64 * MIB, ge=1024)
    flush_max_seconds: float = Field(default=30.0, gt=0)
    buffer_max_bytes: int = Field(default=512 * MIB, ge=MIB)
    stream_cache_seconds: float = Field(default=1.0, ge=0)
    stats_flush_seconds: float = Field(default=1.0, gt=0)
    # Forwarding flushed events to a stream's webhook_url (through the webhook outbox).
    stream_forward_batch_events: int = Field(default=500, ge=1)
    stream_forward_batch_bytes: int = Field(default=MIB, ge=1024)
    # Stream replays (POST /streams/{id}/replay).
    replay_batch_events: int = Field(default=500, ge=1)
    replay_batch_bytes: int = Field(default=MIB, ge=1024)
    replay_max_days: int = Field(default=366, ge=1)
    # Waits before each new try of a refused batch; after the last, the replay fails.
    replay_retry_delays: list[float] = Field(default=[1, 5, 15, 60, 300])

    # The lake on S3 (when lake_url is s3://bucket/prefix).
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    # What GET /connect hands to users: read-only credentials an operator made for them.
    connect_endpoint: str | None = None
    connect_access_key_id: str | None = None
    connect_secret_access_key: str | None = None

    # Jobs and workers.
    workers_in_serve: bool = True
    worker_concurrency: int = Field(default=8, ge=1)
    # In serve, how many jobs may run a step (a transaction, a report) at once; requests
    # never wait for one (jobs/worker.py, Turns). 0: no limit.
    job_turns_in_serve: int = Field(default=1, ge=0)
    job_lease_seconds: float = Field(default=30.0, ge=1)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    job_max_attempts: int = Field(default=5, ge=1)
    job_events_retention_days: int = Field(default=30, ge=1)

    # Verification runs.
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    sse_retry_ms: int = Field(default=3000, ge=0)
    approval_timeout_seconds: float = Field(default=86_400.0, gt=0)
    approval_min_checks: int = Field(default=4, ge=1)
    # The address clients reach this server at, for the links it hands out (report_url);
    # http://host:port when unset.
    public_url: str | None = None
    verify_report_url_seconds: int = Field(default=3600, ge=10, le=7 * 86_400)
    # An OpenSanctions "targets.simple.csv" list for sanctions_screening; none: not_found.
    verify_sanctions_list: Path | None = None
    # Credits per call of a tool, overriding the built-in price list (JSON: {"tool": 1.5}).
    verify_prices: dict[str, Decimal] = Field(default_factory=dict)
    # A catalogue model ("gpt-4.1") that runs verifications as an agent calling the tools;
    # none: the rules planner.
    verify_agent_model: str | None = None
    verify_agent_credits_per_1k_tokens: Decimal = Field(default=Decimal("0.1"), ge=0)
    idempotency_ttl_hours: float = Field(default=48.0, ge=24)
    runs_create_per_minute: int = Field(default=60, ge=1)
    runs_reads_per_minute: int = Field(default=600, ge=1)
    runs_max_active: int = Field(default=10, ge=1)

    # Webhooks and every other request to a user-given URL.
    allow_private_urls: bool = False
    allowed_private_hosts: list[str] = Field(default_factory=list)
    webhook_retry_delays: list[float] = Field(
        default=[30, 120, 600, 1800, 3600, 10_800, 21_600], min_length=1
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_disable_after: int = Field(default=3, ge=1)
    webhook_concurrency: int = Field(default=8, ge=1)

    # Stream destinations (/destinations): delivery of the routed rows' outbox.
    destination_timeout_seconds: float = Field(default=30.0, gt=0)
    destination_concurrency: int = Field(default=8, ge=1)
    destination_lease_seconds: float = Field(default=120.0, ge=5)
    destination_retry_base_seconds: float = Field(default=2.0, gt=0)
    destination_retry_max_seconds: float = Field(default=600.0, gt=0)
    destination_max_attempts: int = Field(default=50, ge=1)
    destination_max_age_seconds: float = Field(default=7 * 86_400.0, gt=0)
    destination_delivered_retention_hours: float = Field(default=72.0, ge=0)

    # Encryption of stored secrets (provider keys): a Fernet key; generated into the data
    # folder on first start when unset.
    secret_key: str | None = None

    # The LLM gateway.
    llm_catalogue_path: Path | None = None
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=4, ge=0)
    llm_backoff_seconds: float = Field(default=0.5, ge=0)
    llm_backoff_max_seconds: float = Field(default=30.0, ge=0)
    llm_schema_retries: int = Field(default=2, ge=0)
    llm_max_tool_rounds: int = Field(default=8, ge=1)
    llm_provider_concurrency: int = Field(default=64, ge=1)
    llm_tenant_concurrency: int = Field(default=32, ge=1)
    llm_cache_ttl_seconds: float = Field(default=0.0, ge=0)

    # Server-wide provider keys, used when a tenant has not stored its own.
    provider_openai_api_key: str | None = None
    provider_openai_base_url: str | None = None
    provider_anthropic_api_key: str | None = None
    provider_anthropic_base_url: str | None = None
    provider_google_api_key: str | None = None
    provider_google_base_url: str | None = None
    provider_perplexity_api_key: str | None = None
    provider_perplexity_base_url: str | None = None
    provider_deepseek_api_key: str | None = None
    provider_deepseek_base_url: str | None = None
    provider_openai_compatible_api_key: str | None = None
    provider_openai_compatible_base_url: str | None = None
    provider_firecrawl_api_key: str | None = None
    provider_firecrawl_base_url: str | None = None

    # Lead enrichment jobs: leads in flight per job (the gateway's tenant and provider
    # limits apply on top), and the model that extracts FIRECRAWL_EXTRACT fields from a
    # page when the tenant has no Firecrawl key.
    leads_job_concurrency: int = Field(default=32, ge=1, le=1024)
    # The lead surface's requests per key per minute (the reference's 600 / minute / token).
    leads_requests_per_minute: int = Field(default=600, ge=1)
    leads_extract_model: str = "gpt-4o-mini"
    # How long an offset walk's mark (its first page's view of the pipeline) lasts after
    # its last use: later offset pages by the same key list the pipeline as it was then.
    leads_offset_snapshot_seconds: float = Field(default=900.0, gt=0)

    # Entity schemas: the model that refines a schema generated from samples, and that
    # edits one after an instruction, when the request names none (None: generation
    # keeps the inferred schema, and an AI edit must name its model).
    entities_default_model: str | None = None

    # Entity enrichment jobs: entities in flight per job (each runs its models in parallel,
    # within the gateway's limits), and the most entities one batch takes.
    entities_job_concurrency: int = Field(default=16, ge=1, le=1024)
    entities_batch_max: int = Field(default=1000, ge=1, le=100_000)

    # Web fetch and extraction.
    fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    fetch_max_bytes: int = Field(default=5 * MIB, ge=1024)
    fetch_max_redirects: int = Field(default=5, ge=0)
    fetch_user_agent: str = "OpenEnrich/1 (+https://github.com/openenrich/openenrich)"

    # Email verification (email/): DNS, and the SMTP probe, off unless enabled since it needs
    # outbound port 25.
    email_dns_nameservers: list[str] = Field(default_factory=list)
    email_dns_port: int = Field(default=53, ge=1, le=65535)
    email_dns_timeout_seconds: float = Field(default=5.0, gt=0)
    email_probe_enabled: bool = False
    email_probe_port: int = Field(default=25, ge=1, le=65535)
    email_probe_helo_name: str | None = None
    email_probe_mail_from: str = ""
    email_probe_timeout_seconds: float = Field(default=10.0, gt=0)
    email_probe_concurrency: int = Field(default=64, ge=1)
    email_probe_host_concurrency: int = Field(default=2, ge=1)

    # Stream enrichers (enrichers/): the operator's MaxMind-format databases for geo_ip's
    # city, region and ASN; the session gap; the rates table for currency conversion; the
    # salt of masking by hash (never emitted, so hashes cannot be recomputed outside).
    geoip_city_mmdb: Path | None = None
    geoip_asn_mmdb: Path | None = None
    session_gap_minutes: float = Field(default=30.0, gt=0)
    currency_rates_file: Path | None = None
    mask_salt: SecretStr | None = None

    # POST /query
    query_row_limit: int = Field(default=10_000, ge=1)
    query_result_max_bytes: int = Field(default=32 * MIB, ge=1024)
    query_timeout_seconds: float = Field(default=10.0, gt=0)
    query_memory_limit: ByteSize = Field(default=ByteSize(512_000_000), ge=16 * MIB)
    query_threads: int = Field(default=1, ge=1)
    query_concurrency: int = Field(default=4, ge=1)
    query_tenant_concurrency: int = Field(default=2, ge=1)

    @field_validator("email_dns_nameservers")
    @classmethod
    def _nameserver_addresses(cls, nameservers: list[str]) -> list[str]:
        for nameserver in nameservers:
            ipaddress.ip_address(nameserver)  # a ValueError names the bad one
        return nameservers

    @field_validator("email_probe_helo_name", "email_probe_mail_from")
    @classmethod
    def _one_smtp_word(cls, value: str | None) -> str | None:
        # Each goes into an SMTP command line: one word, nothing that would end or bracket it.
        if value is not None and any(c.isspace() or c in "<>" or ord(c) < 32 for c in value):
            raise ValueError("must be one word without spaces, control characters or <>")
        return value

    @property
    def database(self) -> URL:
        """The metadata database, with the async driver SQLAlchemy needs."""
        url = self._database_url()
        if url.get_backend_name() == "sqlite":
            return url.set(drivername="sqlite+aiosqlite")
        return url.set(drivername="postgresql+psycopg")

    @property
    def sync_database(self) -> URL:
        """The same database with a blocking driver, for Alembic and the CLI."""
        url = self._database_url()
        if url.get_backend_name() == "sqlite":
            return url.set(drivername="sqlite")
        return url.set(drivername="postgresql+psycopg")

    @property
    def lake(self) -> str:
        return self.lake_url or str(self.data_dir / "lake")

    @property
    def wal(self) -> Path:
        return self.wal_dir or self.data_dir / "wal"

    def provider_fallback(self, key_name: str) -> tuple[str | None, str | None]:
        """The server-wide (api_key, base_url) for a provider's key name, e.g. OPENAI."""
        name = key_name.lower()
        api_key = getattr(self, f"provider_{name}_api_key", None)
        base_url = getattr(self, f"provider_{name}_base_url", None)
        return api_key, base_url

    def _database_url(self) -> URL:
        if self.database_url is None:
            return make_url(f"sqlite:///{self.data_dir / 'openenrich.db'}")
        url = make_url(self.database_url)
        if url.drivername == "postgres":  # the scheme Heroku-style URLs use
            url = url.set(drivername="postgresql")
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://…"
            )
        return url

    @property
    def uses_sqlite(self) -> bool:
        return self._database_url().get_backend_name() == "sqlite"
