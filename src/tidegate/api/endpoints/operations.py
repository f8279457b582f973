"""Operations: liveness, readiness, Prometheus metrics, OpenAPI and its UI."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from tidegate.api.context import services
from tidegate.api.openapi import openapi_document
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.chain.clients import ChainConfig

_DOCS_HTML = """<!doctype html><html><head><title>Tidegate API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "OPENAPI_URL", dom_id: "#ui"});</script>
</body></html>"""


async def get_health(request: Request) -> Response:
    return JsonResponse({"status": "ok"})


async def _chain_ok(chain: ChainConfig) -> bool:
    try:
        await asyncio.wait_for(chain.web3.eth.block_number, timeout=3)
    except Exception:  # any failure means "not ready"; the reason is not for this answer
        return False
    return True


async def get_ready(request: Request) -> Response:
    """200 when the store and every chain RPC answer; 503 naming what does not."""
    svc = services(request)
    try:
        await svc.store.ping()
        store_ok = True
    except Exception:
        store_ok = False
    chains = list(svc.chains.by_id.values())
    results = await asyncio.gather(*(_chain_ok(c) for c in chains))
    body = {"status": "ready", "store": "ok" if store_ok else "unavailable",
            "chains": {str(c.chain_id): "ok" if ok else "unavailable"
                       for c, ok in zip(chains, results, strict=True)}}
    if not store_ok or not all(results):
        body["status"] = "not ready"
        return JsonResponse({**body, "error": "A dependency is unavailable.",
                             "code": "service_unavailable"}, status_code=503)
    return JsonResponse(body)


async def get_metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def get_openapi(request: Request) -> Response:
    settings = services(request).settings
    return JsonResponse(openapi_document(request.app.state.endpoints, settings.root_path))


async def get_docs(request: Request) -> Response:
    url = services(request).settings.root_path + "/openapi.json"
    return HTMLResponse(_DOCS_HTML.replace("OPENAPI_URL", url))


ENDPOINTS = [
    Endpoint("health", "GET", "/health", get_health, "Liveness", body="none", service=False),
    Endpoint("ready", "GET", "/health/ready", get_ready, "Readiness (store reachable)",
             body="none", service=False),
    Endpoint("metrics", "GET", "/metrics", get_metrics, "Prometheus metrics", body="none",
             service=False),
    Endpoint("openapi", "GET", "/openapi.json", get_openapi, "This OpenAPI document",
             body="none", service=False),
    Endpoint("docs", "GET", "/docs", get_docs, "Swagger UI", body="none", service=False),
]
