"""Chain access: Ocean contract artifacts, the in-process dev chain and its JSON-RPC shim.

Submodules are imported explicitly (``tidegate.chain.devchain`` pulls in eth-tester and
py-evm, which the request path never needs).
"""
