"""Docker e2e probe: fork up to 500 sleeping children; the pids limit stops it early."""

import os
import time

children = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
        children += 1
except OSError as exc:
    print("fork refused:", exc, flush=True)
with open("/data/outputs/children", "w") as out:
    out.write(str(children))
print("children", children, flush=True)
