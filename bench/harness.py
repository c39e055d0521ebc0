"""A small benchmark harness: a real `openenrich serve` on a temp data folder, keys made by the
CLI, a keep-alive HTTP/1.1 load generator, and figures printed at the end.

The load generator is deliberately lean (raw asyncio streams, no HTTP library) so that on
a two-core machine the client costs as little of the server's CPU as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

KEY = re.compile(r"sk_(?:live|test)_[A-Za-z0-9]{40}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BenchServer:
    """`openenrich serve` in a child process, on its own temp data folder."""

    def __init__(self, *, database_url: str | None = None, env: dict[str, str] | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="openenrich-bench-")
        self.data_dir = Path(self._tmp.name) / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.admin_key = ""
        self.workers: list[subprocess.Popen[str]] = []

    def _db_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        return args + (["--database-url", self.database_url] if self.database_url else [])

    def __enter__(self) -> BenchServer:
        command = [sys.executable, "-m", "openenrich", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command + self._db_args(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        assert self.process.stdout is not None
        stdout = self.process.stdout
        threading.Thread(target=lambda: self.output.extend(stdout), daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + "".join(self.output))
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    found = KEY.search("".join(self.output))
                    self.admin_key = found.group(0) if found else ""
                    return self
            time.sleep(0.05)
        raise TimeoutError("server did not start:\n" + "".join(self.output))

    def start_worker(self) -> None:
        """An `openenrich worker` on the same database (for `OPENENRICH_WORKERS_IN_SERVE=false`
        servers); stopped with the server."""
        worker = subprocess.Popen(
            [sys.executable, "-m", "openenrich", "worker", *self._db_args()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        assert worker.stdout is not None
        stdout, lines = worker.stdout, []
        # Drained for the whole run: an unread pipe would block the worker once it fills.
        threading.Thread(target=lambda: lines.extend(stdout), daemon=True).start()
        deadline = time.monotonic() + 30
        while not any(" worker " in line for line in lines):
            if worker.poll() is not None or time.monotonic() > deadline:
                worker.kill()
                raise RuntimeError("worker did not start:\n" + "".join(lines))
            time.sleep(0.05)
        self.workers.append(worker)

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.terminate()
            worker.wait(timeout=10)
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._tmp.cleanup()

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "openenrich", *args, *self._db_args()],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
        )
        return result.stdout

    def make_key(self, org: str = "bench", role: str = "admin") -> str:
        return self.cli("keys", "create", "--org", org, "--role", role).strip().splitlines()[-1]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its worker processes have used so far."""
        assert self.process is not None
        total = 0.0
        for pid in [self.process.pid, *(worker.pid for worker in self.workers)]:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def peak_rss_mib(self) -> float:
        """The server's high-water resident set (VmHWM), in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")


@dataclass
class Results:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    sent_at: list[float] = field(default_factory=list)  # seconds since the load started

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def ok_per_second(self) -> float:
        """Requests answered 200 per second (refused ones, e.g. 503, do not count)."""
        return self.statuses[200] / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    if match:
        await reader.readexactly(int(match.group(1)))
    return status


async def _connection(
    port: int,
    next_request: Callable[[], bytes],
    begin: float,
    stop_at: float,
    results: Results,
    interval: float | None = None,
) -> None:
    """Closed loop (send again as soon as an answer arrives) or, with `interval`, open loop:
    requests are due every `interval` seconds and latency counts from when a request was
    due, so a slow answer that delays the next request is charged to that request too."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due = time.perf_counter()
    try:
        while time.perf_counter() < stop_at:
            payload = next_request()
            if interval is not None:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                started = due
                due += interval
            else:
                started = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            results.latencies.append(time.perf_counter() - started)
            results.sent_at.append(started - begin)
            results.statuses[status] += 1
    finally:
        writer.close()


def run_load(
    port: int,
    next_request: Callable[[], bytes],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> Results:
    """`connections` keep-alive clients for `seconds`: as fast as answers come back, or,
    with `rate`, `rate` requests a second in all (open loop)."""

    async def main() -> Results:
        results = Results(seconds=seconds)
        begin = time.perf_counter()
        stop_at = begin + seconds
        interval = connections / rate if rate else None

        async def staggered(index: int) -> None:
            if interval is not None:  # spread the connections over one interval
                await asyncio.sleep(interval * index / connections)
            await _connection(port, next_request, begin, stop_at, results, interval)

        await asyncio.gather(*(staggered(index) for index in range(connections)))
        return results

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def report(name: str, runs: Sequence[Results], rss_mib: float) -> None:
    """Print the median of each figure over the runs."""
    rps = statistics.median(r.requests_per_second for r in runs)
    p50 = statistics.median(r.percentile(50) for r in runs)
    p99 = statistics.median(r.percentile(99) for r in runs)
    statuses: Counter[int] = Counter()
    for run in runs:
        statuses.update(run.statuses)
    each = ", ".join(f"{r.requests_per_second:,.0f}" for r in runs)
    print(
        f"{name:<28} {rps:>9,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
        f"peak RSS {rss_mib:5.0f} MiB   runs [{each}]   statuses {dict(statuses)}"
    )


def cycle(items: Sequence[bytes]) -> Callable[[], bytes]:
    iterator: Iterator[bytes] = iter(())
    buffered = list(items)

    def next_item() -> bytes:
        nonlocal iterator
        try:
            return next(iterator)
        except StopIteration:
            iterator = iter(buffered)
            return next(iterator)

    return next_item


@contextlib.contextmanager
def fake_llm(latency: float, *extra: str) -> Iterator[dict[str, str]]:
    """The fake LLM provider (tests/fixtures/fake_llm.py) in a process of its own,
    answering after `latency` seconds; yields the server settings that point OpenAI at it."""
    script = Path(__file__).resolve().parents[1] / "tests/fixtures/fake_llm.py"
    fake = subprocess.Popen(
        [sys.executable, str(script), "--delay", str(latency), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        yield {
            "OPENENRICH_PROVIDER_OPENAI_API_KEY": "sk-bench",
            "OPENENRICH_PROVIDER_OPENAI_BASE_URL": f"{url}/v1",
        }
    finally:
        fake.terminate()
        fake.wait()
