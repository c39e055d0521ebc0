"""Delivering the outbox, at least once.

Each due delivery is posted with Standard-Webhooks headers. A 2xx within the timeout is
success. Otherwise it is tried again after the next delay of `webhook_retry_delays` (with
±20% jitter, or after the receiver's Retry-After), and after the last try it is
dead-lettered. An endpoint whose deliveries are dead-lettered `webhook_disable_after`
times in a row is disabled until someone sets `is_active` again.

The URL is checked again at delivery time (`web.client.guarded_client`: every connection
goes to an address checked when it was opened), so a DNS answer that changed since the
endpoint was created cannot point a delivery at a private address.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from datetime import UTC, timedelta

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich import __version__
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.ids import utcnow
from openenrich.jobs.notify import JobHub
from openenrich.looping import BackgroundLoop
from openenrich.web.client import guarded_client
from openenrich.web.guard import UnsafeURL
from openenrich.webhooks import signing
from openenrich.webhooks.models import WebhookDelivery, WebhookEndpoint
from openenrich.webhooks.refresh import refreshed
from openenrich.webhooks.service import OUTBOX

logger = logging.getLogger("openenrich.webhooks")
_SECONDS = re.compile(r"[0-9]+")


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    # ASCII digits only: str.isdigit() also admits "²", which float() refuses.
    if _SECONDS.fullmatch(value.strip()):
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # "-0000": UTC, the only zone HTTP dates use
    return max(0.0, (moment - utcnow()).total_seconds())


class Dispatcher:
    def __init__(self, database: Database, hub: JobHub, settings: Settings) -> None:
        self.database = database
        self.hub = hub
        self.settings = settings
        self._client = guarded_client(
            allow_private=settings.allow_private_urls,
            timeout=settings.webhook_timeout_seconds,
            max_connections=settings.webhook_concurrency,
            headers={"user-agent": f"OpenEnrich-Webhooks/{__version__}"},
        )
        self._loop = BackgroundLoop(self._dispatch, name="webhook-dispatcher")
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._client.aclose()

    async def _dispatch(self) -> None:
        while True:
            try:
                due = await self._claim()
                if due:
                    await asyncio.gather(*(self._deliver(delivery_id) for delivery_id in due))
                    continue
                await self.hub.wait(OUTBOX, await self._idle_seconds())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook dispatch failed; retrying shortly")
                await asyncio.sleep(1)

    async def _idle_seconds(self) -> float:
        async with self.database.session() as session:
            soonest = await session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at)).where(
                    WebhookDelivery.status == "pending"
                )
            )
        if soonest is None:
            return self.settings.job_poll_seconds * 5
        wait = (soonest - utcnow()).total_seconds()
        return min(max(wait, 0.01), self.settings.job_poll_seconds * 5)

    async def _claim(self) -> list[str]:
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.webhook_timeout_seconds * 3)
        async with self.database.session() as session:
            query = (
                select(WebhookDelivery)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    (WebhookDelivery.lease_expires_at.is_(None))
                    | (WebhookDelivery.lease_expires_at < now),
                    WebhookEndpoint.is_active.is_(True),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(self.settings.webhook_concurrency * 4)
            )
            if self.database.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            due = list(await session.scalars(query))
            for delivery in due:
                delivery.lease_expires_at = lease
            await session.commit()
        return [delivery.id for delivery in due]

    async def _deliver(self, delivery_id: str) -> None:
        async with self._slots:
            async with self.database.session() as session:
                delivery = await session.get(WebhookDelivery, delivery_id)
                endpoint = (
                    await session.get(WebhookEndpoint, delivery.endpoint_id) if delivery else None
                )
                if delivery is None or endpoint is None:
                    return
                payload = await refreshed(session, delivery.event_type, delivery.payload)
            body = orjson.dumps(payload)
            headers = signing.headers(endpoint.secret, delivery.event_id, int(time.time()), body)
            status: int | None = None
            error: str | None = None
            wait: float | None = None
            try:
                response = await self._client.post(endpoint.url, content=body, headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"the endpoint answered {status}"
                    wait = retry_after(response)
            except UnsafeURL as refused:
                error = f"refused: {refused}"
            except httpx.TimeoutException:
                error = f"no answer within {self.settings.webhook_timeout_seconds:g} s"
            except httpx.HTTPError as failed:
                error = f"{type(failed).__name__}: {failed}"
            async with self.database.session() as session:
                await self._record(session, delivery_id, status, error, wait)
                await session.commit()

    async def _record(
        self,
        session: AsyncSession,
        delivery_id: str,
        status: int | None,
        error: str | None,
        wait: float | None,
    ) -> None:
        delivery = await session.get(WebhookDelivery, delivery_id)
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id) if delivery else None
        if delivery is None or endpoint is None:
            return
        now = utcnow()
        delivery.attempts += 1
        delivery.last_status_code = status
        delivery.last_error = error
        delivery.lease_expires_at = None
        if error is None:
            delivery.status = "delivered"
            delivery.delivered_at = now
            endpoint.consecutive_failures = 0
            return
        delays = self.settings.webhook_retry_delays
        if delivery.attempts > len(delays):
            delivery.status = "dead"
            endpoint.consecutive_failures += 1
            logger.warning("webhook %s to %s dead-lettered: %s", delivery.id, endpoint.url, error)
            if endpoint.consecutive_failures >= self.settings.webhook_disable_after:
                endpoint.is_active = False
                endpoint.disabled_reason = (
                    f"disabled after {endpoint.consecutive_failures} dead-lettered deliveries"
                )
            return
        delay = delays[delivery.attempts - 1] * random.uniform(0.8, 1.2)
        if wait is not None:
            delay = min(wait, 86_400.0)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
