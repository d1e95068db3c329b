"""The OpenAPI 3.1 description of ``/api/v1/``, built from the pydantic models' own JSON schemas.

The request bodies are the schemas of :class:`~gabay.questions.models.QuestionRequest` and
:class:`~gabay.feedback.submission.Submission` (what ``send()`` validates), the job status is
:class:`~gabay.client.QuestionJob` / :class:`~gabay.client.FeedbackJob`: the description cannot
drift from the code. Built once per process (a static document), served as JSON.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

import gabay
from gabay.client import FeedbackJob, QuestionJob
from gabay.feedback.submission import Submission
from gabay.questions.models import QuestionRequest

REF = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    """Every model's schema and the schemas they refer to, by name (one pass: no name clashes)."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (QuestionRequest, "validation"), (Submission, "validation"),
        (QuestionJob, "serialization"), (FeedbackJob, "serialization")]
    _, schema = models_json_schema(models, ref_template=REF)
    return dict(schema.get("$defs", {}))


def _error(description: str, with_fields: bool = False) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(
                model="ValidationProblem" if with_fields else "Error")}}}}


def _enqueue(summary: str, body: str, description: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary, "description": description, "security": [{"bearer": []}],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": {"$ref": REF.format(model=body)}}}},
        "responses": {
            "202": {"description": "enqueued, or the same job again for a repeated id",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"$ref": REF.format(model="Accepted")}}}},
            "400": _error("the body is not JSON"),
            "401": _error("no valid bearer token"),
            "415": _error("the body is not application/json"),
            "422": _error("the body is not valid: every bad field in `fields`", with_fields=True),
            "503": _error("Redis does not answer"),
        }}}


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document."""
    schemas = _schemas()
    schemas.update({
        "Accepted": {"type": "object", "required": ["job_id", "status_url"],
                     "properties": {"job_id": {"type": "string"}, "status_url": {"type": "string"}}},
        "Error": {"type": "object", "required": ["error", "status"],
                  "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
        "ValidationProblem": {"type": "object", "required": ["error", "status", "fields"], "properties": {
            "error": {"type": "string"}, "status": {"type": "integer", "const": 422},
            "fields": {"type": "array", "items": {"type": "object", "required": ["field", "message"],
                                                  "properties": {"field": {"type": ["string", "null"]},
                                                                 "message": {"type": "string"}}}}}},
    })
    return {
        "openapi": "3.1.0",
        "info": {"title": "gabay enqueue API", "version": gabay.__version__,
                 "description": "Enqueue question requests and exam submissions, read job status."},
        "paths": {
            "/api/v1/questions": _enqueue(
                "Generate questions from a document", "QuestionRequest",
                "Idempotent by `request_id`: a request id that is queued, running or done answers "
                "its job id and enqueues nothing (`regenerate: true` runs it again)."),
            "/api/v1/submissions": _enqueue(
                "Email personal feedback on an exam submission", "Submission",
                "Idempotent by `response_id`: the same submission again answers the same job id; "
                "other content under a known response id is refused (422)."),
            "/api/v1/jobs/{job_id}": {"get": {
                "summary": "A job's status, result and callback delivery", "security": [{"bearer": []}],
                "parameters": [{"name": "job_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the job", "content": {"application/json": {"schema": {
                        "oneOf": [{"$ref": REF.format(model="QuestionJob")},
                                  {"$ref": REF.format(model="FeedbackJob")}]}}}},
                    "401": _error("no valid bearer token"),
                    "404": _error("no such job (unknown or expired)"),
                }}},
        },
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@functools.cache
def document_json() -> bytes:
    return json.dumps(document(), indent=2).encode() + b"\n"
