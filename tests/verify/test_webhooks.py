"""Webhooks: endpoints, Standard-Webhooks signatures, retries, dead letters, the SSRF guard."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlsplit

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from helpers.http import LocalServer, Reply
from helpers.tenants import Tenants, bearer
from openenrich.config import Settings
from verify.conftest import QUICKSTART, Runs, serve


def endpoint(runs: Runs, url: str, **body: object) -> dict[str, object]:
    created = runs.client.post("/api/v1/webhooks", headers=runs.headers, json={"url": url, **body})
    assert created.status_code == 201, created.text
    return created.json()


def deliveries(
    runs: Runs, endpoint_id: str, status: str, timeout: float = 15
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs.client.get(
            f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=runs.headers
        ).json()
        if found and all(d["status"] == status for d in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"deliveries never all {status}: {found}")


def test_endpoint_management(runs: Runs, tenants: Tenants) -> None:
    created = endpoint(runs, "http://127.0.0.1:9/hook", event_types=["run.completed", "run.failed"])
    assert created["id"].startswith("we_")
    assert str(created["secret"]).startswith("whsec_")
    assert created["is_active"] is True
    listed = runs.client.get("/api/v1/webhooks", headers=runs.headers).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]  # shown once, at creation
    fetched = runs.client.get(f"/api/v1/webhooks/{created['id']}", headers=runs.headers).json()
    assert fetched["event_types"] == ["run.completed", "run.failed"]
    patched = runs.client.patch(
        f"/api/v1/webhooks/{created['id']}",
        headers=runs.headers,
        json={"event_types": None, "description": "all"},
    ).json()
    assert (patched["event_types"], patched["description"]) == (None, "all")
    bad = runs.client.post(
        "/api/v1/webhooks",
        headers=runs.headers,
        json={"url": "http://127.0.0.1:9/", "event_types": ["run.exploded"]},
    )
    assert bad.status_code == 422
    assert "run.exploded" in bad.json()["error"]["message"]
    stranger = bearer(tenants.key("globex"))
    assert runs.client.get(f"/api/v1/webhooks/{created['id']}", headers=stranger).status_code == 404
    member = bearer(tenants.key("acme", role="member"))
    assert (
        runs.client.post(
            "/api/v1/webhooks", headers=member, json={"url": "http://127.0.0.1:9/"}
        ).status_code
        == 403
    )
    assert runs.client.delete(f"/api/v1/webhooks/{created['id']}", headers=runs.headers).json() == {
        "id": created["id"],
        "deleted": True,
    }
    assert (
        runs.client.get(f"/api/v1/webhooks/{created['id']}", headers=runs.headers).status_code
        == 404
    )


def test_a_receiver_failing_three_times_gets_the_fourth_signed_delivery(runs: Runs) -> None:
    with LocalServer(lambda n, r: Reply(status=500 if n <= 3 else 204)) as receiver:
        hook = endpoint(runs, f"{receiver.url}/webhooks/enrich")
        run = runs.create(QUICKSTART).json()
        done = runs.until(run["id"], "completed")
        received = receiver.wait_for(4)
        final = deliveries(runs, str(hook["id"]), "delivered")
    assert final[0]["attempts"] == 4
    ids = {r.headers["webhook-id"] for r in received}
    assert len(ids) == 1  # one message id across retries: receivers dedupe on it
    last = received[-1]
    verified = Webhook(str(hook["secret"])).verify(last.body, last.headers)
    assert verified["type"] == "run.completed"
    assert verified["id"] == last.headers["webhook-id"]
    assert verified["id"].startswith("evt_")
    assert set(verified) == {"id", "type", "created_at", "data"}
    # The full run resource, with a report link minted for this delivery.
    now = runs.get(run["id"])
    assert {**verified["data"], "report_url": None} == {**now, "report_url": None}
    assert {**now, "report_url": None} == {**done, "report_url": None}
    delivered = urlsplit(verified["data"]["report_url"])
    pdf = runs.client.get(f"{delivered.path}?{delivered.query}")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    assert last.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        Webhook(str(hook["secret"])).verify(last.body + b" ", last.headers)


def test_a_receiver_that_never_answers_is_dead_lettered(
    fast_settings: Settings, tenants: Tenants
) -> None:
    with (
        LocalServer(lambda n, r: Reply(delay=1.0)) as silent,
        serve(fast_settings, webhook_timeout_seconds=0.3, webhook_disable_after=1) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        runs = Runs(client, tenants.key("acme"))
        hook = endpoint(runs, silent.url)
        runs.until(runs.create(QUICKSTART).json()["id"], "completed")
        dead = deliveries(runs, str(hook["id"]), "dead")
        assert dead[0]["attempts"] == 4  # the first try and the 3 retries configured
        assert "no answer within 0.3 s" in str(dead[0]["last_error"])
        # One dead letter disables the endpoint here; setting is_active again re-enables it.
        disabled = client.get(f"/api/v1/webhooks/{hook['id']}", headers=runs.headers).json()
        assert disabled["is_active"] is False
        assert "dead-lettered" in disabled["disabled_reason"]
        enabled = client.patch(
            f"/api/v1/webhooks/{hook['id']}", headers=runs.headers, json={"is_active": True}
        ).json()
        assert (enabled["is_active"], enabled["disabled_reason"]) == (True, None)


def test_retry_after_is_honoured(runs: Runs) -> None:
    with LocalServer(
        lambda n, r: Reply(status=429, headers={"Retry-After": "1"}) if n == 1 else Reply()
    ) as receiver:
        hook = endpoint(runs, receiver.url)
        runs.create(QUICKSTART)
        first, second = receiver.wait_for(2)
        deliveries(runs, str(hook["id"]), "delivered")
    assert second.at - first.at >= 0.95  # not the 0.1 s of the schedule


@pytest.mark.parametrize(
    "value", ["\u00b2", "soon", "Wed, 21 Oct 2015 07:28:00 -0000", "Wed, 21 Oct 99999 07:28:00 GMT"]
)
def test_a_retry_after_that_is_no_number_of_seconds_falls_back_to_the_schedule(
    runs: Runs, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    # "\u00b2" (superscript two, one Latin-1 byte on the wire) is a digit to str.isdigit()
    # and not to float(); an HTTP date in "-0000" parses without a time zone; year 99999 is
    # past what datetime holds.
    with LocalServer(
        lambda n, r: Reply(status=503, headers={"Retry-After": value}) if n == 1 else Reply()
    ) as receiver:
        hook = endpoint(runs, receiver.url)
        runs.create(QUICKSTART)
        first, second = receiver.wait_for(2)
        (delivered,) = deliveries(runs, str(hook["id"]), "delivered")
    assert delivered["attempts"] == 2
    assert second.at - first.at < 2  # the 0.1 s of the schedule, not a lease running out
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []


def test_event_types_filter(runs: Runs) -> None:
    with LocalServer() as receiver:
        endpoint(runs, receiver.url, event_types=["run.cancelled"])
        everything = endpoint(runs, receiver.url + "/all")
        done = runs.create(QUICKSTART).json()
        runs.until(done["id"], "completed")
        deliveries(runs, str(everything["id"]), "delivered")
        time.sleep(0.3)
    assert [r.path for r in receiver.received] == ["/all"]
    assert json.loads(receiver.received[0].body)["type"] == "run.completed"


def test_only_public_https_urls(settings: Settings, tenants: Tenants) -> None:
    strict = settings.model_copy(update={"allow_private_urls": False})
    with serve(strict) as live, httpx.Client(base_url=live.url) as client:
        runs = Runs(client, tenants.key("acme"))
        for url, why in [
            ("http://example.com/hook", "only https URLs are allowed"),
            ("https://127.0.0.1/hook", "resolves to a non-public address"),
            ("https://localhost/hook", "resolves to a non-public address"),
            ("https://10.0.0.8/hook", "resolves to a non-public address"),
            ("https://169.254.169.254/latest/meta-data", "resolves to a non-public address"),
            ("https://100.64.0.1/hook", "resolves to a non-public address"),
            ("https://[::1]/hook", "resolves to a non-public address"),
            ("https://[::ffff:127.0.0.1]/hook", "resolves to a non-public address"),
            ("https://user:pw@example.com/", "credentials"),
            ("not a url", "only https URLs are allowed"),
        ]:
            refused = client.post("/api/v1/webhooks", headers=runs.headers, json={"url": url})
            assert refused.status_code == 422, url
            assert why in refused.json()["error"]["message"], (url, refused.json())


def test_delivery_checks_the_url_again(fast_settings: Settings, tenants: Tenants) -> None:
    """An endpoint that was acceptable when created (here: private URLs were allowed) is
    refused at delivery time by a server that does not allow them."""
    key = tenants.key("acme")
    with LocalServer() as receiver:
        with (
            serve(fast_settings, workers_in_serve=False) as live,
            httpx.Client(base_url=live.url) as client,
        ):
            hook = endpoint(Runs(client, key), receiver.url)
            client.post("/api/v1/runs", headers=bearer(key), json=QUICKSTART)
        with (
            serve(fast_settings, allow_private_urls=False) as live,
            httpx.Client(base_url=live.url, timeout=30) as client,
        ):
            runs = Runs(client, key)
            time.sleep(2)
            attempts = client.get(
                f"/api/v1/webhooks/{hook['id']}/deliveries", headers=runs.headers
            ).json()
        assert receiver.received == []
    assert attempts
    assert all("refused" in str(a["last_error"]) for a in attempts if a["attempts"])
