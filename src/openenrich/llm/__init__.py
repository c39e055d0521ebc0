"""The LLM gateway: one `complete()` for every surface that asks a language model.

catalogue.py   which providers and model names exist (data: catalogue.toml)
keys.py        tenants' provider keys, encrypted at rest, with server-wide fallbacks
gateway.py     complete(): structured output validated against JSON Schema and re-asked,
               tool calls, retries with backoff, concurrency limits, exact cost, cache
recorder.py    every call recorded for usage and billing, written in batches
routes.py      /v1/settings/api-keys… (also /api/settings/…) and /api/enrichment/options
"""
