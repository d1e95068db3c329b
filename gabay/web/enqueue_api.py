"""Enqueue over HTTP, for platforms not written in Python: ``/api/v1/``, bearer tokens per client.

``POST /api/v1/questions`` (a question request) and ``POST /api/v1/submissions`` (an exam
submission) call the entry actor's own ``send()``: the same validation, the same idempotency
(``request_id``, ``response_id``: a repeat answers the same job id), the same job record. They
answer ``202 {"job_id": ..., "status_url": ...}``; a bad body ``422`` with every bad field in
``fields``. ``GET /api/v1/jobs/<id>`` is the job's status (the typed record of
:mod:`gabay.client`). ``GET /api/v1/openapi.json`` describes it all and needs no token.

A client sends ``Authorization: Bearer <token>``; ``API_TOKENS`` holds ``name:<SHA-256 hex>`` of
each client's token (``gabay api-token create NAME`` makes one), so the server never stores a
token. These endpoints take no cookie and no basic authentication: the operators' login does not
open them, a token does not open the dashboard, and with no ambient credential there is nothing
for a cross-site request to ride on. Logs name the client and the job id, never the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from gabay.client import JobsClient
from gabay.errors import InvalidInput
from gabay.web import openapi
from gabay.web.responses import json_error, json_response

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/"
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Path of an enqueue endpoint -> the name of the entry actor whose ``send`` it calls.
ENTRY_ACTORS = {"questions": "retrieve_passages", "submissions": "process_form_response"}

URLS = Map([
    Rule("/api/v1/openapi.json", endpoint="openapi", methods=["GET"]),
    Rule("/api/v1/questions", endpoint="questions", methods=["POST"]),
    Rule("/api/v1/submissions", endpoint="submissions", methods=["POST"]),
    Rule("/api/v1/jobs/<job_id>", endpoint="job", methods=["GET"]),
])


class Sender(Protocol):
    """An entry actor: ``send(payload)`` validates, enqueues and returns the job id."""

    def send(self, payload: Any) -> str: ...


def token_digest(token: str) -> str:
    """What API_TOKENS holds for a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class BearerTokens:
    """The clients of API_TOKENS; a request's token is compared with every one in constant time."""

    def __init__(self, digests: Mapping[str, str]) -> None:
        self.digests = dict(digests)

    def client_of(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = token_digest(token.strip())
        found = None
        for name, known in self.digests.items():
            if hmac.compare_digest(known, digest):
                found = name
        return found


class EnqueueApi:
    """The ``/api/v1/`` endpoints; ``senders`` maps ``questions``/``submissions`` to the actors."""

    def __init__(self, tokens: BearerTokens, senders: Mapping[str, Sender], jobs: JobsClient) -> None:
        self.tokens = tokens
        self.senders = dict(senders)
        self.jobs = jobs

    @staticmethod
    def handles(path: str) -> bool:
        return path.startswith(PREFIX)

    def __call__(self, request: Request) -> Response:
        try:
            endpoint, args = URLS.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return json_error(exc.code or 400, exc.description or exc.name)
        if endpoint == "openapi":
            return Response(openapi.document_json(), mimetype="application/json")
        client = self.tokens.client_of(request)
        if client is None:
            response = json_error(401, "a valid bearer token is required (Authorization: Bearer <token>)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="gabay"'
            return response
        if endpoint == "job":
            job = self.jobs.get(args["job_id"])
            return json_response({**job.model_dump(mode="json"), "cost_usd": job.cost_usd,
                                  "total_tokens": job.total_tokens})
        return self._enqueue(request, endpoint, client)

    def _enqueue(self, request: Request, endpoint: str, client: str) -> Response:
        if request.mimetype != "application/json":
            return json_error(415, "the body must be JSON (Content-Type: application/json)")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return json_error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            payload = json.loads(request.get_data(cache=False))
        except ValueError:
            return json_error(400, "the body is not valid JSON")
        sender = self.senders.get(endpoint)
        if sender is None:
            return json_error(503, f"this server has no {endpoint} actor")
        try:
            job_id = sender.send(payload)
        except InvalidInput as exc:
            return json_error(422, str(exc), fields=bad_fields(exc))
        logger.info("API client %s enqueued job %s (%s)", client, job_id, endpoint)
        status_url = f"{request.script_root}{PREFIX}jobs/{job_id}"
        response = json_response({"job_id": job_id, "status_url": status_url}, status=202)
        response.headers["Location"] = status_url
        return response


def bad_fields(exc: InvalidInput) -> list[dict[str, str | None]]:
    """Every bad field of a refused payload: ``[{"field": "answers.0.max_points", "message": ...}]``.

    The parsers raise InvalidInput ``from None`` with a one-line message; the ValidationError they
    caught stays its ``__context__``, with every problem (the message may stop at a few). An
    InvalidInput without one (not a JSON object, too large, a response id sent before with
    other content) is one entry whose field is null.
    """
    context = exc.__context__
    if isinstance(context, ValidationError):
        return [{"field": ".".join(str(part) for part in error["loc"]) or None,
                 "message": str(error["msg"]).removeprefix("Value error, ")}
                for error in context.errors()]
    return [{"field": None, "message": str(exc)}]


def entry_senders(broker: Any) -> dict[str, Sender]:
    """The entry actors declared on ``broker`` (the dashboard's, which imported gabay.actors)."""
    declared = set(broker.get_declared_actors())
    return {path: broker.get_actor(name) for path, name in ENTRY_ACTORS.items() if name in declared}
