"""The compute e2e algorithm: hash every input file, write the digests, log progress.

Published by the drivers as an algorithm asset (container image ``python``, tag
``3.11``, entrypoint ``python $ALGO``); Tidegate's local engine runs it in its
sandbox; the Docker e2e publishes it in the test daemon's Debian image (``ubuntu``
/ ``latest``, ``python3 $ALGO``). It reads ``/data/inputs/<did>/<index>`` for each DID
in ``$DIDS`` and writes one line per file, ``<did> <index> <sha256> <bytes>``, to
``/data/outputs/result.txt``, so a test can compare the output with the published
file's own digest. It also logs the image's marker (``/etc/tidegate-test-image``, which
only the test images have) and its uid.
"""

import hashlib
import json
import os
import pathlib

lines = []
for did in json.loads(os.environ["DIDS"]):
    folder = pathlib.Path("/data/inputs") / did
    for path in sorted((p for p in folder.iterdir() if p.name.isdigit()),
                       key=lambda p: int(p.name)):
        data = path.read_bytes()
        lines.append(f"{did} {path.name} {hashlib.sha256(data).hexdigest()} {len(data)}")
        print(f"hashed {did}/{path.name}: {len(data)} bytes", flush=True)
pathlib.Path("/data/outputs/result.txt").write_text("\n".join(lines) + "\n")
try:
    marker = pathlib.Path("/etc/tidegate-test-image").read_text().strip()
except OSError:
    marker = "none"
print(f"image marker: {marker}, uid {os.getuid()}", flush=True)
print(f"wrote {len(lines)} digest(s)", flush=True)
