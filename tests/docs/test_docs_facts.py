"""Statements of the docs checked against the code: files they name exist, every setting
is documented (and nothing else is), tables generated from the code match it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tidegate.dev.publishing import DESCRIPTION_KEYS
from tidegate.files.reasons import REASONS
from tidegate.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md",
        ROOT / "tests" / "e2e" / "README.md"]
TOP_LEVEL = ("src/", "tests/", "docs/", "bench/", "tools/", ".ci/")
TOP_FILES = ("Makefile", "Dockerfile", "pyproject.toml", "constraints.txt", ".dockerignore")
# What `make` and the tests create: named by the docs, never committed.
GENERATED = ("node_modules", ".venv", "bench/results.md")
PACKAGE = ROOT / "src" / "tidegate"


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\s]+)`", text)


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|") and "---" not in line]


def test_files_the_docs_name_exist() -> None:
    missing: list[str] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not link.startswith(("http://", "https://", "mailto:")) and \
                    not (doc.parent / link).exists():
                missing.append(f"{doc.name}: link {link}")
        for name in backticked(text):
            path = name.rstrip(".,:;")
            if any(g in path for g in GENERATED) or any(c in path for c in "<>*…$"):
                continue
            if path.startswith(TOP_LEVEL) or path in TOP_FILES:
                if not (ROOT / path.split("::")[0]).exists():
                    missing.append(f"{doc.name}: {path}")
            elif path.endswith(".py") and "/" in path and not path.startswith("/") and \
                    not (PACKAGE / path).exists() and not (doc.parent / path).exists():
                missing.append(f"{doc.name}: {path} (under src/tidegate/)")
    assert not missing, "\n".join(missing)


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    aliases = {f.validation_alias for f in Settings.model_fields.values()
               if isinstance(f.validation_alias, str)}
    source = (PACKAGE / "settings.py").read_text(encoding="utf-8")
    read_by_name = set(re.findall(r'"((?:TIDEGATE|PROVIDER)_[A-Z0-9_]+)"', source))
    documented: set[str] = set()
    for row in table_rows((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")):
        documented |= {n for n in backticked(row[0]) if re.fullmatch(r"[A-Z][A-Z0-9_<>]+", n)}
    templates = {n for n in documented if "<" in n}
    assert aliases - documented == set(), "settings missing from docs/configuration.md"
    unknown = documented - templates - aliases - read_by_name
    assert unknown == set(), "docs/configuration.md documents variables nothing reads"
    for template in templates:  # TIDEGATE_RATE_LIMIT_<CLASS>_RATE: the prefix is read
        assert template.split("<")[0] in source, template


def test_the_publishing_key_table_is_the_parsers() -> None:
    text = (ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    rows = {row[0].strip("`"): row for row in table_rows(text) if row[0].startswith("`")}
    assert list(rows) == list(DESCRIPTION_KEYS)
    for key, (default, meaning) in DESCRIPTION_KEYS.items():
        assert rows[key][1].strip("`") == default, key
        assert rows[key][2] == meaning, key


def test_the_fileinfo_reason_table_is_the_codes() -> None:
    text = (ROOT / "docs" / "compatibility.md").read_text(encoding="utf-8")
    rows = {row[0].strip("`"): row[1] for row in table_rows(text)
            if row[0].strip("`") in REASONS}
    assert rows == REASONS


def fenced(path: Path, info: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"^```{info}\n(.*?)^```", text, re.S | re.M)


OPERATIONS = ROOT / "docs" / "operations.md"


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("openssl") is None,
                    reason="needs nginx and openssl")
def test_the_nginx_configuration_is_valid(tmp_path: Path) -> None:
    """operations.md's nginx blocks, as one configuration, pass ``nginx -t`` (with a
    self-signed certificate in place of Let's Encrypt's, and logs in a scratch dir)."""
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=provider.example.org", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    blocks = fenced(OPERATIONS, "nginx")
    assert len(blocks) == 2
    server, log_format = blocks
    server = (server.replace("/etc/letsencrypt/live/provider.example.org/", f"{tmp_path}/")
              .replace("/var/log/nginx/", f"{tmp_path}/"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n{log_format}\n{server}\n}}\n")
    checked = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c",
                              str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # nginx >= 1.25.1 prefers `http2 on;` to `listen ... http2` (Debian 12 has 1.22).
    warnings = [line for line in checked.stderr.splitlines()
                if "[warn]" in line and '"http2" directive is deprecated' not in line]
    assert not warnings, checked.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    """operations.md's unit passes ``systemd-analyze verify`` without a complaint (it
    exits 0 even for unknown keys, so its output must be empty)."""
    unit = next(b for b in fenced(OPERATIONS, "ini") if "[Service]" in b)
    path = tmp_path / "tidegate.service"
    path.write_text(unit.replace("/opt/tidegate/bin/tidegate", shutil.which("true") or "/bin/true"))
    checked = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                             text=True)
    assert checked.returncode == 0 and str(path) not in checked.stdout + checked.stderr, (
        checked.stdout + checked.stderr)


def test_the_dockerfile_builds_from_what_dockerignore_lets_in() -> None:
    """The files the Dockerfile copies are the ones .dockerignore admits, it runs as a
    non-root user and its stages are named (tests/test_dockerfile.py builds it)."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    admitted = {line[1:].rstrip("/") for line in
                (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.startswith("!")}
    copied = {part.rstrip("/") for line in dockerfile.splitlines()
              if line.startswith("COPY ") and "--from" not in line
              for part in line.split()[1:-1]}
    optional = {name for name in copied if "[" in name}  # a glob: copied if present
    assert copied - optional | {re.sub(r"\[(.)\]", r"\1", n) for n in optional} == admitted
    for name in copied - optional:
        assert (ROOT / name).exists(), name
    assert re.search(r"^USER tidegate", dockerfile, re.M)
    assert re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.M) == ["build", "runtime"]
