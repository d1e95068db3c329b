"""The dashboard's one WSGI application: health page, JSON API, metrics, and dramatiq-dashboard.

Every request except ``/healthz`` is authenticated first; every POST must then pass the
cross-site checks of :mod:`gabay.web.csrf`. dramatiq-dashboard is mounted under ``/dramatiq``
with its prefix stripped, on the gabay broker (which knows every queue because the actors are
imported, and has no Prometheus middleware).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq_dashboard import DashboardApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from gabay.client import JobsClient
from gabay.console.jobs import JobConsole
from gabay.errors import GabayError, JobNotFound, StoreUnavailable, UnknownQueue
from gabay.queues import ALL_QUEUES
from gabay.web import metrics, view
from gabay.web.api import Api, not_found
from gabay.web.auth import BasicAuth
from gabay.web.console import ConsolePages
from gabay.web.csrf import SAFE_METHODS, CsrfGuard, same_origin
from gabay.web.dramatiq_views import make_private
from gabay.web.enqueue_api import BearerTokens, EnqueueApi, entry_senders
from gabay.web.pages import Pages, load_static
from gabay.web.responses import SECURITY_HEADERS, json_error, json_response, secure
from gabay.web.sources import Sources

logger = logging.getLogger(__name__)

DRAMATIQ_PATH = "/dramatiq"
StartResponse = Callable[..., Any]
ACTIONS = {"pause", "resume", "restart"}

URLS = Map([
    Rule("/", endpoint="index"),
    Rule("/live", endpoint="live"),
    Rule("/static/<name>", endpoint="static"),
    Rule("/favicon.ico", endpoint="static", defaults={"name": "favicon.svg"}),
    Rule("/metrics", endpoint="metrics"),
    Rule("/api", endpoint="index_of_api"),
    Rule("/api/", endpoint="index_of_api"),
    Rule("/api/csrf", endpoint="csrf"),
    Rule("/api/status", endpoint="status"),
    Rule("/api/queues", endpoint="queues"),
    Rule("/api/queues/<name>/throughput", endpoint="throughput"),
    Rule("/api/workers", endpoint="workers"),
    Rule("/api/jobs", endpoint="jobs"),
    Rule("/api/jobs/<job_id>", endpoint="job"),
    Rule("/api/failures", endpoint="failures"),
    Rule("/api/llm", endpoint="llm"),
    Rule("/api/schedules", endpoint="schedules"),
    Rule("/api/exams", endpoint="exams"),
    Rule("/api/exams/<form_id>/analytics", endpoint="exam_analytics"),
    Rule("/exams/<form_id>", endpoint="exam_page"),
    # -- operator console (gabay/web/console.py) --
    Rule("/jobs", endpoint="console_jobs"),
    Rule("/jobs/bulk", endpoint="console_act", methods=["POST"]),
    Rule("/jobs/<job_id>", endpoint="console_job"),
    Rule("/jobs/<job_id>/<any(cancel, retry):action>", endpoint="console_act", methods=["POST"]),
    Rule("/api/queues/<name>/pause", endpoint="pause", methods=["POST"]),
    Rule("/api/queues/<name>/resume", endpoint="resume", methods=["POST"]),
    Rule("/api/pause", endpoint="pause", methods=["POST"]),
    Rule("/api/resume", endpoint="resume", methods=["POST"]),
    Rule("/api/restart", endpoint="restart", methods=["POST"]),
], strict_slashes=False)


class DashboardWeb:
    """The WSGI callable served by ``gabay dashboard``."""

    def __init__(self, sources: Sources, broker: RedisBroker, *, url_prefix: str = "",
                 csrf_secret: bytes | None = None) -> None:
        settings = sources.settings
        self.sources = sources
        self.api = Api(sources)
        self.pages = Pages()
        self.static = load_static()
        self.auth = BasicAuth(settings.dashboard_username, settings.dashboard_password)
        self.csrf = CsrfGuard(csrf_secret)
        self.console = ConsolePages(JobConsole(sources.jobs.client, sources.jobs, settings.keys))
        for queue in ALL_QUEUES:  # dramatiq-dashboard lists only the queues the broker declared
            broker.declare_queue(queue)
        self.dramatiq = DashboardApp(broker, url_prefix.rstrip("/") + DRAMATIQ_PATH)
        make_private(self.dramatiq, sources.stats)  # its message pages show ids and reasons only
        # -- HTTP enqueue (gabay/web/enqueue_api.py): bearer tokens, not the operators' login --
        self.enqueue = EnqueueApi(BearerTokens(settings.api_tokens), entry_senders(broker),
                                  JobsClient(sources.jobs))
        if not self.auth.enabled:
            logger.warning("DASHBOARD_PASSWORD is not set: the dashboard serves WITHOUT "
                           "authentication (loopback only); anyone on this machine can use it")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/healthz":
            return self._safely(lambda: self.api.healthz(request))(environ, start_response)
        if self.enqueue.handles(request.path):  # its own bearer tokens, before the operators' login
            return self._safely(lambda: self.enqueue(request))(environ, start_response)
        user = self.auth.authenticate(request)
        if user is None:
            return self._refused()(environ, start_response)
        if request.path == DRAMATIQ_PATH or request.path.startswith(DRAMATIQ_PATH + "/"):
            return self._dramatiq(request, environ, start_response)
        return self._safely(lambda: self._dispatch(request, user))(environ, start_response)

    def _dispatch(self, request: Request, user: str) -> Response:
        try:
            endpoint, args = URLS.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            if exc.code == 404:
                return not_found(request.path)
            return json_error(exc.code or 400, exc.description or exc.name)
        if endpoint in ACTIONS or request.method == "POST":  # every POST proves its origin
            refused = self.csrf.rejection(request, user)
            if refused:
                logger.warning("refused %s %s: %s", request.method, request.path, refused)
                return json_error(403, refused)
        if endpoint.startswith("console_"):
            return self._console(request, user, endpoint, args)
        if endpoint in {"index", "live", "static", "metrics", "csrf", "exam_page"}:
            return getattr(self, "_" + endpoint)(request, user, **args)
        response: Response = getattr(self.api, endpoint)(request, **args)
        return response

    def _index(self, request: Request, user: str) -> Response:
        response = Response(mimetype="text/html")
        session = self.csrf.ensure_session(request, response)
        response.set_data(self.pages.index(view.overview(self.sources), **self._context(request, user),
                                           csrf_token=self.csrf.token(user, session)))
        return secure(response, page=True)

    def _live(self, request: Request, user: str) -> Response:
        html = self.pages.live(view.overview(self.sources), **self._context(request, user))
        return secure(Response(html, mimetype="text/html"), page=True)

    def _console(self, request: Request, user: str, endpoint: str, args: Mapping[str, Any]) -> Response:
        """The jobs pages; every page carries this session's CSRF token for its forms."""
        response = Response()
        session = self.csrf.ensure_session(request, response)
        context = {**self._context(request, user), "csrf_token": self.csrf.token(user, session)}
        page: Response = getattr(self.console, endpoint.removeprefix("console_"))(request, context, **args)
        for cookie in response.headers.getlist("Set-Cookie"):
            page.headers.add("Set-Cookie", cookie)
        return page

    def _exam_page(self, request: Request, user: str, form_id: str) -> Response:
        stored = self.sources.exams.analytics(form_id)
        html = self.pages.exam(form_id, stored, **self._context(request, user))
        return secure(Response(html, status=200 if stored else 404, mimetype="text/html"), page=True)

    def _csrf(self, request: Request, user: str) -> Response:
        response = json_response({})
        session = self.csrf.ensure_session(request, response)
        response.set_data(json.dumps({"csrf_token": self.csrf.token(user, session)}) + "\n")
        return response

    def _static(self, request: Request, user: str, name: str) -> Response:
        if name not in self.static:
            return not_found(request.path)
        body, mimetype = self.static[name]
        return Response(body, content_type=mimetype)

    def _metrics(self, request: Request, user: str) -> Response:
        return Response(metrics.render(self.sources), content_type=metrics.CONTENT_TYPE)

    def _context(self, request: Request, user: str) -> dict[str, Any]:
        return {"root": request.script_root, "user": user, "auth_enabled": self.auth.enabled}

    def _dramatiq(self, request: Request, environ: dict[str, Any],
                  start_response: StartResponse) -> Iterable[bytes]:
        """dramatiq-dashboard with its prefix stripped; its POSTs must come from this origin."""
        if request.path == DRAMATIQ_PATH:
            return redirect(request.script_root + DRAMATIQ_PATH + "/")(environ, start_response)
        if request.method not in SAFE_METHODS and not same_origin(request):
            logger.warning("refused cross-origin %s %s", request.method, request.path)
            response = json_error(403, "cross-origin request refused (Origin or Referer must name "
                                       "this host)")
            return secure(response)(environ, start_response)
        inner = {**environ, "PATH_INFO": request.path[len(DRAMATIQ_PATH):]}

        def with_headers(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            present = {name.lower() for name, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS.items() if k.lower() not in present]
            return start_response(status, headers, *exc_info)

        return self.dramatiq(inner, with_headers)

    def _refused(self) -> Response:
        if not self.auth.enabled:
            return secure(json_error(403, "without DASHBOARD_PASSWORD only loopback host names "
                                          "(127.0.0.1, localhost) are served"))
        response = json_error(401, "authentication required")
        response.headers["WWW-Authenticate"] = f'Basic realm="{self.auth.realm}", charset="UTF-8"'
        return secure(response)

    @staticmethod
    def _safely(handler: Callable[[], Response]) -> Response:
        """Run a handler; gabay and Redis errors become JSON errors without internals."""
        try:
            return secure(handler())
        except (JobNotFound, UnknownQueue) as exc:
            return secure(json_error(404, str(exc)))
        except redis.RedisError as exc:
            logger.warning("Redis error while serving the dashboard: %s", type(exc).__name__)
            return secure(json_error(503, f"Redis unavailable ({type(exc).__name__})"))
        except StoreUnavailable as exc:
            logger.warning("results database error while serving the dashboard: %s", exc)
            return secure(json_error(503, str(exc)))
        except GabayError as exc:
            return secure(json_error(500, str(exc)))
        except Exception:
            logger.exception("dashboard error")
            return secure(json_error(500, "internal error (see the dashboard's log)"))


def create_app(sources: Sources, broker: RedisBroker, *, url_prefix: str = "",
               csrf_secret: bytes | None = None) -> DashboardWeb:
    """The dashboard WSGI application on these sources and this broker."""
    return DashboardWeb(sources, broker, url_prefix=url_prefix, csrf_secret=csrf_secret)
