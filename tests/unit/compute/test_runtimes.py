"""Runtimes: image/tag/entrypoint → local interpreter, and the configurable table."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.unit.compute.conftest import EngineFactory, environment, finished, result_bytes, spec
from tidegate.compute.runtimes import (
    ALGORITHM_PATH,
    UnsupportedImageError,
    build_runtime_rules,
    default_rules,
    normalise_image,
    resolve_runtime,
)
from tidegate.errors import ConfigurationError


@pytest.mark.parametrize(("image", "tag", "expected"), [
    ("python", "3.11", ("python", "3.11")),
    ("docker.io/library/python", "", ("python", "latest")),
    ("Python:3.10-slim", None, ("python", "3.10-slim")),
    ("oceanprotocol/algo_dockers", "python-branin", ("oceanprotocol/algo_dockers",
                                                     "python-branin")),
    ("node@sha256:abc", "18", ("node", "18")),
    ("registry.example.com:5000/team/algo", "v1", ("registry.example.com:5000/team/algo", "v1")),
    (None, None, ("", "latest")),
])
def test_normalise_image(image: object, tag: object, expected: tuple[str, str]) -> None:
    assert normalise_image(image, tag) == expected


def test_default_table() -> None:
    python = resolve_runtime({"image": "python", "tag": "3.9", "entrypoint": "python $ALGO"})
    assert python.name == "python" and os.access(python.executable, os.X_OK)
    if os.path.exists("/usr/bin/python3"):
        assert python.executable == "/usr/bin/python3" and python.paths == ()
    panda = resolve_runtime({"image": "oceanprotocol/algo_dockers", "tag": "python-panda",
                             "entrypoint": "python3.8 -u ${ALGO} --verbose"})
    assert panda.argv("python3.8 -u ${ALGO} --verbose") == [
        panda.executable, "-u", ALGORITHM_PATH, "--verbose"]
    if shutil.which("node"):
        node = resolve_runtime({"image": "node", "tag": "18", "entrypoint": "node $ALGO"})
        assert node.argv("node $ALGO") == [node.executable, ALGORITHM_PATH]
        assert resolve_runtime({"image": "oceanprotocol/algo_dockers", "tag": "node-20",
                                "entrypoint": "nodejs $ALGO"}) == node
    else:
        assert [r.image for r in default_rules()] == ["python", "oceanprotocol/algo_dockers"]


@pytest.mark.parametrize(("container", "message"), [
    ({"image": "ubuntu", "tag": "22.04", "entrypoint": "bash $ALGO"},
     "Unsupported image ubuntu:22.04. This provider runs: python, "),
    ({"image": "oceanprotocol/algo_dockers", "tag": "r-4", "entrypoint": "Rscript $ALGO"},
     "Unsupported image oceanprotocol/algo_dockers:r-4."),
    ({"image": "python", "tag": "3", "entrypoint": "sh -c 'python $ALGO'"},
     "The entrypoint must start with one of python, python3, python3.* for the python"),
    ({"image": "python", "tag": "3", "entrypoint": "python 'unclosed"},
     "The algorithm's entrypoint cannot be parsed."),
    ({"image": "python", "tag": "3"}, "The algorithm's container has no entrypoint."),
    ({"tag": "3", "entrypoint": "python $ALGO"}, "The algorithm's container has no image."),
    ("python", "The algorithm has no container."),
])
def test_refusals(container: object, message: str) -> None:
    with pytest.raises(UnsupportedImageError) as refused:
        resolve_runtime(container)  # type: ignore[arg-type]
    assert refused.value.message.startswith(message), refused.value.message
    assert refused.value.status == 400 and refused.value.code == "unsupported_image"


def test_configured_table_replaces_the_defaults() -> None:
    rules = build_runtime_rules([{"image": "myorg/algo", "tag": "v1*", "runtime": "python"}])
    assert [(r.image, r.tag) for r in rules] == [("myorg/algo", "v1*")]
    found = resolve_runtime({"image": "docker.io/myorg/algo", "tag": "v1.2",
                             "entrypoint": "python3 $ALGO"}, rules)
    assert found.name == "python"
    with pytest.raises(UnsupportedImageError, match="This provider runs: myorg/algo:v1\\*"):
        resolve_runtime({"image": "python", "tag": "3", "entrypoint": "python $ALGO"}, rules)
    assert build_runtime_rules(None) == default_rules()


@pytest.mark.parametrize(("entry", "message"), [
    ({"image": "x", "runtime": "python", "extra": 1}, "unknown keys: extra"),
    ({"tag": "1", "runtime": "python"}, "needs an image"),
    ({"image": "x"}, "needs a runtime name"),
    ({"image": "x", "runtime": "ruby"}, "needs an absolute executable path"),
    ({"image": "x", "runtime": "python", "executable": "python3"}, "absolute executable"),
    ({"image": "x", "runtime": "python", "executable": "/nonexistent/python"},
     "is not an executable file"),
    ({"image": "x", "runtime": "sh", "executable": "/bin/sh"}, "needs programs"),
    ({"image": "x", "runtime": "python", "paths": ["relative"]}, "is not an existing dir"),
    ({"image": "x", "runtime": "python", "programs": "python"}, "list of non-empty strings"),
])
def test_configuration_errors(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_runtime_rules([entry])


def _base_interpreter() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


async def test_a_runtime_outside_usr_runs_with_its_prefix_bound(
        make_engine: EngineFactory) -> None:
    """This process's own interpreter (often under /root or /opt): its prefix is bound."""
    base = _base_interpreter()
    if base.startswith("/usr/"):
        pytest.skip("this interpreter is under /usr: nothing extra to bind")
    rules = build_runtime_rules([{"image": "custom", "runtime": "python", "executable": base,
                                  "paths": [sys.base_prefix]}])
    engine = await make_engine(runtimes=rules)
    job = spec(environment(), code="import sys\nprint(sys.version_info[:2])",
               container={"image": "custom", "tag": "1", "entrypoint": "python $ALGO"})
    await engine.start(job)
    record = await finished(engine, job.job_id)
    assert record.detail == "", await result_bytes(engine, job.job_id)
    assert await result_bytes(engine, job.job_id) == f"{sys.version_info[:2]}\n".encode()
