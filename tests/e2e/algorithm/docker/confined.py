"""Docker e2e probe: what a job may reach and write (expected: no network, read-only
everywhere but /data/outputs, /data/logs and /tmp). Writes /data/outputs/report.json."""

import errno
import json
import os
import socket

report: dict[str, object] = {}
for name, address in (("tcp_internet", ("1.1.1.1", 80)), ("tcp_loopback", ("127.0.0.1", 80))):
    try:
        socket.create_connection(address, timeout=3).close()
        report[name] = "connected"
    except OSError as exc:
        report[name] = errno.errorcode.get(exc.errno or 0, str(exc))
try:
    socket.getaddrinfo("deb.debian.org", 80)
    report["dns"] = "resolved"
except OSError:
    report["dns"] = "failed"
report["interfaces"] = sorted(os.listdir("/sys/class/net"))
did = json.loads(os.environ["DIDS"])[0]
for path in ("/x", "/etc/x", "/usr/x", "/data/x", f"/data/inputs/{did}/x", "/data/ddos/x",
             "/data/transformations/x", "/tmp/ok", "/data/logs/ok", "/data/outputs/ok"):
    try:
        with open(path, "w") as out:
            out.write("x")
        report[path.replace(did, "<did>")] = "written"
    except OSError as exc:
        report[path.replace(did, "<did>")] = errno.errorcode.get(exc.errno or 0, str(exc))
report["uid"] = os.getuid()
with open("/data/outputs/report.json", "w") as out:
    json.dump(report, out)
print(json.dumps(report), flush=True)
