"""``TIDEGATE_DOCKER_HOSTS``, ``dockerHost`` and the hosts the composition root builds
(no daemon needed: parsing and construction only)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.unit.compute.conftest import TEST_OPTIONS
from tests.unit.compute.test_config import CHAINS
from tidegate.app import compute_options, docker_hosts
from tidegate.compute.config import ComputeOptions, compute_environments, machine_engine
from tidegate.compute.engines.docker import DockerEngine
from tidegate.errors import ConfigurationError
from tidegate.files.objects import StorageContext
from tidegate.settings import DockerHostSetting, Settings
from tidegate.stores.sqlite import SqliteStore


def test_docker_hosts_as_urls_or_json_with_capacity(
        make_settings: Callable[..., Settings]) -> None:
    listed = make_settings(TIDEGATE_DOCKER_HOSTS=" /run/a.sock , tcp://127.0.0.1:2375 ")
    assert listed.docker_hosts == (DockerHostSetting("unix:///run/a.sock"),
                                   DockerHostSetting("tcp://127.0.0.1:2375"))
    as_json = make_settings(TIDEGATE_DOCKER_HOSTS='[{"url": "unix:///run/a.sock", "cpu": 8, '
                                                  '"ramGB": 16}, "unix:///run/b.sock"]')
    assert as_json.docker_hosts == (DockerHostSetting("unix:///run/a.sock", 8.0, 16.0),
                                    DockerHostSetting("unix:///run/b.sock"))
    options = compute_options(as_json).docker
    assert options is not None and options.place_by_capacity
    assert "a.sock" not in repr(as_json)  # addresses stay out of logs
    # One DOCKER_HOST alone: the single-daemon behaviour, no placement by capacity.
    single = make_settings(DOCKER_HOST="unix:///run/a.sock")
    assert single.docker_urls == (DockerHostSetting("unix:///run/a.sock"),)
    options = compute_options(single).docker
    assert options is not None and not options.place_by_capacity
    assert make_settings().docker_urls == () and compute_options(make_settings()).docker is None


@pytest.mark.parametrize("value", [
    "ftp://x", "unix:///a.sock,unix:///a.sock", '[{"url": "unix:///a", "cpu": 0}]',
    '[{"url": "unix:///a", "gpus": 1}]', '[{"cpu": 1}]', "[1]", "[not json"])
def test_bad_docker_hosts_name_the_variable(make_settings: Callable[..., Settings],
                                            value: str) -> None:
    with pytest.raises(ConfigurationError, match="TIDEGATE_DOCKER_HOSTS"):
        make_settings(TIDEGATE_DOCKER_HOSTS=value)


async def test_the_composition_root_builds_one_client_per_host(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        TIDEGATE_DOCKER_HOSTS='[{"url": "/run/a.sock", "cpu": 2, "ramGB": 0.5}, '
                              '"tcp://127.0.0.1:2375"]')
    async with AsyncExitStack() as stack:
        first, second = docker_hosts(settings, stack)
        assert (first.name, first.url, first.cpus, first.memory_bytes) == (
            "Docker host 1", "unix:///run/a.sock", 2.0, 512 * 1024 * 1024)
        assert (second.name, second.cpus, second.memory_bytes) == ("Docker host 2", None, None)
        assert first.docker is not second.docker
    remote = make_settings(TIDEGATE_DOCKER_HOSTS="unix:///run/a.sock,tcp://10.1.2.3:2375")
    with pytest.raises(ConfigurationError, match="TIDEGATE_DOCKER_HOSTS: a TCP daemon needs"):
        async with AsyncExitStack() as stack:
            docker_hosts(remote, stack)


async def test_dockerhost_must_name_a_configured_host(
        make_settings: Callable[..., Settings], store: SqliteStore,
        storage: StorageContext, tmp_path: Path) -> None:
    entries = [{"id": "pinned", "chainId": 8996, "dockerHost": "/run/b.sock"}]
    [env] = compute_environments(entries, CHAINS, "docker")
    assert env.docker_host == "unix:///run/b.sock"
    assert "b.sock" not in str(env.to_json())  # never shown to clients
    with pytest.raises(ConfigurationError, match="dockerHost"):
        compute_environments([{**entries[0], "engine": "local"}], CHAINS, "docker")
    settings = make_settings(TIDEGATE_DOCKER_HOSTS="unix:///run/a.sock,unix:///run/b.sock")
    docker = compute_options(settings).docker
    options = ComputeOptions(environments=entries, runtimes=None, directory=tmp_path,
                             sandbox=TEST_OPTIONS, docker=docker)
    async with AsyncExitStack() as stack:
        hosts = docker_hosts(settings, stack)
        engine = machine_engine(options, store, storage, CHAINS, hosts)
        assert isinstance(engine, DockerEngine)
        assert [h.name for h in engine.hosts] == ["Docker host 1", "Docker host 2"]
        with pytest.raises(ConfigurationError, match="dockerHost of pinned"):
            machine_engine(options, store, storage, CHAINS, hosts[:1])
