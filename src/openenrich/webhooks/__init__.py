"""Webhook endpoints, Standard-Webhooks signing, and at-least-once delivery from an outbox."""
