"""The FastAPI app factory every service uses: lifespan, health, metrics, errors, auth, limits."""

from __future__ import annotations

import asyncio
import functools
import gc
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bothways import db, kafka, metrics
from bothways.errors import BodyTooLarge, DomainError, Forbidden, Unauthenticated
from bothways.events import Topic
from bothways.logs import configure_logging
from bothways.outbox import OutboxRelay
from bothways.scheduler import DueStep, Scheduler
from bothways.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the lifespan opened; routes reach it through dependencies, never through globals."""

    settings: ServiceSettings
    pool: db.Pool
    producer: AIOKafkaProducer
    relay: OutboxRelay | None = None
    consumer: kafka.ConsumerRunner | None = None
    scheduler: Scheduler | None = None
    extras: dict[str, Any] = field(default_factory=dict)


# Service-specific parts of the lifespan (e.g. loading configuration): opened after the pool and the
# producer and before the relay and the consumer; closed in reverse.
LifespanPart = Callable[[AsyncExitStack, Runtime], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    """Everything that makes one service different from the others."""

    name: str
    version: str
    routers: Sequence[APIRouter]
    migrations: Sequence[db.Migration]
    consumes: Sequence[Topic] = ()
    produces: Sequence[Topic] = ()
    handlers: kafka.Handlers = field(default_factory=dict)
    # Handlers that take a partition batch at once (see bothways/kafka.py), for read models built in bulk.
    batch_handlers: kafka.BatchHandlers = field(default_factory=dict)
    refreshers: Sequence[metrics.Refresher] = ()
    parts: Sequence[LifespanPart] = ()
    # Work due at an instant (see bothways/scheduler.py), built from the runtime once it is open.
    due_work: Callable[[Runtime], DueStep] | None = None
    # Path prefixes whose bodies are uploads: they get max_upload_bytes instead of max_body_bytes.
    upload_prefixes: tuple[str, ...] = ()


def create_app(spec: ServiceSpec, settings: ServiceSettings, *, freeze_heap: bool = False) -> FastAPI:
    """Build a service's app: the core lifespan, the service's routers, then the common endpoints.

    `freeze_heap` is for the service's own process (see `freeze_start_up_heap`), not for tests that
    start many apps in one process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, service=spec.name)
        async with AsyncExitStack() as stack:
            app.state.runtime = await open_runtime(stack, spec, settings)
            if freeze_heap:
                freeze_start_up_heap()
            log.info("service started", extra={"url": f"http://{settings.host}:{settings.port}"})
            yield
        log.info("service stopped")

    app = FastAPI(title=f"Bothways {spec.name}", version=spec.version, lifespan=lifespan)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        upload_prefixes=spec.upload_prefixes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestMetrics)
    install_error_handlers(app)
    # The service's routes first: routes are matched in order, and a webhook is asked for far more
    # often than a health check.
    for router in spec.routers:
        app.include_router(router)
    app.include_router(health_router(spec))
    return app


def freeze_start_up_heap() -> None:
    """Move what start-up left alive (modules, framework, models, pools) out of the cyclic collector's view.

    Those objects live as long as the process, yet every full collection walked all of them: in
    ingest under load the collector took 8% of the CPU, and a third of that after freezing. Garbage
    is collected first, so nothing already unreachable is frozen; reference counting still frees
    frozen objects, only cycles among them are never collected."""
    gc.collect()
    gc.freeze()


