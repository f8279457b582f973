"""Chain access: clients per chain, Ocean contract artifacts, RPC errors, NFT reads.

Submodules are imported explicitly. The dev chains and transaction helpers live in
:mod:`tidegate.dev` (the in-process chain pulls in eth-tester and py-evm, which the
request path never needs).
"""
