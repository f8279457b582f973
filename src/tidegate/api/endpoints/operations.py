"""Operations: liveness, readiness, Prometheus metrics, OpenAPI and its UI.

The UI is Swagger UI from the ``swagger-ui-bundle`` wheel, served by Tidegate
itself, so ``/docs`` works offline and air-gapped (no CDN).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from tidegate.api.context import services
from tidegate.api.openapi import openapi_document
from tidegate.api.params import NoParams, Params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.chain.clients import ChainConfig

_DOCS_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Tidegate API</title>
<link rel="icon" type="image/png" href="ASSETS/favicon-32x32.png">
<link rel="stylesheet" href="ASSETS/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="ASSETS/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "OPENAPI_URL", dom_id: "#ui"});</script>
</body></html>"""

# Only what the page loads; nothing else of the bundle's directory is reachable.
_DOCS_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_DOCS_DIR = Path(str(swagger_ui_path))


async def get_health(request: Request, _: NoParams) -> Response:
    return JsonResponse({"status": "ok"})


async def _chain_ok(chain: ChainConfig) -> bool:
    try:
        await asyncio.wait_for(chain.web3.eth.block_number, timeout=3)
    except Exception:  # any failure means "not ready"; the reason is not for this answer
        return False
    return True


async def get_ready(request: Request, _: NoParams) -> Response:
    """200 when the store and every chain RPC answer; 503 naming what does not.

    ``compute`` is ``ok`` or ``unavailable`` with the reason in ``reasons.compute``
    (no working sandbox, ...). It does not make the answer 503: every route but
    compute still serves, and ``computeEnvironments`` then lists no environment.
    """
    svc = services(request)
    try:
        await svc.store.ping()
        store_ok = True
    except Exception:
        store_ok = False
    chains = list(svc.chains.by_id.values())
    results = await asyncio.gather(*(_chain_ok(c) for c in chains))
    compute_refusal = await svc.engine.unavailable()
    body: dict[str, Any] = {
        "status": "ready", "store": "ok" if store_ok else "unavailable",
        "chains": {str(c.chain_id): "ok" if ok else "unavailable"
                   for c, ok in zip(chains, results, strict=True)},
        "compute": "ok" if compute_refusal is None else "unavailable"}
    if compute_refusal is not None:
        body["reasons"] = {"compute": compute_refusal.message}
    if not store_ok or not all(results):
        body["status"] = "not ready"
        return JsonResponse({**body, "error": "A dependency is unavailable.",
                             "code": "service_unavailable"}, status_code=503)
    return JsonResponse(body)


async def get_metrics(request: Request, _: NoParams) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def get_openapi(request: Request, _: NoParams) -> Response:
    settings = services(request).settings
    return JsonResponse(openapi_document(request.app.state.endpoints, settings.root_path))


async def get_docs(request: Request, _: NoParams) -> Response:
    root = services(request).settings.root_path
    return HTMLResponse(_DOCS_HTML.replace("OPENAPI_URL", root + "/openapi.json")
                        .replace("ASSETS", root + "/docs/assets"))


class DocsAssetPath(Params):
    name: str


async def get_docs_asset(request: Request, p: DocsAssetPath) -> Response:
    name = p.name
    media_type = _DOCS_ASSETS.get(name)
    if media_type is None:
        return JsonResponse({"error": "Not found.", "code": "not_found"}, status_code=404)
    return FileResponse(_DOCS_DIR / name, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=86400"})


ENDPOINTS = [
    Endpoint("health", "GET", "/health", get_health, "Liveness", source="none", service=False,
             static=True),
    Endpoint("ready", "GET", "/health/ready", get_ready,
             "Readiness: store and chain RPCs (503 if not); compute engine (ok or why not)",
             source="none", service=False),
    Endpoint("metrics", "GET", "/metrics", get_metrics, "Prometheus metrics", source="none",
             service=False, static=True),
    Endpoint("openapi", "GET", "/openapi.json", get_openapi, "This OpenAPI document",
             source="none", service=False, static=True),
    Endpoint("docs", "GET", "/docs", get_docs, "Swagger UI", source="none", service=False,
             static=True),
    Endpoint("docsAsset", "GET", "/docs/assets/{name}", get_docs_asset,
             "Swagger UI's files (served by Tidegate, no CDN)", params=DocsAssetPath,
             source="path", service=False, static=True),
]
