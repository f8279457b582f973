"""The consumer side: order, download and compute against any Ocean provider.

A client, not part of the server: it speaks HTTP to a provider and an Aquarius
(metadata cache) and JSON-RPC to the chain, as ocean.py 3.1 and ocean.js 3.x do.
From the rest of Tidegate it uses only pure helpers (the signed-message builders,
the provider-fee parser and the ocean-contracts ABIs).
"""
