"""The in-process chain (eth-tester) behind Tidegate's JSON-RPC shim, as a process.

``python -m bench.devchain_node PORT``: used when anvil is not installed, so the chain
does not share the benchmark's own interpreter (and GIL) with the load generators.
"""

from __future__ import annotations

import sys
import threading

from tidegate.dev.devchain import DevChain
from tidegate.dev.rpc_shim import start_rpc_server

if __name__ == "__main__":
    server = start_rpc_server(DevChain(), port=int(sys.argv[1]))
    threading.Event().wait()
