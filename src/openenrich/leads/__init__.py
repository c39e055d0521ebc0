"""The lead-pipelines surface (/v1/pipelines, /v1/columns, /v1/enrichment, /v1/validation)."""
