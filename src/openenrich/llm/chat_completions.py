"""The OpenAI chat-completions protocol, spoken directly: a pydantic-ai `Model` on aiohttp.

OpenAI, Perplexity, DeepSeek and every OpenAI-compatible server (Ollama, vLLM, llama.cpp,
LiteLLM) speak this protocol. The gateway needs one request shape from it (messages,
function tools, a JSON Schema for the answer, temperature, a token limit) and four things
back (text, tool calls, usage, finish reason). Through pydantic-ai's `OpenAIChatModel` and
the OpenAI SDK those cost about 2 ms of CPU per call: the SDK's type-driven request
transform and response models, and its HTTP client. Built here on one aiohttp session they
cost about a tenth of that (bench/llm_gateway.py), which is what lets one process keep 64
calls in flight. Anthropic and Gemini still go through pydantic-ai's models and their SDKs.

The model takes the request parameters as the gateway makes them: an output mode already
chosen (native, prompted or none) and function tools. pydantic-ai's `Model.prepare_request`,
which resolves modes, thinking, caching and native tools for any caller, cost 15% of a call
here and would change nothing in them; the one thing the gateway needs of it, the schema in
the instructions for prompted output, is done here with pydantic-ai's own template. Errors
are pydantic-ai's, as its own models raise them, so the gateway handles every protocol alike:

    ModelAPIError
    ├── ModelHTTPError          the server answered 4xx/5xx (status, body, headers)
    └── ModelConnectionError    refused, reset or unreachable
        └── ModelTimeoutError   no whole answer within the `timeout` setting
    UnexpectedModelBehavior     a 200 whose body is not a chat completion, or too large
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
from pydantic_ai.exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelTimeoutError,
    UnexpectedModelBehavior,
    UserError,
)
from pydantic_ai.messages import (
    FinishReason,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.profiles import DEFAULT_PROMPTED_OUTPUT_TEMPLATE, ModelProfile
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.usage import RequestUsage

from openenrich import __version__

DEFAULT_TIMEOUT_SECONDS = 600.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # a chat completion is kilobytes; refuse runaway bodies

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "content_filter": "content_filter",
}


class ChatCompletionsClient:
    """One server and key: POSTs chat-completion bodies over a pooled keep-alive session.

    An async context manager; the session is made on entry (it belongs to the running
    loop) and closed on exit. `connector` decides what may be reached: the SSRF-guarded
    one (`web.client.guarded_connector`) for base URLs a tenant stored.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        connector: aiohttp.BaseConnector | None = None,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"openenrich/{__version__}",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._connector = connector
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ChatCompletionsClient:
        if self._session is None:
            connector = self._connector or aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                trust_env=False,  # no proxies from the environment for provider calls
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, model_name: str, body: dict[str, Any], timeout_seconds: float
    ) -> dict[str, Any]:
        """The decoded chat completion; pydantic-ai's errors otherwise (see the module)."""
        if self._session is None:
            raise RuntimeError("ChatCompletionsClient used outside `async with`")
        try:
            async with self._session.post(
                self.url,
                data=orjson.dumps(body),
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                allow_redirects=False,  # an API does not move; a redirect is an error here
            ) as response:
                raw = await _read(response, model_name)
                status, headers = response.status, response.headers
        except TimeoutError as error:
            raise ModelTimeoutError(
                model_name, f"no answer from {self.base_url} within {timeout_seconds:g} s"
            ) from error
        except aiohttp.ClientError as error:
            raise ModelConnectionError(model_name, f"{self.base_url}: {error}") from error
        if status >= 300:
            raise ModelHTTPError(status, model_name, _error_body(raw), headers=dict(headers))
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            snippet = raw[:300].decode(errors="replace")
            raise UnexpectedModelBehavior(
                f"{self.base_url} answered a body that is not JSON", snippet
            ) from None
        if not isinstance(decoded, dict):
            raise UnexpectedModelBehavior(f"{self.base_url} answered JSON that is not an object")
        return decoded


