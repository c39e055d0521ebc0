"""The `user_agent` enricher: browser, OS and device of a User-Agent header, and a bot flag.

ua-parser 1.x with its Rust-backed resolver (`ua-parser[regex]`) parses each distinct
header once; the answers are kept across batches (a stream sees a few hundred distinct
headers per million events). A bot is what ua-parser files as a `Spider` device, or a
header that names itself a bot, crawler, spider or headless browser.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pyarrow as pa
from pydantic import Field
from ua_parser import Parser, load_builtins
from ua_parser.regex import Resolver

from openenrich.enrichers.columns import DistinctCache, strings
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    register,
)

_BOT_WORDS = re.compile(r"bot\b|bot/|crawl|spider|slurp|headless|python-requests|curl/", re.I)


@functools.cache
def parser() -> Parser:
    """One parser per process: compiling the regexes takes a moment."""
    return Parser(Resolver(load_builtins()))


def _version(*parts: str | None) -> str | None:
    present = []
    for part in parts:
        if part is None:
            break
        present.append(part)
    return ".".join(present) or None


def parse(header: str) -> tuple[Any, ...]:
    """(browser, browser version, OS, OS version, device, is_bot) of one header."""
    result = parser().parse(header)
    agent, system, device = result.user_agent, result.os, result.device
    browser = agent.family if agent else "Other"
    device_family = device.family if device else "Other"
    is_bot = device_family == "Spider" or bool(_BOT_WORDS.search(header))
    return (
        browser,
        _version(agent.major, agent.minor, agent.patch) if agent else None,
        system.family if system else "Other",
        _version(system.major, system.minor, system.patch) if system else None,
        device_family,
        is_bot,
    )


@register
class UserAgentEnricher(Enricher):
    name = "user_agent"
    version = 1
    description = "Browser, OS and device family of a User-Agent header, and whether it is a bot"

    class Options(EnricherOptions):
        field: str = Field(default="user_agent", min_length=1)
        prefix: str = "ua_"

    options: Options

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        self._parsed = DistinctCache(parse, limit=50_000)

    def inputs(self) -> list[str]:
        return [self.options.field]

    def outputs(self) -> list[OutputColumn]:
        p = self.options.prefix
        return [
            OutputColumn(f"{p}browser", "string", "browser family (Chrome, Mobile Safari, …)"),
            OutputColumn(f"{p}browser_version", "string", "major.minor.patch, as far as known"),
            OutputColumn(f"{p}os", "string", "OS family (Windows, iOS, Android, …)"),
            OutputColumn(f"{p}os_version", "string", "major.minor.patch, as far as known"),
            OutputColumn(f"{p}device", "string", "device family (iPhone, Spider, Other, …)"),
            OutputColumn(f"{p}is_bot", "boolean", "a crawler, spider or headless client"),
        ]

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        types = [pa.string()] * 5 + [pa.bool_()]
        values = self._parsed.apply(strings(table, self.options.field), types)
        return dict(zip([c.name for c in self.outputs()], values, strict=True))
