"""`Gateway.complete()`: one call to a language model, the way every surface needs it.

    prompt ─► model (catalogue) ─► credentials (tenant key, else server key, else 400)
           ─► provider and tenant concurrency limits
           ─► request (a pydantic-ai model: our own for the OpenAI protocol, pydantic-ai's
              on the SDKs for Anthropic and Gemini), retried on 429/5xx/timeouts with
              backoff + jitter,
              honouring Retry-After
           ─► tool calls run and answered, up to `llm_max_tool_rounds`
           ─► output parsed and validated against the JSON Schema (jsonschema); on failure
              the model is re-asked with the errors, up to `llm_schema_retries`
           ─► Result(value, usage, cost, model, attempts): usage and cost over every attempt

Errors (each carries its HTTP status, as every OpenEnrichError does):

    OpenEnrichError
    ├── BadRequest 400
    │   ├── UnknownModel          the name is not in the catalogue
    │   └── MissingProviderKey    "No API key found for OPENAI"
    └── LlmError 502
        ├── ProviderError         the provider kept failing or refused the request
        ├── TruncatedOutput       the answer hit the token limit (not retried)
        ├── InvalidOutput         still not valid against the schema after the re-asks
        └── ToolLoop              the model kept calling tools
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal

import orjson
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic_ai import ModelRequest, ModelResponse
from pydantic_ai.direct import model_request
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError, UnexpectedModelBehavior
from pydantic_ai.messages import (
    ModelMessage,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.output import OutputObjectDefinition
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.errors import BadRequest, OpenEnrichError
from openenrich.ids import new_id, utcnow
from openenrich.llm import keys
from openenrich.llm.catalogue import Catalogue, ModelRef, Provider, load_catalogue
from openenrich.llm.models import LlmCacheEntry
from openenrich.llm.providers import Built, build_model, load_sdk
from openenrich.llm.recorder import CallRecorder
from openenrich.secretbox import SecretBox
from openenrich.tenancy.tenant import Tenant
from openenrich.web.guard import UnsafeURL, resolve_public

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_MAX_CLIENTS = 256  # clients kept, one per (model, key, base URL)
_CREDENTIALS_TTL = 5.0  # seconds a process reuses a looked-up key (PUT/DELETE here clear it)


class LlmError(OpenEnrichError):
    status_code = 502
    code = "llm_error"


class ProviderError(LlmError):
    code = "provider_error"


class TruncatedOutput(LlmError):
    code = "output_truncated"


class InvalidOutput(LlmError):
    code = "invalid_output"


class ToolLoop(LlmError):
    code = "too_many_tool_calls"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.requests + other.requests,
        )


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: `function(arguments) -> JSON-able result`."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Result:
    value: Any  # the validated JSON value with a schema, else the text
    usage: Usage
    cost: Decimal  # USD, over every attempt
    cost_known: bool  # False: a model genai-prices does not know (cost counted as 0)
    model: str  # provider::model
    attempts: int  # HTTP requests made: retries, re-asks and tool rounds included
    cached: bool = False
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class _Tally:
    usage: Usage = Usage()
    cost: Decimal = Decimal(0)
    cost_known: bool = True
    attempts: int = 0

    def add(self, response: ModelResponse, provider: Provider) -> None:
        self.usage += Usage(response.usage.input_tokens, response.usage.output_tokens, 1)
        if provider.any_model:  # a self-hosted model: no public price
            self.cost_known = False
            return
        usage = response.usage
        price = _price(
            response.model_name or "",
            provider.id,
            (usage.input_tokens, usage.output_tokens),
            (usage.cache_read_tokens, usage.cache_write_tokens),
        )
        if price is None:
            self.cost_known = False
        else:
            self.cost += price


class Gateway:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        box: SecretBox,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.box = box
        self.catalogue = catalogue or load_catalogue(settings.llm_catalogue_path)
        self.recorder = CallRecorder(database)
        self._models: dict[tuple[str, str, str | None, str | None], Built] = {}
        self._credentials: dict[
            tuple[str, str, str, str | None], tuple[float, keys.Credentials]
        ] = {}
        self._provider_slots: dict[str, asyncio.Semaphore] = {}
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}
        self._retiring: dict[asyncio.Task[None], Built] = {}
        self._sdks_loaded: set[str] = set()

    async def close(self) -> None:
        await self.recorder.close()
        for task, built in self._retiring.items():
            task.cancel()
            await built.close()
        for built in self._models.values():
            await built.close()
        self._models.clear()

    # -- checks made before work starts ----------------------------------------------------

    async def ready(self, tenant: Tenant, model: str, *, base_url: str | None = None) -> ModelRef:
        """The model, once its name and its provider's key are known good; raises the 400s
        (UnknownModel, MissingProviderKey) a surface returns before starting a job. With
        `base_url` (a server the tenant named) no key is needed: see `complete`."""
        ref = self.catalogue.resolve(model)
        if base_url is None:
            await self._credentials_for(tenant, ref.provider)
        return ref

    def forget_credentials(self, tenant: Tenant) -> None:
        prefix = (tenant.org_id, tenant.environment.value)
        for key in [k for k in self._credentials if k[:2] == prefix]:
            del self._credentials[key]

    # -- the call ----------------------------------------------------------------------------

    async def complete(
        self,
        tenant: Tenant,
        model: str,
        prompt: str,
        *,
        output_schema: dict[str, Any] | None = None,
        tools: Sequence[Tool] = (),
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        job_id: str | None = None,
        base_url: str | None = None,
    ) -> Result:
        """`base_url` sends the call to a server the tenant named (a lead template's
        `endpoint_url`) instead of the configured one: with the tenant's own key for the
        provider, or none, never the server's (which must not travel to a URL a tenant
        chose), and through the SSRF guard like a stored base URL."""
        ref = self.catalogue.resolve(model)
        validator = _validator(orjson.dumps(output_schema).decode()) if output_schema else None
        started = time.perf_counter()
        cache_key = self._cache_key(
            tenant, ref, prompt, output_schema, tools, system, temperature, base_url
        )
        if cache_key is not None and (hit := await self._cached(cache_key, ref)) is not None:
            self._record(tenant, ref, job_id, hit, started, "ok")
            return hit
        tally = _Tally()
        try:
            result = await self._complete(
                tenant, ref, prompt, validator, output_schema, tools, system,
                temperature, max_tokens, tally, base_url,
            )  # fmt: skip
        except OpenEnrichError as error:
            self._record(tenant, ref, job_id, tally, started, error.code)
            raise
        self._record(tenant, ref, job_id, result, started, "ok")
        if cache_key is not None:
            await self._store(cache_key, result)
        return result

    async def _complete(
        self,
        tenant: Tenant,
        ref: ModelRef,
        prompt: str,
        validator: Draft202012Validator | None,
        output_schema: dict[str, Any] | None,
        tools: Sequence[Tool],
        system: str | None,
        temperature: float | None,
        max_tokens: int | None,
        tally: _Tally,
        base_url: str | None = None,
    ) -> Result:
        credentials = await self._credentials_for(tenant, ref.provider, base_url)
        model = await self._model(ref, credentials)
        parameters = _parameters(ref.provider, output_schema, tools)
        model_settings: ModelSettings = {"timeout": self.settings.llm_timeout_seconds}
        if temperature is not None:
            model_settings["temperature"] = temperature
        if max_tokens is not None:
            model_settings["max_tokens"] = max_tokens
        messages: list[ModelMessage] = [ModelRequest.user_text_prompt(prompt, instructions=system)]
        by_name = {tool.name: tool for tool in tools}
        called: list[tuple[str, dict[str, Any]]] = []
        reasks = rounds = 0
        async with self._slots(ref.provider, tenant):
            while True:
                response = await self._request(
                    ref.provider, model, messages, model_settings, parameters, tally
                )
                if response.finish_reason == "length":
                    raise TruncatedOutput(
                        f"The answer of {ref.key} was cut off at its token limit"
                        + (f" ({max_tokens})" if max_tokens else "")
                    )
                calls = [part for part in response.tool_calls if part.tool_name in by_name]
                if calls:
                    rounds += 1
                    if rounds > self.settings.llm_max_tool_rounds:
                        raise ToolLoop(f"{ref.key} called tools more than {rounds - 1} times")
                    messages.append(response)
                    returns = await asyncio.gather(*(_run_tool(by_name, call) for call in calls))
                    called += [(call.tool_name, call.args_as_dict()) for call in calls]
                    messages.append(ModelRequest(parts=returns))
                    continue
                text = response.text or ""
                if validator is None:
                    return self._result(text, ref, tally, called)
                value, problems = _check(text, validator)
                if not problems:
                    return self._result(value, ref, tally, called)
                if reasks >= self.settings.llm_schema_retries:
                    raise InvalidOutput(
                        f"The answer of {ref.key} did not match the schema after "
                        f"{reasks + 1} attempts: {'; '.join(problems)}"
                    )
                reasks += 1
                messages.append(response)
                messages.append(ModelRequest(parts=[UserPromptPart(_reask(problems))]))

    def _result(
        self, value: Any, ref: ModelRef, tally: _Tally, called: list[tuple[str, dict[str, Any]]]
    ) -> Result:
        return Result(
            value, tally.usage, tally.cost, tally.cost_known, ref.key, tally.attempts,
            tool_calls=called,
        )  # fmt: skip

    async def _request(
        self,
        provider: Provider,
        model: Model,
        messages: list[ModelMessage],
        model_settings: ModelSettings,
        parameters: ModelRequestParameters,
        tally: _Tally,
    ) -> ModelResponse:
        retries = self.settings.llm_max_retries
        for attempt in range(retries + 1):
            tally.attempts += 1
            try:
                response = await model_request(
                    model,
                    messages,
                    model_settings=model_settings,
                    model_request_parameters=parameters,
                )
            except ModelHTTPError as error:
                retryable = error.status_code in _RETRYABLE_STATUS
                if not retryable or attempt == retries:
                    raise ProviderError(
                        f"{provider.label} answered {error.status_code}"
                        + ("" if retryable else f": {_short(str(error.body or ''))}"),
                        extra={"provider_status": error.status_code},
                    ) from None
                await asyncio.sleep(self._delay(attempt, error.headers))
                continue
            except UnsafeURL as error:  # a tenant's server now resolves somewhere private
                raise BadRequest(f"{provider.label} may not be reached: {error}") from None
            except (ModelAPIError, UnexpectedModelBehavior) as error:
                # Timeouts, refused connections, bodies that are not what the API promised.
                if attempt == retries:
                    raise ProviderError(f"{provider.label} failed: {_short(str(error))}") from None
                await asyncio.sleep(self._delay(attempt, None))
                continue
            tally.add(response, provider)
            return response
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, headers: dict[str, str] | None) -> float:
        """Retry-After when the provider says (seconds or an HTTP date), else exponential
        backoff with full jitter; never more than `llm_backoff_max_seconds`."""
        ceiling = self.settings.llm_backoff_max_seconds
        retry_after = (headers or {}).get("retry-after")
        if retry_after:
            try:
                return min(ceiling, max(0.0, float(retry_after)))
            except ValueError:
                try:
                    moment = parsedate_to_datetime(retry_after)
                    return min(ceiling, max(0.0, (moment - utcnow()).total_seconds()))
                except (TypeError, ValueError):
                    pass
        return random.uniform(0, min(ceiling, self.settings.llm_backoff_seconds * 2**attempt))

    # -- plumbing ----------------------------------------------------------------------------

    def _slots(self, provider: Provider, tenant: Tenant) -> _Both:
        provider_slots = self._provider_slots.get(provider.id)
        if provider_slots is None:
            provider_slots = asyncio.Semaphore(self.settings.llm_provider_concurrency)
            self._provider_slots[provider.id] = provider_slots
        name = f"{tenant.org_id}:{tenant.environment.value}"
        tenant_slots = self._tenant_slots.get(name)
        if tenant_slots is None:
            tenant_slots = asyncio.Semaphore(self.settings.llm_tenant_concurrency)
            self._tenant_slots[name] = tenant_slots
        return _Both(tenant_slots, provider_slots)

    async def _credentials_for(
        self, tenant: Tenant, provider: Provider, base_url: str | None = None
    ) -> keys.Credentials:
        key = (tenant.org_id, tenant.environment.value, provider.key_name, base_url)
        found = self._credentials.get(key)
        now = time.monotonic()
        if found is not None and now - found[0] < _CREDENTIALS_TTL:
            return found[1]
        if base_url is not None:
            async with self.database.session() as session:
                credentials = await keys.own_credentials(
                    session, self.box, tenant, provider.key_name, base_url
                )
            self._credentials[key] = (now, credentials)
            return credentials
        async with self.database.session() as session:
            credentials = await keys.credentials(
                session,
                self.box,
                self.settings,
                tenant,
                provider.key_name,
                needs_key=not provider.any_model,
            )
        if provider.any_model and not (credentials.base_url or provider.base_url):
            raise BadRequest(f"No base URL configured for {provider.key_name}")
        self._credentials[key] = (now, credentials)
        return credentials

    async def _model(self, ref: ModelRef, credentials: keys.Credentials) -> Model:
        # One client per (model, key, base URL), reused: building one costs milliseconds
        # and each holds a connection pool.
        key = (ref.provider.id, ref.name, credentials.api_key, credentials.base_url)
        built = self._models.get(key)
        if built is None:
            if credentials.source == "tenant" and credentials.base_url:
                await self._check_tenant_url(credentials.base_url)
            if ref.provider.api not in self._sdks_loaded:
                await asyncio.to_thread(load_sdk, ref.provider.api)
                self._sdks_loaded.add(ref.provider.api)
            built = self._models.get(key)  # another call may have built it meanwhile
        if built is None:
            built = build_model(ref, credentials, self.settings)
            self._models[key] = built  # before the await: concurrent calls share this one
            await built.open()
            if len(self._models) > _MAX_CLIENTS:  # keys rotate: retire the oldest client
                oldest = next(iter(self._models))
                retired = self._models.pop(oldest)
                # Closed once calls already using it are surely done.
                self._retiring[asyncio.create_task(self._retire(retired))] = retired
        return built.model

    async def _check_tenant_url(self, url: str) -> None:
        """A base URL a tenant stored is a user-given URL: it must pass the SSRF guard. The
        OpenAI protocol's client checks every connection too; the Anthropic and Gemini SDKs
        bring their own HTTP clients, so for them this check (when the client is made) is
        the guard."""
        try:
            await resolve_public(
                url,
                allow_private=self.settings.allow_private_urls,
                allowed_hosts=self.settings.allowed_private_hosts,
                https_only=False,
            )
        except UnsafeURL as error:
            raise BadRequest(f"The stored base_url {url} may not be used: {error}") from None

    async def _retire(self, built: Built) -> None:
        await asyncio.sleep(self.settings.llm_timeout_seconds * (self.settings.llm_max_retries + 1))
        await built.close()
        self._retiring = {t: b for t, b in self._retiring.items() if b is not built}

    def _record(
        self,
        tenant: Tenant,
        ref: ModelRef,
        job_id: str | None,
        outcome: Result | _Tally,
        started: float,
        status: str,
    ) -> None:
        self.recorder.record(
            {
                "id": new_id("llm"),
                "org_id": tenant.org_id,
                "environment": tenant.environment.value,
                "job_id": job_id,
                "model": ref.key,
                "input_tokens": outcome.usage.input_tokens,
                "output_tokens": outcome.usage.output_tokens,
                "cost_usd": outcome.cost,
                "cost_known": outcome.cost_known,
                "latency_ms": round((time.perf_counter() - started) * 1000),
                "attempts": outcome.attempts,
                "status": status,
                "cached": isinstance(outcome, Result) and outcome.cached,
                "created_at": utcnow(),
            }
        )

    # -- the optional response cache ----------------------------------------------------------

    def _cache_key(
        self,
        tenant: Tenant,
        ref: ModelRef,
        prompt: str,
        schema: dict[str, Any] | None,
        tools: Sequence[Tool],
        system: str | None,
        temperature: float | None,
        base_url: str | None,
    ) -> str | None:
        if self.settings.llm_cache_ttl_seconds <= 0 or tools:
            return None
        material = orjson.dumps(
            [
                tenant.org_id, tenant.environment.value, ref.key, prompt, schema, system,
                temperature, base_url,
            ],
            option=orjson.OPT_SORT_KEYS,
        )  # fmt: skip
        return hashlib.sha256(material).hexdigest()

    async def _cached(self, key: str, ref: ModelRef) -> Result | None:
        async with self.database.session() as session:
            entry = await session.scalar(
                select(LlmCacheEntry).where(
                    LlmCacheEntry.key == key, LlmCacheEntry.expires_at > utcnow()
                )
            )
        if entry is None:
            return None
        usage = Usage(entry.input_tokens, entry.output_tokens, 0)
        return Result(orjson.loads(entry.value), usage, Decimal(0), True, ref.key, 0, cached=True)

    async def _store(self, key: str, result: Result) -> None:
        values = {
            "key": key,
            "value": orjson.dumps(result.value).decode(),
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
            "expires_at": utcnow() + timedelta(seconds=self.settings.llm_cache_ttl_seconds),
        }
        dialect = postgresql if not self.settings.uses_sqlite else sqlite
        statement = dialect.insert(LlmCacheEntry).values(values)
        statement = statement.on_conflict_do_update(index_elements=["key"], set_=values)
        async with self.database.session() as session:
            await session.execute(statement)
            await session.execute(delete(LlmCacheEntry).where(LlmCacheEntry.expires_at < utcnow()))
            await session.commit()


class _Both:
    """Hold a tenant slot, then a provider slot (always in that order: no deadlock)."""

    def __init__(self, first: asyncio.Semaphore, second: asyncio.Semaphore) -> None:
        self.first, self.second = first, second

    async def __aenter__(self) -> None:
        await self.first.acquire()
        try:
            await self.second.acquire()
        except BaseException:
            self.first.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.second.release()
        self.first.release()


@lru_cache(maxsize=4096)
def _price(
    model: str, provider: str, tokens: tuple[int, int], cached: tuple[int, int]
) -> Decimal | None:
    """USD for one response, from genai-prices; None for a model it does not know. Memoised:
    responses of one workload repeat the same token counts often, and a lookup is not free."""
    usage = PriceUsage(
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_read_tokens=cached[0] or None,
        cache_write_tokens=cached[1] or None,
    )
    try:
        return Decimal(str(calc_price(usage, model, provider_id=provider).total_price))
    except LookupError:
        return None


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = orjson.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise BadRequest(f"output_schema is not a valid JSON Schema: {error.message}") from None
    return Draft202012Validator(schema)


def _parameters(
    provider: Provider, schema: dict[str, Any] | None, tools: Sequence[Tool]
) -> ModelRequestParameters:
    function_tools = [
        ToolDefinition(name=t.name, description=t.description, parameters_json_schema=t.parameters)
        for t in tools
    ]
    if schema is None:
        return ModelRequestParameters(function_tools=function_tools)
    # Native structured output where the API has it; the schema in the instructions
    # otherwise. Either way the answer is validated here, not trusted.
    mode: Literal["native", "prompted"] = (
        "prompted" if provider.api == "anthropic" or not provider.native_json else "native"
    )
    return ModelRequestParameters(
        function_tools=function_tools,
        output_mode=mode,
        output_object=OutputObjectDefinition(json_schema=schema, name="answer"),
        allow_text_output=True,
    )


def _check(text: str, validator: Draft202012Validator) -> tuple[Any, list[str]]:
    body = text.strip()
    if body.startswith("```"):  # a fenced answer: ```json … ```
        body = body.split("\n", 1)[-1].rsplit("```", 1)[0]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return None, [f"the answer is not JSON ({error})"]
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    return value, problems[:10]


def _reask(problems: list[str]) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        "Your answer does not match the required JSON schema:\n"
        f"{listed}\n"
        "Answer again with only the corrected JSON object."
    )


async def _run_tool(tools: dict[str, Tool], call: ToolCallPart) -> ToolReturnPart:
    tool = tools[call.tool_name]
    try:
        content = await tool.function(call.args_as_dict())
    except Exception as error:  # the model is told, and may try otherwise
        content = {"error": f"{type(error).__name__}: {error}"}
    return ToolReturnPart(tool_name=call.tool_name, content=content, tool_call_id=call.tool_call_id)


def _short(text: str | None, limit: int = 300) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + "…"