class ChatCompletionsModel(Model):
    """A model behind a chat-completions server. `native_json`: the server takes a JSON
    Schema for its answer (`response_format: json_schema`); else the schema goes into the
    instructions and the server is asked for a JSON object."""

    def __init__(
        self, model_name: str, client: ChatCompletionsClient, *, system: str, native_json: bool
    ) -> None:
        super().__init__(
            profile=ModelProfile(
                supports_tools=True,
                supports_json_schema_output=native_json,
                supports_json_object_output=True,
                default_structured_output_mode="native" if native_json else "prompted",
            )
        )
        self._model_name = model_name
        self._system = system
        self.client = client

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def system(self) -> str:
        return self._system

    @property
    def base_url(self) -> str:
        return self.client.base_url

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        settings = model_settings or {}
        body = self._body(messages, settings, model_request_parameters)
        timeout = settings.get("timeout")
        if not isinstance(timeout, int | float):  # the gateway always sets one
            timeout = DEFAULT_TIMEOUT_SECONDS
        answer = await self.client.post(self._model_name, body, timeout)
        return self._response(answer)

    def _body(
        self,
        messages: list[ModelMessage],
        settings: ModelSettings,
        parameters: ModelRequestParameters,
    ) -> dict[str, Any]:
        instructions = [part.content for part in parameters.instruction_parts or () if part.content]
        output = parameters.output_object
        if parameters.output_mode == "prompted" and output is not None:
            template = parameters.prompted_output_template or DEFAULT_PROMPTED_OUTPUT_TEMPLATE
            prompted = replace(parameters, prompted_output_template=template)
            instructions.append(prompted.prompted_output_instructions or "")
        body: dict[str, Any] = {
            "model": self._model_name,
            "messages": _messages(messages, "\n\n".join(instructions)),
        }
        tools = [*parameters.function_tools, *parameters.output_tools]
        if tools:
            body["tools"] = [_tool(tool) for tool in tools]
            if not parameters.allow_text_output:
                body["tool_choice"] = "required"
        if parameters.output_mode == "native" and output is not None:
            schema: dict[str, Any] = {"name": output.name or "answer", "schema": output.json_schema}
            if output.description:
                schema["description"] = output.description
            if output.strict is not None:
                schema["strict"] = output.strict
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif parameters.output_mode == "prompted":
            body["response_format"] = {"type": "json_object"}
        if "temperature" in settings:
            body["temperature"] = settings["temperature"]
        if "max_tokens" in settings:
            body["max_completion_tokens"] = settings["max_tokens"]
        if "top_p" in settings:
            body["top_p"] = settings["top_p"]
        if "seed" in settings:
            body["seed"] = settings["seed"]
        if "stop_sequences" in settings:
            body["stop"] = settings["stop_sequences"]
        return body

    def _response(self, answer: dict[str, Any]) -> ModelResponse:
        try:
            choice = answer["choices"][0]
            message = choice["message"]
            parts: list[ModelResponsePart] = []
            if message.get("content"):
                parts.append(TextPart(message["content"]))
            for call in message.get("tool_calls") or ():
                function = call["function"]
                arguments = function.get("arguments")
                parts.append(ToolCallPart(function["name"], arguments, tool_call_id=call["id"]))
            usage = answer.get("usage") or {}
            details = usage.get("prompt_tokens_details") or {}
            return ModelResponse(
                parts=parts,
                usage=RequestUsage(
                    input_tokens=usage.get("prompt_tokens") or 0,
                    output_tokens=usage.get("completion_tokens") or 0,
                    cache_read_tokens=details.get("cached_tokens") or 0,
                ),
                model_name=answer.get("model") or self._model_name,
                provider_name=self._system,
                provider_url=self.client.base_url,
                provider_response_id=answer.get("id"),
                finish_reason=_FINISH_REASONS.get(choice.get("finish_reason") or ""),
            )
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise UnexpectedModelBehavior(
                f"{self.client.base_url} answered something that is not a chat completion "
                f"({type(error).__name__}: {error})"
            ) from None


def _messages(messages: Sequence[ModelMessage], instructions: str) -> list[dict[str, Any]]:
    mapped: list[dict[str, Any]] = []
    if instructions:
        mapped.append({"role": "system", "content": instructions})
    for message in messages:
        if isinstance(message, ModelRequest):
            mapped.extend(_request_parts(message))
        else:
            mapped.append(_assistant(message))
    return mapped


def _request_parts(message: ModelRequest) -> list[dict[str, Any]]:
    mapped: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, SystemPromptPart):
            mapped.append({"role": "system", "content": part.content})
        elif isinstance(part, UserPromptPart):
            mapped.append({"role": "user", "content": _text(part)})
        elif isinstance(part, ToolReturnPart):
            mapped.append(
                {
                    "role": "tool",
                    "tool_call_id": part.tool_call_id,
                    "content": part.model_response_str(),
                }
            )
        else:  # the gateway re-asks in a user prompt, never with a retry part
            raise UserError(f"chat completions cannot carry a {type(part).__name__}")
    return mapped


def _assistant(message: ModelResponse) -> dict[str, Any]:
    text = "".join(part.content for part in message.parts if isinstance(part, TextPart))
    calls = [
        {
            "id": part.tool_call_id,
            "type": "function",
            "function": {"name": part.tool_name, "arguments": part.args_as_json_str()},
        }
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]
    mapped: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        mapped["tool_calls"] = calls
    return mapped


def _text(part: UserPromptPart) -> str:
    if isinstance(part.content, str):
        return part.content
    texts = [item for item in part.content if isinstance(item, str)]
    if len(texts) != len(part.content):
        raise UserError("only text prompts are supported over chat completions")
    return "\n".join(texts)


def _tool(tool: ToolDefinition) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description or "",
        "parameters": tool.parameters_json_schema,
    }
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


async def _read(response: aiohttp.ClientResponse, model_name: str) -> bytes:
    if (response.content_length or 0) > MAX_RESPONSE_BYTES:
        raise UnexpectedModelBehavior(f"the answer of {model_name} is larger than 16 MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise UnexpectedModelBehavior(f"the answer of {model_name} is larger than 16 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_body(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:2000].decode(errors="replace")
