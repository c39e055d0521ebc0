"""The asyncio client: `sync.py`'s, method for method, awaited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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


class AsyncClient:
    """`AsyncClient(url, api_key)`, as `Client`:

        async with AsyncClient() as client:
            run = await client.runs.create("Verify PAN ABCDE1234F")
            async for event in client.runs.events(run["id"]):
                print(event.type, event.data)

    `transport` is httpx's: tests pass one to reach an app without a socket."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base_url, headers = connection(url, api_key)
        self.retries = retries or Retries()
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.streams = AsyncStreams(self)
        self.runs = AsyncRuns(self)
        self.leads = AsyncLeads(self)
        self.entities = AsyncEntities(self)
        self.webhooks = AsyncWebhooks(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One call, retried as `retries` allows; an error answer raises its `APIError`."""
        request = self._http.build_request(method, path, **options)
        attempt = 1
        while True:
            try:
                return await self.send(request)
            except OpenEnrichError as error:
                wait = self.retries.wait(attempt, error, repeatable(request))
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            attempt += 1

    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """`request` once, without retrying."""
        try:
            response = await self._http.send(request, stream=stream)
        except httpx.TransportError as error:
            raise ConnectionFailed(f"{request.url}: {error or type(error).__name__}") from error
        if response.status_code >= 400:
            if stream:
                await response.aread()
                await response.aclose()
            raise error_from(response)
        return response

    def build_request(self, method: str, path: str, **options: Any) -> httpx.Request:
        return self._http.build_request(method, path, **options)

    async def json(self, method: str, path: str, **options: Any) -> Any:
        return (await self.request(method, path, **options)).json()

    async def follow(
        self, path: str, *, ended: Callable[[], Awaitable[bool]], after: str | None = None
    ) -> AsyncIterator[Event]:
        """The server-sent events at `path` as they come. A dropped connection is opened
        again from the last event seen (`Last-Event-ID`), so none is missed or repeated,
        until the server closes the stream and `await ended()` says nothing more will come."""
        last = after
        failures = 0
        while True:
            headers = {"accept": "text/event-stream"}
            if last is not None:
                headers["last-event-id"] = last
            request = self.build_request("GET", path, headers=headers, timeout=None)
            try:
                response = await self.send(request, stream=True)
                try:
                    parser = EventParser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            last = event.id or last
                            failures = 0
                            yield event
                finally:
                    await response.aclose()
            except (httpx.TransportError, ConnectionFailed) as error:
                failures += 1
                if failures > self.retries.attempts:
                    raise ConnectionFailed(f"the event stream {path} broke: {error}") from error
                await asyncio.sleep(min(0.5 * 2 ** (failures - 1), 10))
                continue
            # The server ends a stream when its job has ended; anything else (a server
            # going away cleanly) is resumed.
            if await ended():
                return


class AsyncStreams:
    """Event streams: `/streams`, `/ingest`, `/query`, dead letters."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = (await self._client.json("GET", "/streams"))["streams"]
        return answer

    async def create(self, stream_id: str, **settings: Any) -> dict[str, Any]:
        """A stream named `stream_id`; `settings` as the reference's body (schema_mode, …)."""
        answer: dict[str, Any] = await self._client.json(
            "POST", "/streams", json={"stream_id": stream_id, **settings}
        )
        return answer

    async def ingest(
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
            answer = await self.send_batch(batch, idempotency_key=key)
            result.add(batch, answer)
            if on_batch is not None:
                on_batch(batch, answer)
        return result

    async def send_batch(
        self, batch: Batch, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        answer: dict[str, Any] = await self._client.json(
            "POST", "/ingest", content=batch.body, headers=headers
        )
        return answer

    async def flush(self, stream_id: str) -> dict[str, Any]:
        """Write the stream's buffered events to Parquet now (a query reads what is written)."""
        answer: dict[str, Any] = await self._client.json("POST", f"/streams/{stream_id}/flush")
        return answer

    async def query(self, sql: str, *, format: QueryFormat = "json") -> Any:
        """Read-only SQL over the tenant's streams: JSON (`{"columns", "rows", …}`) or the
        text of a CSV."""
        response = await self._client.request(
            "POST", "/query", json={"sql": sql}, headers={"accept": accept_header(format)}
        )
        return query_answer(response, format)

    async def dead_letters(
        self, stream_id: str, *, days: int = 7, limit: int = 100
    ) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json(
            "GET", f"/streams/{stream_id}/dlq", params={"days": days, "limit": limit}
        )
        return answer


class AsyncRuns:
    """Verification runs: `/api/v1/runs`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
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
        answer: dict[str, Any] = await self._client.json(
            "POST", "/api/v1/runs", json=body, headers={"idempotency-key": key}
        )
        return answer

    async def get(self, run_id: str, *, wait: int | None = None) -> dict[str, Any]:
        """The run; with `wait` (seconds, up to 60), once it changes or the wait is over."""
        params = {"wait": wait} if wait is not None else None
        timeout = (wait or 0) + 30
        answer: dict[str, Any] = await self._client.json(
            "GET", f"/api/v1/runs/{run_id}", params=params, timeout=timeout
        )
        return answer

    async def wait(self, run_id: str) -> dict[str, Any]:
        """The run once it is completed, failed, cancelled or interrupted, by long-polling
        (bound it with `asyncio.timeout`)."""
        while True:
            run = await self.get(run_id, wait=50)
            if run["status"] in TERMINAL_RUN_STATUSES:
                return run

    async def events(self, run_id: str, *, after: str | None = None) -> AsyncIterator[Event]:
        """The run's events as they happen, until it ends. A dropped connection is opened
        again from the last event seen (`Last-Event-ID`), so no event is missed or
        repeated; `after` starts after an event id seen earlier."""

        async def ended() -> bool:
            return (await self.get(run_id))["status"] in TERMINAL_RUN_STATUSES

        async for event in self._client.follow(
            f"/api/v1/runs/{run_id}/events", after=after, ended=ended
        ):
            yield event

    async def approve(self, run_id: str, *, approved: bool = True) -> dict[str, Any]:
        decision = "approved" if approved else "declined"
        answer: dict[str, Any] = await self._client.json(
            "POST", f"/api/v1/runs/{run_id}/approval", json={"decision": decision}
        )
        return answer

    async def cancel(self, run_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json("POST", f"/api/v1/runs/{run_id}/cancel")
        return answer

    async def report_pdf(self, run: dict[str, Any]) -> bytes:
        """The PDF behind a completed run's `report_url` (a signed link, fetched as is)."""
        url = run.get("report_url")
        if not url:
            raise OpenEnrichError(f"run {run.get('id')} has no report yet")
        # The link's path and signature, from the server this client talks to (the
        # link's host is the server's public address, which may not be reachable here).
        signed = httpx.URL(url)
        path = signed.raw_path.decode()
        return (await self._client.request("GET", path)).content


class AsyncLeads:
    """Lead pipelines, as `Leads`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_pipeline(self, name: str, **fields: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json(
            "POST", "/v1/pipelines", json={"pipeline_name": name, **fields}
        )
        return answer

    async def pipelines(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = (await self._client.json("GET", "/v1/pipelines"))["data"]
        return answer

    async def upload(
        self,
        pipeline_id: str,
        leads: Iterable[dict[str, Any]],
        *,
        max_rows: int = 5_000,
        concurrency: int = 3,
        on_chunk: Callable[[dict[str, Any]], None] | None = None,
    ) -> UploadResult:
        """As `Leads.upload`: chunks under the caps, `concurrency` (at most 3) at a time."""
        result = UploadResult()
        path = f"/v1/pipelines/{pipeline_id}/leads"
        headers = {"content-type": "application/json"}
        slots = asyncio.Semaphore(max(1, min(concurrency, 3)))

        async def send(body: bytes) -> None:
            try:
                answer = await self._client.json("POST", path, content=body, headers=headers)
            finally:
                slots.release()
            result.add(answer)
            if on_chunk is not None:
                on_chunk(answer)

        async with asyncio.TaskGroup() as group:
            for body in lead_chunks(leads, max_rows=max_rows):
                await slots.acquire()  # the next chunk is read when it can go
                group.create_task(send(body))
        return result

    async def start_enrichment(
        self,
        enrichment_type: Literal["AI_COLUMN", "MULTI_AI_COLUMN", "FIRECRAWL_EXTRACT"],
        *,
        pipeline_id: str | None = None,
        lead_ids: list[str] | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """As `Client.leads.start_enrichment`."""
        body = lead_job_body(pipeline_id, lead_ids, enrichment_type=enrichment_type, **options)
        return await self._start("/v1/enrichment/start", body, idempotency_key)

    async def start_validation(
        self,
        service: Literal["BOUNCEBAN", "MAILVERI", "HYBRID"],
        *,
        pipeline_id: str | None = None,
        lead_ids: list[str] | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        body = lead_job_body(pipeline_id, lead_ids, service=service, **options)
        return await self._start("/v1/validation/start", body, idempotency_key)

    async def _start(self, path: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
        headers = {"idempotency-key": key or str(uuid.uuid4())}
        answer: dict[str, Any] = await self._client.json("POST", path, json=body, headers=headers)
        return answer

    async def progress(
        self, kind: LeadJobKind, job_id: str, *, wait: int | None = None
    ) -> dict[str, Any]:
        params = {"wait": wait} if wait is not None else None
        answer: dict[str, Any] = await self._client.json(
            "GET", f"/v1/{kind}/jobs/{job_id}/progress", params=params, timeout=(wait or 0) + 30
        )
        return answer

    async def wait_job(
        self,
        kind: LeadJobKind,
        job_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        while True:
            progress = await self.progress(kind, job_id, wait=20)
            if on_progress is not None:
                on_progress(progress)
            if progress["status"] in ENDED_LEAD_JOB_STATUSES:
                return progress

    async def export(
        self, pipeline_id: str, *, page_size: int = 1_000
    ) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = await self._client.json(
                "GET", f"/v1/pipelines/{pipeline_id}/leads", params=params
            )
            for row in page["data"]:
                yield row
            cursor = page["pagination"].get("next_cursor")
            if not page["pagination"].get("has_more") or not cursor:
                return
            params = {"limit": page_size, "after": cursor}


class AsyncEntities:
    """Entity enrichment, as `Client.entities`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def enrich(
        self, entity: dict[str, Any], *, schema_id: str, models: Iterable[str], **options: Any
    ) -> str:
        body = {"entity_data": entity, "schema_id": schema_id, "models": list(models), **options}
        answer = await self._client.json("POST", "/api/single/enrich/stream", json=body)
        job_id: str = answer["job_id"]
        return job_id

    async def enrich_batch(
        self,
        entities: Iterable[dict[str, Any]],
        *,
        schema_id: str,
        models: Iterable[str],
        **options: Any,
    ) -> dict[str, Any]:
        body = {"entities": list(entities), "schema_id": schema_id, "models": list(models)}
        answer: dict[str, Any] = await self._client.json(
            "POST", "/api/enrichment/batch/start", json={**body, **options}
        )
        return answer

    async def job(self, job_id: str, *, wait: int | None = None) -> dict[str, Any]:
        params = {"wait": wait} if wait is not None else None
        answer: dict[str, Any] = await self._client.json(
            "GET", f"/api/llm/jobs/{job_id}", params=params, timeout=(wait or 0) + 30
        )
        return answer

    async def wait(self, job_id: str) -> dict[str, Any]:
        while True:
            job = await self.job(job_id, wait=20)
            if job["status"] in ENDED_ENTITY_JOB_STATUSES:
                return job

    async def events(self, job_id: str, *, after: str | None = None) -> AsyncIterator[Event]:
        async def ended() -> bool:
            return (await self.job(job_id))["status"] in ENDED_ENTITY_JOB_STATUSES

        async for event in self._client.follow(
            f"/api/llm/stream/{job_id}", after=after, ended=ended
        ):
            yield event

    async def cancel(self, job_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json("POST", f"/api/llm/cancel/{job_id}")
        return answer

    async def records(self, **filters: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json("GET", "/api/records", params=filters)
        return answer

    async def record(self, record_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json("GET", f"/api/records/{record_id}")
        return answer

    async def fuse(
        self, record_ids: Iterable[str], *, arbitration_model: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"record_ids": list(record_ids)}
        if arbitration_model is not None:
            body["arbitration_model"] = arbitration_model
        answer: dict[str, Any] = await self._client.json("POST", "/api/fusion/merge", json=body)
        return answer


class AsyncWebhooks:
    """Webhook endpoints, as `Client.webhooks`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        url: str,
        *,
        event_types: Iterable[str] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url}
        if event_types is not None:
            body["event_types"] = list(event_types)
        if description is not None:
            body["description"] = description
        answer: dict[str, Any] = await self._client.json("POST", "/api/v1/webhooks", json=body)
        return answer

    async def update(self, endpoint_id: str, **changes: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json(
            "PATCH", f"/api/v1/webhooks/{endpoint_id}", json=changes
        )
        return answer

    async def delete(self, endpoint_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.json(
            "DELETE", f"/api/v1/webhooks/{endpoint_id}"
        )
        return answer

    async def deliveries(self, endpoint_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = await self._client.json(
            "GET", f"/api/v1/webhooks/{endpoint_id}/deliveries", params={"limit": limit}
        )
        return answer

    async def list(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = await self._client.json("GET", "/api/v1/webhooks")
        return answer
