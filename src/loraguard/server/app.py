"""The FastAPI app: `create_app(config, registry=...)`.

    POST /v1/classify   one item {"body", "rule", ...} or {"items": [...]} → predictions   (API key)
    GET  /v1/adapters   the routing table and per-adapter counters as JSON                  (API key)
    GET  /metrics       Prometheus text                                                     (API key)
    GET  /              the dashboard (HTML, no scripts)                                    (API key)
    GET  /healthz       the process is up                                                   (open)
    GET  /readyz        200 when the base is loaded and an adapter is live, else 503 + why  (open)

Every error is JSON `{"error": {"code", "message", "details"}}` (see `schemas`), unexpected ones
(500 `internal_error`) included; a full item queue is 503 `overloaded` with `Retry-After`. With an API key
configured, protected routes need `Authorization: Bearer KEY` or `X-API-Key: KEY` (compared with
`hmac.compare_digest`), else 401.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from loraguard.errors import MissingExtraError, Overloaded, RequestError

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("loraguard serve", "server") from exc

from loraguard.server.pool import CheckFn
from loraguard.server.reload import RegistryLike
from loraguard.server.schemas import error_body, parse_classify, read_limited
from loraguard.server.service import ClassifierService, ServeConfig

__all__ = ["create_app"]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
log = logging.getLogger("loraguard.server")


def _open_registry(config: ServeConfig) -> tuple[RegistryLike, str]:
    from loraguard.registry import Registry, normalize_base

    return Registry(config.registry_url, lock_timeout=2.0), normalize_base(config.base)


def create_app(
    config: ServeConfig,
    *,
    registry: RegistryLike | None = None,
    check_fn: CheckFn | None = None,
    base_key: str | None = None,
    seed: int | None = None,
) -> Any:
    """A FastAPI app serving `config.base`'s adapters from `registry` (opened from `config.registry_url`
    when not given). The model is loaded when the app starts (its lifespan), not here."""
    from loraguard.server.dashboard import render_dashboard
    from loraguard.server.metrics import CONTENT_TYPE

    if registry is None:
        registry, key = _open_registry(config)
        base_key = base_key or key
    service = ClassifierService(config, registry, check_fn=check_fn, base_key=base_key, seed=seed)
    api_key = config.api_key.encode("utf-8") if config.api_key else None

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="loraguard serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    def _error(exc: RequestError) -> JSONResponse:
        headers: dict[str, str] = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status in (408, 413):  # the body was not read whole: the connection cannot be reused
            headers["Connection"] = "close"
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers or None)

    @app.exception_handler(RequestError)
    async def _request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
        # a bug, not the client's fault: still the documented JSON body (the traceback goes to the log)
        log.error("unhandled error on %s", _request.url.path, exc_info=exc)
        return JSONResponse(
            error_body("internal_error", f"internal server error ({type(exc).__name__}); see the server log"),
            status_code=500,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse(error_body("invalid_request", "invalid request", details), status_code=422)

    if api_key is not None:
        app.add_middleware(
            _ApiKeyMiddleware,
            key=api_key,
            reject=lambda: _error(
                RequestError(
                    401,
                    "unauthorized",
                    "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                )
            ),
        )

    @app.post("/v1/classify")
    async def classify(request: Request) -> JSONResponse:
        received = time.perf_counter()
        raw = await read_limited(
            request.stream(), request.headers, config.limits.max_body_bytes, timeout=config.body_timeout
        )
        items, batch = parse_classify(raw, config.limits)
        predictions = await service.classify(items, received)
        if batch:
            return JSONResponse({"items": [p.to_dict() for p in predictions]})
        return JSONResponse(predictions[0].to_dict())

    @app.get("/v1/adapters")
    async def adapters() -> JSONResponse:
        snap = service.state.snapshot()
        table = service.table
        shares, observed = table.shares(), snap.observed_shares()
        out = []
        for r in table.routes:
            a = snap.adapters.get(r.ref)
            out.append(
                {
                    "ref": r.ref,
                    "name": r.name,
                    "version": r.version,
                    "status": r.status,
                    "mode": r.mode,
                    "weight": r.weight,
                    "share": shares.get(r.ref, 0.0),
                    "observed_share": observed.get(r.ref, 0.0),
                    "requests": a.requests if a else 0,
                    "shadow_predictions": a.shadow_predictions if a else 0,
                    "alerts": [x.to_dict() for x in a.alerts] if a else [],
                }
            )
        alerts = [
            {"kind": a.kind, "ref": a.ref, "reason": a.reason, "message": a.message, "count": a.count}
            for a in snap.server_alerts
        ]
        return JSONResponse({"revision": table.revision, "adapters": out, "server_alerts": alerts})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(service.state.snapshot(), service.table), media_type=CONTENT_TYPE)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ok, why = service.readiness()
        body = {"ready": ok, "reason": why, "live": [r.ref for r in service.table.live]}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/")
    async def dashboard() -> HTMLResponse:
        from loraguard.report.html import CSP

        html = render_dashboard(
            service.state.snapshot(),
            service.table,
            base=config.base,
            ready=service.readiness(),
            started_at=service.started_at,
            refresh_seconds=config.refresh_seconds,
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})

    return app


class _ApiKeyMiddleware:
    """Pure ASGI middleware (no per-request task overhead): every path but `OPEN_PATHS` needs the key."""

    def __init__(self, app: Any, *, key: bytes, reject: Any) -> None:
        self.app, self.key, self.reject = app, key, reject

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") not in OPEN_PATHS and not self._allowed(scope):
            await self.reject()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Any) -> bool:
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", ())}
        given = headers.get("x-api-key")
        if given is None:
            scheme, _, token = headers.get("authorization", b"").partition(b" ")
            given = token.strip() if scheme.lower() == b"bearer" else None
        return given is not None and hmac.compare_digest(given, self.key)
