"""Docker e2e probe: log, then sleep far longer than the test waits (to be stopped)."""

import time

print("started", flush=True)
time.sleep(300)
print("never stopped", flush=True)
