"""Entity enrichment: fill a saved JSON Schema for an entity with one or several language
models, fuse their answers, stream the progress (the /api/schema…, /api/single…,
/api/enrichment/batch…, /api/llm…, /api/records… and /api/fusion… paths)."""
