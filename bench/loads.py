"""Load generators that are not wrk: curl downloads, a slow reader, a latency probe."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx

MB = 1_000_000  # MB/s = 10^6 bytes/s, as in reference-performance.md


def curl_binary() -> str:
    binary = shutil.which("curl")
    if binary is None:
        raise RuntimeError("curl is not installed")
    return binary


@dataclass(frozen=True)
class Transfer:
    status: int
    size: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / MB if self.seconds else 0.0


def curl_get(url: str, timeout: float = 300) -> Transfer:
    """Download ``url`` to /dev/null with curl; status, bytes and wall time."""
    out = subprocess.run(
        [curl_binary(), "-s", "-o", "/dev/null", "--max-time", str(int(timeout)),
         "-w", "%{http_code} %{size_download} %{time_total}", url],
        capture_output=True, text=True, check=False, timeout=timeout + 10)
    status, size, seconds = out.stdout.split()
    return Transfer(int(status), int(size), float(seconds))


@dataclass
class ManyResult:
    launched: int
    completed: int
    failed: int
    bytes: int
    seconds: float
    statuses: dict[int, int]

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / MB if self.seconds else 0.0


def curl_many(urls: list[str], expected_size: int, timeout: float) -> ManyResult:
    """Start one curl per URL at once; wait for all (or ``timeout``)."""
    start = time.monotonic()
    procs = [subprocess.Popen(
        [curl_binary(), "-s", "-o", "/dev/null", "--max-time", str(int(timeout)),
         "-w", "%{http_code} %{size_download}", url],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for url in urls]
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, timeout + 15 - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        outputs.append(out)
    seconds = time.monotonic() - start
    total, completed, statuses = 0, 0, {}
    for out in outputs:
        parts = out.split()
        status, size = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)
        statuses[status] = statuses.get(status, 0) + 1
        total += size
        completed += status == 200 and size == expected_size
    return ManyResult(len(urls), completed, len(urls) - completed, total, seconds, statuses)


class SlowReader(threading.Thread):
    """Reads a download at about ``rate`` bytes/s until stopped (a slow client)."""

    def __init__(self, url: str, rate: int = 1 * MB) -> None:
        super().__init__(daemon=True, name="slow-reader")
        self.url = url
        self.rate = rate
        self.received = 0
        self.status = 0
        self.error = ""
        self._stop_event = threading.Event()

    def run(self) -> None:
        piece = 16 * 1024
        try:
            with httpx.Client(timeout=httpx.Timeout(30.0)) as client, \
                    client.stream("GET", self.url) as response:
                self.status = response.status_code
                for chunk in response.iter_raw(piece):
                    self.received += len(chunk)
                    if self._stop_event.wait(len(chunk) / self.rate):
                        return
        except httpx.HTTPError as exc:
            self.error = type(exc).__name__

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


@dataclass
class ProbeResult:
    samples: list[float] = field(default_factory=list)  # ms
    errors: int = 0

    def percentile(self, q: float) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    def as_dict(self) -> dict[str, float]:
        return {"samples": len(self.samples), "errors": self.errors,
                "p50_ms": round(self.percentile(50), 2), "p99_ms": round(self.percentile(99), 2),
                "max_ms": round(max(self.samples), 2) if self.samples else float("nan"),
                "mean_ms": round(statistics.fmean(self.samples), 2) if self.samples
                else float("nan")}


class LatencyProbe(threading.Thread):
    """GET ``url`` every ``interval`` s on one keep-alive connection; records latency."""

    def __init__(self, url: str, interval: float = 0.02, timeout: float = 10.0) -> None:
        super().__init__(daemon=True, name="latency-probe")
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.result = ProbeResult()
        self._stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop_event.is_set():
                began = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - began) * 1000
                if ok:
                    self.result.samples.append(elapsed)
                else:
                    self.result.errors += 1
                self._stop_event.wait(self.interval)

    def stop(self) -> ProbeResult:
        self._stop_event.set()
        self.join(timeout=self.timeout + 5)
        return self.result
