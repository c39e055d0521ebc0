"""Email verification with SMTP probing: addresses per second through `EmailVerifier`.

    .venv/bin/python bench/email_validation.py [--addresses 10000] [--domains 50]
                                               [--runs 5] [--mode probe|hybrid|heuristic]
                                               [--loop asyncio|uvloop]

A DNS server (dnslib, a thread of this process) answers for `--domains` domains, each with
its own MX host at 127.0.0.1; one SMTP server (aiosmtpd, tests/fixtures/mail.py) listens
there in a process of its own, as a real mail server would be elsewhere. It accepts local
parts starting with `user` or `info`, refuses the others with 550 5.1.1 (so every domain's
catch-all test says no), and accepts everything at one domain in ten (catch-all). One
address in ten is `gone…` (refused), one in twenty `info+…` (a role account).

Each run is a new verifier over every address: DNS lookups, SMTP connections, catch-all
tests and all, as one validation job would make it. The figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.mail import DnsServer, MailServer, Zone  # noqa: E402
from openenrich.config import Settings  # noqa: E402
from openenrich.email.verifier import EmailVerifier  # noqa: E402


def bench_answer(address: str) -> str:
    local, _, domain = address.partition("@")
    if domain.startswith("catchall") or local.startswith(("user", "info")):
        return "250 2.1.5 Ok"
    return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


def serve_smtp() -> None:
    """The child: the SMTP server, until its standard input closes."""
    with MailServer("127.0.0.1", 0, bench_answer) as server:
        print(server.port, flush=True)
        sys.stdin.read()


def domains(count: int) -> list[str]:
    return [
        f"catchall{n:02d}.example" if n % 10 == 0 else f"company{n:02d}.example"
        for n in range(count)
    ]


def addresses(count: int, names: list[str]) -> list[str]:
    made = []
    for n in range(count):
        local = f"gone{n}" if n % 10 == 3 else f"info+{n}" if n % 20 == 7 else f"user{n}"
        made.append(f"{local}@{names[n % len(names)]}")
    return made


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_run(
    settings: Settings, items: list[str], mode: str
) -> tuple[float, float, Counter[str]]:
    started, cpu = time.perf_counter(), time.process_time()
    async with EmailVerifier(settings) as verifier:  # its own pool: no connection to start with
        results = await verifier.verify_many(items, mode)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return wall, cpu, Counter(str(result.verdict) for result in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=("probe", "hybrid", "heuristic"), default="probe")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--serve-smtp", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_smtp:
        serve_smtp()
        return

    names = domains(args.domains)
    zone = Zone(
        line
        for name in names
        for line in (f"{name}. 60 IN MX 10 mx.{name}.", f"mx.{name}. 60 IN A 127.0.0.1")
    )
    smtp = subprocess.Popen(
        [sys.executable, __file__, "--serve-smtp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    run = uvloop.run if args.loop == "uvloop" else asyncio.run
    try:
        assert smtp.stdout is not None
        port = int(smtp.stdout.readline())
        with DnsServer(zone) as dns:
            settings = Settings(
                email_dns_nameservers=["127.0.0.1"],
                email_dns_port=dns.port,
                email_probe_enabled=True,
                email_probe_port=port,
                email_probe_helo_name="bench.openenrich.example",
                email_probe_mail_from="verify@openenrich.example",
                allowed_private_hosts=["127.0.0.1"],
            )
            items = addresses(args.addresses, names)
            rates, cpus, server_cpus = [], [], []
            verdicts: Counter[str] = Counter()
            for n in range(args.runs):
                server_cpu = cpu_seconds(smtp.pid)
                wall, cpu, verdicts = run(one_run(settings, items, args.mode))
                rates.append(len(items) / wall)
                cpus.append(cpu / len(items) * 1e6)
                server_cpus.append((cpu_seconds(smtp.pid) - server_cpu) / len(items) * 1e6)
                print(
                    f"  run {n + 1}: {rates[-1]:,.0f} addresses/s ({wall:.2f} s), CPU per "
                    f"address {cpus[-1]:.0f} µs here, {server_cpus[-1]:.0f} µs in the SMTP server",
                    flush=True,
                )
        print(
            f"{args.addresses} addresses at {args.domains} domains, mode {args.mode}, "
            f"{args.loop}: median {statistics.median(rates):,.0f} addresses/s "
            f"(target >= 1,000); CPU per address {statistics.median(cpus):.0f} µs in the "
            f"verifier's process (DNS server included), {statistics.median(server_cpus):.0f} µs "
            f"in the SMTP server's; verdicts {dict(sorted(verdicts.items()))}"
        )
    finally:
        assert smtp.stdin is not None
        smtp.stdin.close()
        smtp.wait(timeout=10)


if __name__ == "__main__":
    main()
