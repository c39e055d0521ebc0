"""The error body of each of the five surfaces, pinned (DESIGN.md section 1)."""

from __future__ import annotations

import pytest

from openenrich.errors import (
    BadRequest,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    Surface,
    Unauthorized,
    describe_validation_errors,
    render,
    surface_for_path,
)


@pytest.mark.parametrize(
    ("path", "surface"),
    [
        ("/ingest", Surface.STREAMS),
        ("/streams/events/dlq", Surface.STREAMS),
        ("/usage", Surface.STREAMS),
        ("/health", Surface.STREAMS),
        ("/v1/streams/ingest", Surface.STREAM_INGEST),
        ("/v1/pipelines/p1/leads", Surface.LEADS),
        ("/v1/enrichment/start", Surface.LEADS),
        ("/api/records/r1", Surface.ENTITIES),
        ("/api/auth/api-keys", Surface.ENTITIES),
        ("/api/v1/runs/run_1", Surface.VERIFY),
    ],
)
def test_each_path_belongs_to_its_surface(path: str, surface: Surface) -> None:
    assert surface_for_path(path) is surface


def test_streams_body_is_a_message() -> None:
    assert render(Surface.STREAMS, NotFound("Stream 'x' not found")) == (
        404,
        {"error": "Stream 'x' not found"},
    )


def test_stream_ingest_body_is_a_code_and_detail() -> None:
    invalid = InvalidRequest("The 'timestamp' field must be a valid ISO 8601 string.")
    assert render(Surface.STREAM_INGEST, invalid) == (
        400,
        {
            "error": "invalid_format",
            "detail": "The 'timestamp' field must be a valid ISO 8601 string.",
        },
    )
    assert render(Surface.STREAM_INGEST, Unauthorized()) == (
        401,
        {"error": "invalid_api_key", "detail": "Invalid, revoked, or expired API key"},
    )


def test_leads_body_is_a_message_with_the_fields_the_reference_adds() -> None:
    quota = PaymentRequired("Lead quota exceeded", extra={"current_count": 100, "quota_limit": 100})
    assert render(Surface.LEADS, quota) == (
        402,
        {"error": "Lead quota exceeded", "current_count": 100, "quota_limit": 100},
    )
    assert render(Surface.LEADS, BadRequest("invalid enrichment_type")) == (
        400,
        {"error": "invalid enrichment_type"},
    )


def test_entities_body_is_a_detail() -> None:
    assert render(Surface.ENTITIES, NotFound("Record not found")) == (
        404,
        {"detail": "Record not found"},
    )


def test_verify_body_is_an_error_object_with_code_and_run_id() -> None:
    error = PaymentRequired(
        "Organisation has no credits remaining", code="insufficient_credits", run_id="run_9f3a2c"
    )
    assert render(Surface.VERIFY, error) == (
        402,
        {
            "error": {
                "code": "insufficient_credits",
                "message": "Organisation has no credits remaining",
                "run_id": "run_9f3a2c",
            }
        },
    )
    assert render(Surface.VERIFY, Unauthorized()) == (
        401,
        {"error": {"code": "invalid_api_key", "message": "Invalid, revoked, or expired API key"}},
    )


def test_invalid_request_is_422_on_verify_and_400_elsewhere() -> None:
    error = InvalidRequest("metadata: must be at most 2048 bytes")
    assert render(Surface.VERIFY, error)[0] == 422
    assert render(Surface.VERIFY, error)[1]["error"]["code"] == "invalid_request"
    for surface in (Surface.STREAMS, Surface.STREAM_INGEST, Surface.LEADS, Surface.ENTITIES):
        assert render(surface, error)[0] == 400


def test_status_travels_with_the_error_class() -> None:
    assert render(Surface.STREAMS, PayloadTooLarge("Payload too large")) == (
        413,
        {"error": "Payload too large"},
    )
    assert render(Surface.VERIFY, RateLimited("slow down"))[1]["error"]["code"] == "rate_limited"


def test_validation_errors_name_the_fields() -> None:
    errors = [
        {"type": "missing", "loc": ("body", "message"), "msg": "Field required"},
        {"type": "int_parsing", "loc": ("body", "limit"), "msg": "Input should be an integer"},
    ]
    assert describe_validation_errors(errors) == (
        "message: is required; limit: Input should be an integer"
    )
    assert describe_validation_errors([{"type": "json_invalid", "loc": ("body", 1)}]) == (
        "Request body is not valid JSON"
    )
