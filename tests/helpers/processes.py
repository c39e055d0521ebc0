"""`openenrich serve` and `openenrich worker` as child processes, the way an operator runs
them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from helpers.server import free_port


class ServeProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "openenrich",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            *extra_args,
        ]
        if database_url:
            self.args += ["--database-url", database_url]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ServeProcess:
        self._start()
        self._wait_until(self._answers, "answer /health")
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _start(self) -> None:
        self._process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        assert self._process.stdout is not None
        stdout = self._process.stdout
        self._reader = threading.Thread(target=lambda: self.output.extend(stdout), daemon=True)
        self._reader.start()

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        assert self._process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                time.sleep(0.1)
                raise RuntimeError(f"{self.args[3]} exited early:\n{self.text}")
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.args[3]} did not {what} within 30 s:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.output)

    @property
    def returncode(self) -> int | None:
        assert self._process is not None
        return self._process.poll()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class WorkerProcess(ServeProcess):
    """`openenrich worker`: no HTTP; ready once it has said which worker it is."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(data_dir, database_url=database_url, extra_args=extra_args, env=env)
        serve_flags = self.args.index("--port")
        del self.args[serve_flags : serve_flags + 2]
        self.args[3] = "worker"

    def __enter__(self) -> WorkerProcess:
        self._start()
        self._wait_until(lambda: " worker " in self.text, "start")
        return self
