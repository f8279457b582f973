"""The dev wing: ``tidegate dev``, ``deploy-contracts`` and ``publish``, and their chains.

Development and publishing tooling, not the service: the dev chains (anvil, and the
in-process eth-tester chain with its JSON-RPC shim), the Ocean contract deployment,
synchronous Ocean transactions, and asset publishing. ``tidegate serve`` never imports
this package (the CLI imports it inside the commands that need it, and
``tests/unit/test_layers.py`` checks that no other package does). The in-process chain
needs the ``devchain`` extra (``pip install 'tidegate[devchain]'``: eth-tester, py-evm).
"""
