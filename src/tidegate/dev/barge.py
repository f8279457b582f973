"""barge's dev-chain conventions, shared by every dev chain (anvil and the in-process one).

Chain id 8996 and the barge mnemonic with its HD path, so that accounts and the
contract addresses of a fresh deployment match barge, anvil and ganache.
"""

from __future__ import annotations

BARGE_MNEMONIC = "taxi music thumb unique chat sand crew more leg another off lamp"
BARGE_HD_PATH = "m/44'/60'/0'/0"
DEV_CHAIN_ID = 8996
