"""Validation jobs over HTTP, against the verifier's loopback internet (a DNS server and
mail servers that accept, refuse, accept everything and greylist: helpers/mailnet.py):
the reference's curl examples, verdicts and observations on each lead, the counters,
skipping already-validated leads, `force`, and bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures.mail import DnsServer, MailServer, Zone
from helpers.mailnet import RECORDS, answer
from helpers.tenants import Tenants
from leads.conftest import TERMINAL, Api, serve
from openenrich.config import Settings

# Address → the verdict the probe gives it, and the heuristic's.
ADDRESSES = {
    "ada@acme.example": ("VALID", "VALID"),
    "nobody@acme.example": ("INVALID", "VALID"),  # refused at RCPT; the heuristic can't know
    "anyone@catchall.example": ("RISKY", "VALID"),  # the server accepts every address
    "ada@grey.example": ("UNKNOWN", "VALID"),  # greylisted: inconclusive
    "info@acme.example": ("RISKY", "RISKY"),  # a role account
    "ada@nullmx.example": ("INVALID", "INVALID"),  # null MX: no mail domain
}


@pytest.fixture
def mailnet() -> Iterator[tuple[DnsServer, MailServer]]:
    with (
        DnsServer(Zone(RECORDS)) as dns,
        MailServer("127.0.0.1", 0, answer) as mail,
    ):
        yield dns, mail


@pytest.fixture
def validating(
    leads_settings: Settings, tenants: Tenants, mailnet: tuple[DnsServer, MailServer]
) -> Iterator[Api]:
    dns, mail = mailnet
    settings = leads_settings.model_copy(
        update={
            "email_dns_nameservers": ["127.0.0.1"],
            "email_dns_port": dns.port,
            "email_dns_timeout_seconds": 5.0,
            "email_probe_enabled": True,
            "email_probe_port": mail.port,
            "email_probe_helo_name": "probe.openenrich.example",
            "email_probe_mail_from": "verify@openenrich.example",
            "email_probe_timeout_seconds": 5.0,
            "allowed_private_hosts": [*leads_settings.allowed_private_hosts, "127.0.0.1"],
        }
    )
    with serve(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield Api(client, tenants.key("acme"))


def pipeline_with(api: Api, addresses: list[str]) -> str:
    pipeline = api.ok(api.post("/v1/pipelines", {"pipeline_name": "Validation"}), 201)
    pipeline_id = pipeline["pipeline_id"]
    upload = api.ok(
        api.post(f"/v1/pipelines/{pipeline_id}/leads", [{"email": a} for a in addresses]), 202
    )
    assert upload["created"] == len(addresses), upload
    return str(pipeline_id)


def wait(api: Api, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = api.ok(api.get(f"/v1/validation/jobs/{job_id}/progress?wait=5"))
        if progress["status"] in TERMINAL:
            return dict(progress)
    raise AssertionError(f"validation job {job_id} did not finish")


def rows(api: Api, pipeline_id: str) -> dict[str, dict[str, Any]]:
    page = api.ok(api.get(f"/v1/pipelines/{pipeline_id}/leads?limit=10000"))
    return {row["lead"]["lead_email"]: row for row in page["data"]}


def test_bounceban_on_a_whole_pipeline(validating: Api) -> None:
    api = validating
    pipeline_id = pipeline_with(api, list(ADDRESSES))
    job = api.ok(
        api.post("/v1/validation/start", {"pipeline_id": pipeline_id, "service": "BOUNCEBAN"}),
        202,
    )
    assert job["service"] == "BOUNCEBAN"
    assert job["total_leads"] == len(ADDRESSES)
    done = wait(api, job["job_id"])
    assert done["status"] == "COMPLETED"
    assert done["processed_leads"] == len(ADDRESSES)
    assert done["progress_percentage"] == 100
    # Definitive outcomes only: the greylisted address is processed, not V/I/R.
    assert (done["valid_leads"], done["invalid_leads"], done["risky_leads"]) == (1, 2, 2)
    assert done["unknown_leads"] == 1
    found = rows(api, pipeline_id)
    for address, (verdict, _) in ADDRESSES.items():
        assert found[address]["pipeline_lead_email_validation_status"] == verdict, address
    pipeline = api.ok(api.get(f"/v1/pipelines/{pipeline_id}"))
    assert pipeline["validated_leads"] == len(ADDRESSES)
    assert (
        pipeline["valid_emails"],
        pipeline["invalid_emails"],
        pipeline["risky_emails"],
        pipeline["unknown_emails"],
    ) == (1, 2, 2, 1)


def test_the_observations_are_kept_beside_the_verdict(validating: Api) -> None:
    api = validating
    pipeline_id = pipeline_with(api, ["anyone@catchall.example", "nobody@acme.example"])
    job = api.ok(
        api.post("/v1/validation/start", {"pipeline_id": pipeline_id, "service": "BOUNCEBAN"}),
        202,
    )
    wait(api, job["job_id"])
    found = rows(api, pipeline_id)
    catch_all = found["anyone@catchall.example"]["pipeline_lead_email_validation"]
    assert catch_all["catch_all"] is True
    assert catch_all["smtp"]["status"] == "accepted"
    assert catch_all["verdict"] == "RISKY"
    refused = found["nobody@acme.example"]["pipeline_lead_email_validation"]
    assert refused["smtp"]["status"] == "refused"
    assert refused["smtp"]["code"] == 550


def test_mailveri_on_the_top_n_and_hybrid_on_specific_leads(validating: Api) -> None:
    api = validating
    addresses = list(ADDRESSES)
    pipeline_id = pipeline_with(api, addresses)
    # The two most recent leads: the last two uploaded.
    job = api.ok(
        api.post(
            "/v1/validation/start",
            {"pipeline_id": pipeline_id, "limit": 2, "service": "MAILVERI"},
        ),
        202,
    )
    assert wait(api, job["job_id"])["total_leads"] == 2
    found = rows(api, pipeline_id)
    validated = {a for a, row in found.items() if row["pipeline_lead_email_validation_status"]}
    assert validated == set(addresses[-2:])
    for address in validated:
        verdict = found[address]["pipeline_lead_email_validation_status"]
        assert verdict == ADDRESSES[address][1]
    # Hybrid on one lead by id: the probe is inconclusive (greylisting), the heuristic
    # decides.
    grey = found["ada@grey.example"]["lead"]["lead_id"]
    job = api.ok(api.post("/v1/validation/start", {"lead_ids": [grey], "service": "HYBRID"}), 202)
    done = wait(api, job["job_id"])
    assert done["processed_leads"] == 1
    assert done["valid_leads"] == 1
    row = rows(api, pipeline_id)["ada@grey.example"]
    assert row["pipeline_lead_email_validation_status"] == "VALID"
    assert row["pipeline_lead_email_validation"]["decided_by"] == "heuristic"


def test_validated_leads_are_skipped_unless_forced(validating: Api) -> None:
    api = validating
    pipeline_id = pipeline_with(api, ["ada@acme.example", "nobody@acme.example"])
    first = api.ok(
        api.post("/v1/validation/start", {"pipeline_id": pipeline_id, "service": "MAILVERI"}),
        202,
    )
    assert wait(api, first["job_id"])["valid_leads"] == 2
    again = api.ok(
        api.post("/v1/validation/start", {"pipeline_id": pipeline_id, "service": "BOUNCEBAN"}),
        202,
    )
    skipped = wait(api, again["job_id"])
    assert skipped["status"] == "COMPLETED"
    assert (skipped["processed_leads"], skipped["skipped_leads"]) == (0, 2)
    assert skipped["progress_percentage"] == 100
    forced = api.ok(
        api.post(
            "/v1/validation/start",
            {"pipeline_id": pipeline_id, "service": "BOUNCEBAN", "force": True},
        ),
        202,
    )
    done = wait(api, forced["job_id"])
    assert (done["processed_leads"], done["valid_leads"], done["invalid_leads"]) == (2, 1, 1)
    assert rows(api, pipeline_id)["nobody@acme.example"][
        "pipeline_lead_email_validation_status"
    ] == ("INVALID")
    # The old verdict's count was taken back: 2 validated, not 4.
    pipeline = api.ok(api.get(f"/v1/pipelines/{pipeline_id}"))
    assert (pipeline["validated_leads"], pipeline["valid_emails"]) == (2, 1)
    assert pipeline["invalid_emails"] == 1
    # Forced again, with the same verdicts: nothing moves.
    same = api.ok(
        api.post(
            "/v1/validation/start",
            {"pipeline_id": pipeline_id, "service": "BOUNCEBAN", "force": True},
        ),
        202,
    )
    assert wait(api, same["job_id"])["status"] == "COMPLETED"
    assert api.ok(api.get(f"/v1/pipelines/{pipeline_id}")) == pipeline


def test_cancel_and_the_job_record(validating: Api) -> None:
    api = validating
    pipeline_id = pipeline_with(api, ["ada@acme.example"])
    job = api.ok(
        api.post("/v1/validation/start", {"pipeline_id": pipeline_id, "service": "MAILVERI"}),
        202,
    )
    wait(api, job["job_id"])
    record = api.ok(api.get(f"/v1/validation/jobs/{job['job_id']}"))
    assert (record["status"], record["service"], record["pipeline_id"]) == (
        "COMPLETED",
        "MAILVERI",
        pipeline_id,
    )
    # A finished job is left as it is.
    ended = api.ok(api.post(f"/v1/validation/jobs/{job['job_id']}/cancel"))
    assert ended["status"] == "COMPLETED"
    missing = api.post("/v1/validation/jobs/00000000-0000-7000-8000-000000000000/cancel")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Validation job not found"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pipeline_id": "PIPELINE", "service": "bounceban"}, "invalid service"),
        ({"pipeline_id": "PIPELINE", "service": "ZEROBOUNCE"}, "invalid service"),
        ({"pipeline_id": "PIPELINE"}, "invalid service"),
        ({"service": "MAILVERI"}, "pipeline_id or lead_ids is required"),
    ],
)
def test_bad_requests(validating: Api, body: dict[str, Any], message: str) -> None:
    api = validating
    pipeline_id = pipeline_with(api, ["ada@acme.example"])
    if body.get("pipeline_id") == "PIPELINE":
        body = {**body, "pipeline_id": pipeline_id}
    response = api.post("/v1/validation/start", body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_a_pipeline_of_another_tenant_is_not_found(validating: Api, tenants: Tenants) -> None:
    api = validating
    pipeline_id = pipeline_with(api, ["ada@acme.example"])
    other = Api(api.client, tenants.key("globex"))
    response = other.post(
        "/v1/validation/start", {"pipeline_id": pipeline_id, "service": "MAILVERI"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Pipeline not found"}