async def open_runtime(stack: AsyncExitStack, spec: ServiceSpec, settings: ServiceSettings) -> Runtime:
    """Open pool, migrations, topics, producer, relay, consumer and parts; the stack closes them in reverse."""
    await db.migrate_database(settings.database_url, schema=spec.name, migrations=spec.migrations)
    pool = await db.create_pool(
        settings.database_url,
        schema=spec.name,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
    )
    stack.push_async_callback(pool.close)
    topics = {*spec.consumes, *spec.produces, Topic.DEADLETTER}
    ensure_topics = functools.partial(
        kafka.ensure_topics,
        settings.kafka_bootstrap_servers,
        sorted(settings.topic(t) for t in topics),
        partitions=settings.kafka_topic_partitions,
    )
    await ensure_topics()
    producer = kafka.create_producer(settings)
    await producer.start()
    stack.push_async_callback(producer.stop)
    runtime = Runtime(settings=settings, pool=pool, producer=producer)
    # Configuration the handlers depend on is in place before the first record is consumed.
    for part in spec.parts:
        await part(stack, runtime)
    if spec.produces:
        runtime.relay = OutboxRelay(
            pool=pool,
            dsn=settings.database_url,
            producer=producer,
            schema=spec.name,
            topic_name=settings.topic,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            ensure_topics=ensure_topics,
        )
        await runtime.relay.start()
        stack.push_async_callback(runtime.relay.stop)
    if spec.consumes:
        runtime.consumer = kafka.ConsumerRunner(
            settings=settings,
            service=spec.name,
            topics=spec.consumes,
            pool=pool,
            handlers=spec.handlers,
            batch_handlers=spec.batch_handlers,
            dead_letters=producer,
        )
        await runtime.consumer.start()
        stack.push_async_callback(runtime.consumer.stop)
    if spec.due_work is not None:
        runtime.scheduler = Scheduler(
            pool=pool,
            dsn=settings.database_url,
            schema=spec.name,
            step=spec.due_work(runtime),
            batch_size=settings.scheduler_batch_size,
            concurrency=settings.scheduler_concurrency,
        )
        await runtime.scheduler.start()
        stack.push_async_callback(runtime.scheduler.stop)
    return runtime


# --- dependencies -----------------------------------------------------------------------------------


# Dependencies are `async def`: FastAPI runs plain `def` ones in a worker thread on every request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_connection(runtime: RuntimeDep) -> AsyncIterator[db.Connection]:
    async with runtime.pool.acquire() as conn:
        yield conn


Conn = Annotated[db.Connection, Depends(get_connection)]


def require_scope(scope: str) -> Callable[[Request, Runtime], Awaitable[None]]:
    """A dependency that admits a request whose bearer API key carries `scope` (admin implies read)."""

    async def check(request: Request, runtime: RuntimeDep) -> None:
        header = request.headers.get("authorization", "")
        kind, _, presented = header.partition(" ")
        if kind.lower() != "bearer" or not presented:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        scopes = scopes_of(presented.strip(), runtime.settings)
        if scopes is None:
            raise Unauthenticated("unknown API key")
        if scope not in scopes and "admin" not in scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope")

    return check


def scopes_of(presented: str, settings: ServiceSettings) -> frozenset[str] | None:
    """The scopes of a presented key, comparing against every key in constant time."""
    found = None
    for key, scopes in settings.api_keys.items():
        if hmac.compare_digest(key.get_secret_value().encode(), presented.encode()):
            found = scopes
    return found


ReadScope = Depends(require_scope("read"))
AdminScope = Depends(require_scope("admin"))


# --- health and metrics -------------------------------------------------------------------------------


