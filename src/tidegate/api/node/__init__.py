"""The second HTTP adapter: Ocean Node's protocol (ocean.js >= 6), over the same commands.

One module per route group; each has its own request models and renderers. Routes whose
path the classic Provider API also has (nonce, encrypt, decrypt, initialize, download)
stay one route each, in :mod:`tidegate.api.endpoints`: the request itself says which
generation sent it (docs/ocean-node.md); the Ocean Node side of those is here
(:mod:`.credentials`, :mod:`.encryption`).
"""

from __future__ import annotations

from tidegate.api.routes import Endpoint


def node_endpoints() -> list[Endpoint]:
    """The routes only Ocean Node's protocol has."""
    from tidegate.api.node import auth_tokens, compute, direct, files

    return [*files.ENDPOINTS, *auth_tokens.ENDPOINTS, *direct.ENDPOINTS, *compute.ENDPOINTS]
