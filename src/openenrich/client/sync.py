"""The blocking client. `aio.py` is the same client for asyncio, method for method."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal

import httpx

from openenrich.client.core import (
    ENDED_ENTITY_JOB_STATUSES,
    ENDED_LEAD_JOB_STATUSES,
    TERMINAL_RUN_STATUSES,
    Batch,
    Event,
    EventParser,
    IngestResult,
    LeadJobKind,
    QueryFormat,
    Retries,
    UploadResult,
    accept_header,
    batches,
    connection,
    lead_chunks,
    lead_job_body,
    query_answer,
    repeatable,
)
from openenrich.client.errors import ConnectionFailed, OpenEnrichError, error_from


class Client:
    """`Client(url, api_key)`; both default to `OPENENRICH_URL` (else
    http://127.0.0.1:8080) and `OPENENRICH_API_KEY` from the environment.

        with Client() as client:
            client.streams.ingest("web", [{"event": "signup", "user_id": 42}])
            run = client.runs.create("Verify PAN ABCDE1234F", workflow="kyc-verification")
            run = client.runs.wait(run["id"])

    `transport` is httpx's: tests pass one to reach an app without a socket."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: Retries | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base_url, headers = connection(url, api_key)
        self.retries = retries or Retries()
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.streams = Streams(self)
        self.runs = Runs(self)
        self.leads = Leads(self)
        self.entities = Entities(self)
        self.webhooks = Webhooks(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One call, retried as `retries` allows; an error answer raises its `APIError`."""
        request = self._http.build_request(method, path, **options)
        attempt = 1
        while True:
            try:
                return self.send(request)
            except OpenEnrichError as error:
                wait = self.retries.wait(attempt, error, repeatable(request))
                if wait is None:
                    raise
            time.sleep(wait)
            attempt += 1

    def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """`request` once, without retrying."""
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as error:
            raise ConnectionFailed(f"{request.url}: {error or type(error).__name__}") from error
        if response.status_code >= 400:
            if stream:
                response.read()
                response.close()
            raise error_from(response)
        return response

    def build_request(self, method: str, path: str, **options: Any) -> httpx.Request:
        return self._http.build_request(method, path, **options)

    def json(self, method: str, path: str, **options: Any) -> Any:
        return self.request(method, path, **options).json()

    def follow(
        self, path: str, *, ended: Callable[[], bool], after: str | None = None
    ) -> Iterator[Event]:
        """The server-sent events at `path` as they come. A dropped connection is opened
        again from the last event seen (`Last-Event-ID`), so none is missed or repeated,
        until the server closes the stream and `ended()` says nothing more will come."""
        last = after
        failures = 0
        while True:
            headers = {"accept": "text/event-stream"}
            if last is not None:
                headers["last-event-id"] = last
            request = self.build_request("GET", path, headers=headers, timeout=None)
            try:
                response = self.send(request, stream=True)
                try:
                    parser = EventParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            last = event.id or last
                            failures = 0
                            yield event
                finally:
                    response.close()
            except (httpx.TransportError, ConnectionFailed) as error:
                failures += 1
                if failures > self.retries.attempts:
                    raise ConnectionFailed(f"the event stream {path} broke: {error}") from error
                time.sleep(min(0.5 * 2 ** (failures - 1), 10))
                continue
            # The server ends a stream when its job has ended; anything else (a server
            # going away cleanly) is resumed.
            if ended():
                return


class Streams:
    """Event streams: `/streams`, `/ingest`, `/query`, dead letters."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._client.json("GET", "/streams")["streams"]
        return answer

    def create(self, stream_id: str, **settings: Any) -> dict[str, Any]:
        """A stream named `stream_id`; `settings` as the reference's body (schema_mode, …)."""
        answer: dict[str, Any] = self._client.json(
            "POST", "/streams", json={"stream_id": stream_id, **settings}
        )
        return answer

    def ingest(
        self,
        stream_id: str,
        events: Iterable[Any],
        *,
        max_bytes: int = 1_000_000,
        on_batch: Callable[[Batch, dict[str, Any]], None] | None = None,
        idempotency_prefix: str | None = None,
    ) -> IngestResult:
        """Send `events` (dicts, or JSON already encoded as bytes) in batches under the
        server's 1 MiB cap; `on_batch` hears of each batch with the server's answer.

        With `idempotency_prefix`, each batch goes with the Idempotency-Key
        `{prefix}-{index of its first event}`: sending the same events again (after an
        interruption) stores nothing twice, and a batch whose answer was lost is retried."""
        result = IngestResult()
        for batch in batches(stream_id, events, max_bytes=max_bytes):
            key = f"{idempotency_prefix}-{batch.first}" if idempotency_prefix else None
            answer = self.send_batch(batch, idempotency_key=key)
            result.add(batch, answer)
            if on_batch is not None:
                on_batch(batch, answer)
        return result

    def send_batch(self, batch: Batch, *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        answer: dict[str, Any] = self._client.json(
            "POST", "/ingest", content=batch.body, headers=headers
        )
        return answer

    def flush(self, stream_id: str) -> dict[str, Any]:
        """Write the stream's buffered events to Parquet now (a query reads what is written)."""
        answer: dict[str, Any] = self._client.json("POST", f"/streams/{stream_id}/flush")
        return answer

    def query(self, sql: str, *, format: QueryFormat = "json") -> Any:
        """Read-only SQL over the tenant's streams: JSON (`{"columns", "rows", …}`) or the
        text of a CSV."""
        response = self._client.request(
            "POST", "/query", json={"sql": sql}, headers={"accept": accept_header(format)}
        )
        return query_answer(response, format)

    def dead_letters(self, stream_id: str, *, days: int = 7, limit: int = 100) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.json(
            "GET", f"/streams/{stream_id}/dlq", params={"days": days, "limit": limit}
        )
        return answer


class Runs:
    """Verification runs: `/api/v1/runs`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        message: str,
        *,
        workflow: str | None = None,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """A new run. It is created with an Idempotency-Key (a new one unless given), so a
        retry after a lost answer finds the same run rather than making a second."""
        body: dict[str, Any] = {"message": message}
        for name, value in (("workflow", workflow), ("thread_id", thread_id)):
            if value is not None:
                body[name] = value
        if metadata is not None:
            body["metadata"] = metadata
        key = idempotency_key or str(uuid.uuid4())
        answer: dict[str, Any] = self._client.json(
            "POST", "/api/v1/runs", json=body, headers={"idempotency-key": key}
        )
        return answer

    def get(self, run_id: str, *, wait: int | None = None) -> dict[str, Any]:
        """The run; with `wait` (seconds, up to 60), once it changes or the wait is over."""
        params = {"wait": wait} if wait is not None else None
        timeout = (wait or 0) + 30
        answer: dict[str, Any] = self._client.json(
            "GET", f"/api/v1/runs/{run_id}", params=params, timeout=timeout
        )
        return answer

    def wait(self, run_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """The run once it is completed, failed, cancelled or interrupted, by long-polling.
        Raises TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 50 if deadline is None else min(50, int(deadline - time.monotonic()))
            run = self.get(run_id, wait=max(left, 0))
            if run["status"] in TERMINAL_RUN_STATUSES:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run['status']}")

    def events(self, run_id: str, *, after: str | None = None) -> Iterator[Event]:
        """The run's events as they happen, until it ends. A dropped connection is opened
        again from the last event seen (`Last-Event-ID`), so no event is missed or
        repeated; `after` starts after an event id seen earlier."""
        yield from self._client.follow(
            f"/api/v1/runs/{run_id}/events",
            after=after,
            ended=lambda: self.get(run_id)["status"] in TERMINAL_RUN_STATUSES,
        )

    def approve(self, run_id: str, *, approved: bool = True) -> dict[str, Any]:
        decision = "approved" if approved else "declined"
        answer: dict[str, Any] = self._client.json(
            "POST", f"/api/v1/runs/{run_id}/approval", json={"decision": decision}
        )
        return answer

    def cancel(self, run_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.json("POST", f"/api/v1/runs/{run_id}/cancel")
        return answer

    def report_pdf(self, run: dict[str, Any]) -> bytes:
        """The PDF behind a completed run's `report_url` (a signed link, fetched as is)."""
        url = run.get("report_url")
        if not url:
            raise OpenEnrichError(f"run {run.get('id')} has no report yet")
        # The link's path and signature, from the server this client talks to (the
        # link's host is the server's public address, which may not be reachable here).
        signed = httpx.URL(url)
        path = signed.raw_path.decode()
        return self._client.request("GET", path).content


class Leads:
    """Lead pipelines: `/v1/pipelines`, uploads and exports."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create_pipeline(self, name: str, **fields: Any) -> dict[str, Any]:
        """A pipeline; `fields` as the reference's body (pipeline_description, …)."""
        answer: dict[str, Any] = self._client.json(
            "POST", "/v1/pipelines", json={"pipeline_name": name, **fields}
        )
        return answer

    def pipelines(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._client.json("GET", "/v1/pipelines")["data"]
        return answer

    def upload(
        self,
        pipeline_id: str,
        leads: Iterable[dict[str, Any]],
        *,
        max_rows: int = 5_000,
        concurrency: int = 3,
        on_chunk: Callable[[dict[str, Any]], None] | None = None,
    ) -> UploadResult:
        """Upload `leads` in chunks under the server's caps, `concurrency` at a time (the
        reference allows 3 uploads in progress per account; a 429 is waited out).
        Leads are deduplicated by email: sending them again skips them."""
        result = UploadResult()
        path = f"/v1/pipelines/{pipeline_id}/leads"
        headers = {"content-type": "application/json"}

        def send(body: bytes) -> dict[str, Any]:
            answer: dict[str, Any] = self._client.json("POST", path, content=body, headers=headers)
            return answer

        with ThreadPoolExecutor(max(1, min(concurrency, 3))) as pool:
            pending: list[Future[dict[str, Any]]] = []
            for body in lead_chunks(leads, max_rows=max_rows):
                pending.append(pool.submit(send, body))
                if len(pending) >= concurrency:
                    self._done(pending.pop(0), result, on_chunk)
            for future in pending:
                self._done(future, result, on_chunk)
        return result

    @staticmethod
    def _done(
        future: Future[dict[str, Any]],
        result: UploadResult,
        on_chunk: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        answer = future.result()
        result.add(answer)
        if on_chunk is not None:
            on_chunk(answer)

    def start_enrichment(
        self,
        enrichment_type: Literal["AI_COLUMN", "MULTI_AI_COLUMN", "FIRECRAWL_EXTRACT"],
        *,
        pipeline_id: str | None = None,
        lead_ids: list[str] | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """An enrichment job over a pipeline (or `lead_ids`); `options` as the reference's
        body (`ai_template_id`, `multi_ai_template_id`, `firecrawl_extract_config`,
        `limit`). Sent with an Idempotency-Key (a new one unless given), so a retry after a
        lost answer finds the same job."""
        body = lead_job_body(pipeline_id, lead_ids, enrichment_type=enrichment_type, **options)
        return self._start("/v1/enrichment/start", body, idempotency_key)

    def start_validation(
        self,
        service: Literal["BOUNCEBAN", "MAILVERI", "HYBRID"],
        *,
        pipeline_id: str | None = None,
        lead_ids: list[str] | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """An email validation job; `options`: `force`, `limit`."""
        body = lead_job_body(pipeline_id, lead_ids, service=service, **options)
        return self._start("/v1/validation/start", body, idempotency_key)

    def _start(self, path: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
        headers = {"idempotency-key": key or str(uuid.uuid4())}
        answer: dict[str, Any] = self._client.json("POST", path, json=body, headers=headers)
        return answer

    def progress(
        self, kind: LeadJobKind, job_id: str, *, wait: int | None = None
    ) -> dict[str, Any]:
        """A lead job's progress; with `wait` (seconds, up to 50), once its status changes."""
        params = {"wait": wait} if wait is not None else None
        answer: dict[str, Any] = self._client.json(
            "GET", f"/v1/{kind}/jobs/{job_id}/progress", params=params, timeout=(wait or 0) + 30
        )
        return answer

    def wait_job(
        self,
        kind: LeadJobKind,
        job_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """The job's progress once it is COMPLETED, FAILED or CANCELLED, by long-polling;
        `on_progress` hears of each change on the way."""
        while True:
            progress = self.progress(kind, job_id, wait=20)
            if on_progress is not None:
                on_progress(progress)
            if progress["status"] in ENDED_LEAD_JOB_STATUSES:
                return progress

    def export(self, pipeline_id: str, *, page_size: int = 1_000) -> Iterator[dict[str, Any]]:
        """Every lead of the pipeline, a page at a time by cursor (stable while others
        upload)."""
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = self._client.json("GET", f"/v1/pipelines/{pipeline_id}/leads", params=params)
            yield from page["data"]
            cursor = page["pagination"].get("next_cursor")
            if not page["pagination"].get("has_more") or not cursor:
                return
            params = {"limit": page_size, "after": cursor}

    def export_file(self, pipeline_id: str, format: Literal["csv", "ndjson"]) -> Iterator[bytes]:
        """The server's whole-pipeline export (`?format=csv|ndjson`), as it streams."""
        request = self._client.build_request(
            "GET", f"/v1/pipelines/{pipeline_id}/leads", params={"format": format}, timeout=None
        )
        response = self._client.send(request, stream=True)
        try:
            yield from response.iter_bytes()
        finally:
            response.close()


class Entities:
    """Entity enrichment: start jobs, follow them, read and fuse records (`/api/…`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def enrich(
        self, entity: dict[str, Any], *, schema_id: str, models: Iterable[str], **options: Any
    ) -> str:
        """Start enriching one entity; returns the job id. `options` as the reference's
        body: `strategy`, `arbitration_model`, `language`, `instructions`,
        `skip_classification`."""
        body = {"entity_data": entity, "schema_id": schema_id, "models": list(models), **options}
        job_id: str = self._client.json("POST", "/api/single/enrich/stream", json=body)["job_id"]
        return job_id

    def enrich_batch(
        self,
        entities: Iterable[dict[str, Any]],
        *,
        schema_id: str,
        models: Iterable[str],
        **options: Any,
    ) -> dict[str, Any]:
        """Start a batch (at most the server's OPENENRICH_ENTITIES_BATCH_MAX entities):
        `{"job_id", "count"}`."""
        body = {"entities": list(entities), "schema_id": schema_id, "models": list(models)}
        answer: dict[str, Any] = self._client.json(
            "POST", "/api/enrichment/batch/start", json={**body, **options}
        )
        return answer

    def job(self, job_id: str, *, wait: int | None = None) -> dict[str, Any]:
        params = {"wait": wait} if wait is not None else None
        answer: dict[str, Any] = self._client.json(
            "GET", f"/api/llm/jobs/{job_id}", params=params, timeout=(wait or 0) + 30
        )
        return answer

    def wait(self, job_id: str) -> dict[str, Any]:
        """The job once it is completed, failed or cancelled, by long-polling."""
        while True:
            job = self.job(job_id, wait=20)
            if job["status"] in ENDED_ENTITY_JOB_STATUSES:
                return job

    def events(self, job_id: str, *, after: str | None = None) -> Iterator[Event]:
        """The job's events (`event.data["type"]`: entity_started, model_completed, …,
        completed last), resumed after a dropped connection."""
        yield from self._client.follow(
            f"/api/llm/stream/{job_id}",
            after=after,
            ended=lambda: self.job(job_id)["status"] in ENDED_ENTITY_JOB_STATUSES,
        )

    def cancel(self, job_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.json("POST", f"/api/llm/cancel/{job_id}")
        return answer

    def records(self, **filters: Any) -> dict[str, Any]:
        """A page of records, newest first: `page`, `page_size`, `type`, `schema_id`,
        `model`, `date_from`, `date_to`, `q`."""
        answer: dict[str, Any] = self._client.json("GET", "/api/records", params=filters)
        return answer

    def record(self, record_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.json("GET", f"/api/records/{record_id}")
        return answer

    def fuse(
        self, record_ids: Iterable[str], *, arbitration_model: str | None = None
    ) -> dict[str, Any]:
        """One entity's records by different models, fused field by field."""
        body: dict[str, Any] = {"record_ids": list(record_ids)}
        if arbitration_model is not None:
            body["arbitration_model"] = arbitration_model
        answer: dict[str, Any] = self._client.json("POST", "/api/fusion/merge", json=body)
        return answer


class Webhooks:
    """Signed webhook endpoints of verification runs (`/api/v1/webhooks`, admin keys).
    A receiver checks what it gets with `openenrich.client.verify_signature`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        url: str,
        *,
        event_types: Iterable[str] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """An endpoint; its `secret` (whsec_…) is in this answer only."""
        body: dict[str, Any] = {"url": url}
        if event_types is not None:
            body["event_types"] = list(event_types)
        if description is not None:
            body["description"] = description
        answer: dict[str, Any] = self._client.json("POST", "/api/v1/webhooks", json=body)
        return answer

    def update(self, endpoint_id: str, **changes: Any) -> dict[str, Any]:
        """`url`, `event_types`, `description`, `is_active` (True re-enables it)."""
        answer: dict[str, Any] = self._client.json(
            "PATCH", f"/api/v1/webhooks/{endpoint_id}", json=changes
        )
        return answer

    def delete(self, endpoint_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.json("DELETE", f"/api/v1/webhooks/{endpoint_id}")
        return answer

    def deliveries(self, endpoint_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._client.json(
            "GET", f"/api/v1/webhooks/{endpoint_id}/deliveries", params={"limit": limit}
        )
        return answer

    def list(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._client.json("GET", "/api/v1/webhooks")
        return answer
