"""Lead pipelines: a BOUNCEBAN validation job (the SMTP probe) over 10,000 leads.

    .venv/bin/python bench/lead_validation.py [--leads 10000] [--domains 50] [--repeat 3]
                                              [--database-url postgresql://…]

A real `openenrich serve` (workers inside) with its email engine pointed at the same
loopback internet as bench/email_validation.py (a DNS server for `--domains` domains, one
SMTP server in a process of its own; one address in ten refused, one in twenty a role
account, one domain in ten catch-all). The leads are uploaded through the API; each
repetition starts a BOUNCEBAN job over the whole pipeline with `"force": true` and follows
it with a long-poll until COMPLETED. The figure is leads per second from the POST to the
long-poll that saw COMPLETED: everything a user waits for (choosing the leads, probing,
storing each verdict with the counters, the events). Target: >= 1,000 addresses/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from email_validation import addresses, domains
from harness import BenchServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.mail import DnsServer, Zone  # noqa: E402

UPLOAD_BATCH = 4000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--window", type=int, default=None, help="leads in flight per job")
    args = parser.parse_args()

    names = domains(args.domains)
    zone = Zone(
        line
        for name in names
        for line in (f"{name}. 60 IN MX 10 mx.{name}.", f"mx.{name}. 60 IN A 127.0.0.1")
    )
    smtp = subprocess.Popen(
        [sys.executable, str(ROOT / "bench/email_validation.py"), "--serve-smtp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert smtp.stdout is not None
        port = int(smtp.stdout.readline())
        with DnsServer(zone) as dns:
            env = {
                "OPENENRICH_EMAIL_DNS_NAMESERVERS": json.dumps(["127.0.0.1"]),
                "OPENENRICH_EMAIL_DNS_PORT": str(dns.port),
                "OPENENRICH_EMAIL_PROBE_ENABLED": "true",
                "OPENENRICH_EMAIL_PROBE_PORT": str(port),
                "OPENENRICH_EMAIL_PROBE_HELO_NAME": "bench.openenrich.example",
                "OPENENRICH_EMAIL_PROBE_MAIL_FROM": "verify@openenrich.example",
                "OPENENRICH_ALLOWED_PRIVATE_HOSTS": json.dumps(["127.0.0.1"]),
                **({"OPENENRICH_LEADS_JOB_CONCURRENCY": str(args.window)} if args.window else {}),
            }
            with BenchServer(database_url=args.database_url, env=env) as server:
                rates = run(server, addresses(args.leads, names), args.repeat)
    finally:
        assert smtp.stdin is not None
        smtp.stdin.close()
        smtp.wait(timeout=10)
    print(
        f"BOUNCEBAN over {args.leads} leads at {args.domains} domains: median "
        f"{statistics.median(rates):,.0f} leads/s (target >= 1,000)"
    )


def run(server: BenchServer, emails: list[str], repeat: int) -> list[float]:
    key = server.make_key(org="bench")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        pipeline = client.post("/v1/pipelines", json={"pipeline_name": "Validation bench"})
        pipeline_id = pipeline.json()["pipeline_id"]
        for start in range(0, len(emails), UPLOAD_BATCH):
            rows = [{"email": email} for email in emails[start : start + UPLOAD_BATCH]]
            upload = client.post(f"/v1/pipelines/{pipeline_id}/leads", json=rows)
            assert upload.status_code == 202, upload.text
        body = {"pipeline_id": pipeline_id, "service": "BOUNCEBAN", "force": True}
        rates = []
        for n in range(repeat):
            cpu = server.cpu_seconds()
            started = time.perf_counter()
            job = client.post("/v1/validation/start", json=body).json()
            path = f"/v1/validation/jobs/{job['job_id']}/progress?wait=50"
            progress = client.get(path).json()
            while progress["status"] not in ("COMPLETED", "FAILED", "CANCELLED"):
                progress = client.get(path).json()
            wall = time.perf_counter() - started
            record = client.get(f"/v1/validation/jobs/{job['job_id']}").json()
            if progress["status"] != "COMPLETED":
                sys.stderr.write("".join(server.output)[-6000:])
            assert progress["status"] == "COMPLETED", record
            assert progress["processed_leads"] == len(emails), progress
            rates.append(len(emails) / wall)
            counts = {
                name: progress[name]
                for name in ("valid_leads", "invalid_leads", "risky_leads", "unknown_leads")
            }
            print(
                f"  run {n + 1}: {rates[-1]:,.0f} leads/s ({wall:.2f} s), "
                f"{(server.cpu_seconds() - cpu) / len(emails) * 1e6:.0f} µs server CPU per "
                f"lead; {counts}",
                flush=True,
            )
    return rates


if __name__ == "__main__":
    main()