def health_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive (liveness probe)."""
        return {"status": "ok", "service": spec.name}

    @router.get("/readyz")
    async def readyz(runtime: RuntimeDep) -> JSONResponse:
        """The database and the broker are reachable (readiness probe)."""
        checks = {
            "database": await _probe(runtime.pool.fetchval("SELECT 1")),
            "broker": await _probe(runtime.producer.client.fetch_all_metadata()),
        }
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "unavailable", **checks}, 200 if ready else 503)

    @router.get("/metrics", dependencies=[ReadScope], response_class=Response)
    async def read_metrics(runtime: RuntimeDep) -> Response:
        """Prometheus metrics; business figures are read from PostgreSQL at scrape time."""
        await metrics.refresh_all(runtime.pool, [metrics.refresh_outbox_backlog, *spec.refreshers])
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _probe(check: Awaitable[object], seconds: float = 2.0) -> str:
    try:
        await asyncio.wait_for(check, seconds)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


# --- errors -------------------------------------------------------------------------------------------


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": code, "message": message, **extra}


def install_error_handlers(app: FastAPI) -> None:
    """Map every error once: domain errors to their 4xx, validation to 422 naming fields, outages to 503."""

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        extra = {"field": exc.field} if exc.field else {}
        return JSONResponse(error_body(exc.code, exc.message, **extra), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in exc.errors()
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(error_body("validation_failed", message, fields=fields), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    for unavailable in db.UNAVAILABLE_ERRORS:

        @app.exception_handler(unavailable)
        async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
            log.warning("database unavailable", extra={"error": repr(exc)})
            body = error_body("unavailable", "the database is unavailable; retry later")
            return JSONResponse(body, 503, headers={"Retry-After": "5"})


# --- routes -------------------------------------------------------------------------------------------


def invalid_path_parameter(name: str, message: str) -> RequestValidationError:
    """The 422 FastAPI gives a path parameter it refuses, for endpoints that check their own."""
    return RequestValidationError([{"type": "value_error", "loc": ("path", name), "msg": message}])


class DirectRoute(APIRoute):
    """A route for a hot endpoint that takes the Request and its path parameters as matched strings.

    FastAPI resolves and validates every declared parameter per request, which on the webhook route was
    a twelfth of ingest's CPU; this route calls the endpoint straight away instead. The declared
    parameters still document the route in the OpenAPI schema, so the endpoint must check its path
    parameters itself (raising `invalid_path_parameter`), and may declare nothing else (checked here,
    at start)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        dependant = self.dependant
        undeclarable = (
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.body_params,
            dependant.dependencies,
        )
        if any(undeclarable) or dependant.request_param_name is None:
            raise TypeError(f"{path}: a DirectRoute endpoint takes the Request and path parameters only")

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        request_name = self.dependant.request_param_name or "request"

        async def handler(request: Request) -> Response:
            return cast(Response, await endpoint(**{request_name: request}, **request.path_params))

        return handler


# --- middleware ---------------------------------------------------------------------------------------


class BodyLimit:
    """Refuse bodies over the limit: at once from Content-Length, or while streaming a chunked body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        upload_prefixes: tuple[str, ...] = (),
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_prefixes = upload_prefixes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.max_upload_bytes
            if scope["path"].startswith(self.upload_prefixes or ("\0",))
            else self.max_bytes
        )
        message = f"request body exceeds the limit of {limit} bytes"
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await _send_json(send, 413, error_body("body_too_large", message))
                return
            # The server holds a body to its declared length, so only bodies without one are counted.
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            chunk = await receive()
            received += len(chunk.get("body", b""))
            if received > limit:
                raise BodyTooLarge(message)
            return chunk

        await self.app(scope, limited_receive, send)


# Any token is a method to the HTTP parser; the others share one label, so clients cannot add series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """Time every request under its route template (never the raw path: it may hold ids or tokens)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled histograms, kept: looking one up through `labels()` costs a lock and a copy.
        self._durations: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            labels = (method, route, status)
            duration = self._durations.get(labels)
            if duration is None:
                duration = metrics.HTTP_REQUEST_DURATION.labels(method, route, str(status))
                self._durations[labels] = duration
            duration.observe(elapsed)
            if status >= 500:
                log.error("request failed", extra={"route": route, "status": status})


async def _send_json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def serve(spec: ServiceSpec, settings: ServiceSettings) -> None:
    """Run one service under uvicorn; SIGTERM drains the lifespan (consumer, relay, producer, pool)."""
    run_uvicorn(create_app(spec, settings, freeze_heap=True), host=settings.host, port=settings.port)


def run_uvicorn(app: ASGIApp, *, host: str, port: int) -> None:
    """uvicorn as every service runs it (bench/ingest.py serves its bare baseline app the same way)."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # raw paths can carry survey tokens; RequestMetrics records route templates
        timeout_graceful_shutdown=10,
    )


def lazy_app(spec: ServiceSpec, settings_type: type[ServiceSettings]) -> Callable[[str], FastAPI]:
    """A module `__getattr__` serving `app`, so `uvicorn services.<name>.app:app` works and importing
    the module reads no settings and opens nothing."""

    def module_getattr(name: str) -> FastAPI:
        if name == "app":
            return create_app(spec, settings_type())
        raise AttributeError(name)

    return module_getattr
