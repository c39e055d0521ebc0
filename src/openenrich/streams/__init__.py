"""The event-streams surface: /ingest, /streams, /v1/streams/ingest, usage, stats, errors,
connect and query."""
