"""Destinations: where a stream's routed rows go besides the lake (http, elasticsearch,
splunk_hec, syslog, s3), each with its own outbox, retries and dead letters."""
