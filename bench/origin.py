"""The origin file server: nginx when installed, else a small aiohttp sendfile server.

Both serve a directory on loopback with Range support and keep-alive. The benchmark
measures the 1 GiB download straight from the origin and uses the same origin as
Tidegate's upstream, so the ratio compares like with like.

``python -m bench.origin DIR PORT`` runs the aiohttp server (used when nginx is
missing, and measured beside nginx so the faster one is chosen).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.procs import Proc, free_port, wait_http

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types {{ text/csv csv; application/octet-stream bin; }}
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {files};
        location / {{ }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def start_nginx(files: Path, workdir: Path) -> tuple[Proc, str]:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    root = workdir / "nginx"
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port, files=files))
    proc = Proc("nginx", [binary, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/small.csv", proc, timeout=10)
    except RuntimeError:
        proc.stop()
        raise
    return proc, url


def start_aiohttp(files: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc("aiohttp-origin", [sys.executable, "-m", "bench.origin", str(files), str(port)],
                cwd=Path(__file__).resolve().parent.parent)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/small.csv", proc, timeout=20)
    return proc, url


def _serve(directory: str, port: int) -> None:
    from aiohttp import web

    root = Path(directory).resolve()

    async def handle(request: web.Request) -> web.StreamResponse:
        path = (root / request.match_info["name"]).resolve()
        if root not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        # FileResponse answers Range with 206 and uses sendfile(2).
        return web.FileResponse(path, chunk_size=1024 * 1024)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
