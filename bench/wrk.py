"""wrk runs: plain GETs, or pre-signed URL lists (one file, one wallet, per connection).

Every run uses a Lua ``done()`` that prints the summary as one JSON line, so no
text output of wrk is parsed. For URL lists each wrk thread drives exactly one
connection (``-t N -c N``) and reads its own file, so one wallet's nonces reach the
server in order.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DONE = r"""
function status_json()
  -- per-status counts, when the script tallied them (URL lists do)
  if threads == nil then return "{}" end
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    if counts then
      for status, n in pairs(counts) do total[status] = (total[status] or 0) + n end
    end
  end
  local parts = {}
  for status, n in pairs(total) do parts[#parts + 1] = string.format('"%d":%d', status, n) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"statuses":' .. status_json() .. ',"requests":%d,' ..
    '"bytes":%d,"duration_us":%d,"status_errors":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.bytes, summary.duration, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

URL_LIST = r"""
local counter = 0
threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function init(args)
  paths = {}
  for line in io.lines(args[1] .. "/" .. id .. ".txt") do paths[#paths + 1] = line end
  index = 0
end
function request()
  index = index + 1
  if index > #paths then index = #paths end  -- a replayed nonce: counted as an error
  return wrk.format("GET", paths[index])
end
"""


@dataclass(frozen=True)
class WrkResult:
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int] | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        """Successful (2xx) responses per second."""
        return max(0, self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"connections": self.connections, "rps": round(self.rps, 1),
                "ok_rps": round(self.ok_rps, 1),
                "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "max_ms": round(self.max_ms, 3), "errors": self.errors,
                "requests": self.requests, "statuses": self.statuses or {}}


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    return binary


def _scripts(workdir: Path) -> tuple[Path, Path]:
    plain, urls = workdir / "wrk_done.lua", workdir / "wrk_urls.lua"
    if not plain.exists():
        plain.write_text(DONE)
        urls.write_text(URL_LIST + DONE)
    return plain, urls


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"  # wrk takes whole seconds


def _run(argv: list[str], connections: int, timeout: float) -> WrkResult:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-800:]}"
                           f"{done.stderr[-800:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(int(data[k]) for k in ("status_errors", "connect_errors", "read_errors",
                                        "write_errors", "timeouts"))
    return WrkResult(connections, int(data["requests"]), data["duration_us"] / 1e6, errors,
                     data["p50_us"] / 1000, data["p99_us"] / 1000, data["max_us"] / 1000,
                     {str(k): int(v) for k, v in data.get("statuses", {}).items()})


def run_get(url: str, connections: int, seconds: float, workdir: Path,
            headers: Sequence[str] = ()) -> WrkResult:
    """``wrk --latency`` on one URL (1 thread up to 1 connection, else 2 threads);
    ``headers`` (``"Name: value"``) are sent with every request."""
    plain, _ = _scripts(workdir)
    threads = 1 if connections == 1 else 2
    argv = [wrk_binary(), "-t", str(threads), "-c", str(connections), "-d", _duration(seconds),
            "--latency", "--timeout", "10s", "-s", str(plain),
            *(arg for header in headers for arg in ("-H", header)), url]
    return _run(argv, connections, seconds + 30)


def run_url_lists(base_url: str, lists: list[list[str]], seconds: float,
                  workdir: Path) -> WrkResult:
    """One connection per list, each sending its own paths in order."""
    _, script = _scripts(workdir)
    folder = workdir / "urls"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for index, paths in enumerate(lists):
        (folder / f"{index}.txt").write_text("\n".join(paths) + "\n")
    n = len(lists)
    argv = [wrk_binary(), "-t", str(n), "-c", str(n), "-d", _duration(seconds), "--latency",
            "--timeout", "10s", "-s", str(script), base_url, "--", str(folder)]
    return _run(argv, n, seconds + 30)
