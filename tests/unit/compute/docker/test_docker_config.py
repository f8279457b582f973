"""Docker settings, the per-environment engine, image references and the container
specification (no daemon needed: these are pure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.compute.conftest import spec
from tests.unit.compute.docker.conftest import UBUNTU_PYTHON, docker_environment
from tests.unit.compute.test_config import CHAINS
from tidegate.app import compute_options, docker_client
from tidegate.compute.config import compute_environments
from tidegate.compute.engines.container_spec import (
    INSTANCE_LABEL,
    JOB_LABEL,
    DockerOptions,
    container_config,
    gpu_access,
)
from tidegate.compute.engines.docker_images import (
    ImageCheckError,
    ImageNotAllowedError,
    check_allowed,
    parse_image,
    verify_checksum,
)
from tidegate.compute.environments import Gpus
from tidegate.compute.runtimes import UnsupportedImageError
from tidegate.compute.sandbox import Limits
from tidegate.compute.workspace import Workspace
from tidegate.errors import ConfigurationError
from tidegate.settings import Settings

HEX = "ab" * 32


def test_docker_settings(make_settings: Callable[..., Settings]) -> None:
    plain = make_settings()
    assert plain.docker_host is None and compute_options(plain).docker is None
    s = make_settings(DOCKER_HOST="/run/x/docker.sock", TIDEGATE_DOCKER_USER="1000:1000",
                      TIDEGATE_DOCKER_NETWORK="jobs", TIDEGATE_DOCKER_PULL_TIMEOUT="30",
                      TIDEGATE_DOCKER_REQUIRE_CHECKSUM="true",
                      TIDEGATE_DOCKER_IMAGE_CACHE_GB="0.5")
    assert s.docker_host == "unix:///run/x/docker.sock"
    options = compute_options(s).docker
    assert options == DockerOptions(user="1000:1000", network="jobs", pull_timeout=30.0,
                                    require_checksum=True, max_processes=64,
                                    tmp_bytes=64 * 1024 * 1024,
                                    image_cache_bytes=512 * 1024 * 1024)
    assert compute_options(plain.model_copy(update={"docker_host": "unix:///x"})
                           ).docker == DockerOptions()  # no cap unless set
    assert "docker.sock" not in repr(s)  # the daemon's address stays out of logs


@pytest.mark.parametrize(("variable", "value"), [
    ("DOCKER_HOST", "ftp://x"), ("DOCKER_HOST", "docker.sock"),
    ("TIDEGATE_DOCKER_USER", "0:0"), ("TIDEGATE_DOCKER_USER", "nobody"),
    ("TIDEGATE_DOCKER_NETWORK", "host"), ("TIDEGATE_DOCKER_PULL_TIMEOUT", "0"),
    ("TIDEGATE_DOCKER_IMAGE_CACHE_GB", "0"), ("TIDEGATE_DOCKER_IMAGE_CACHE_GB", "lots")])
def test_bad_docker_settings_name_the_variable(make_settings: Callable[..., Settings],
                                              variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        make_settings(**{variable: value})


def test_a_tcp_daemon_without_tls_is_refused_unless_on_loopback(
        make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="needs TLS"):
        docker_client(make_settings(DOCKER_HOST="tcp://10.1.2.3:2375"))


def test_environments_run_on_docker_by_default_when_a_daemon_is_configured() -> None:
    [default] = compute_environments(None, CHAINS, "docker")
    assert default.engine == "docker" and default.id == "tidegate-local-free"
    [local] = compute_environments(None, CHAINS)
    assert local.engine == "local"
    entries = [{"id": "a", "chainId": 8996}, {"id": "b", "chainId": 8996, "engine": "local"}]
    assert [e.engine for e in compute_environments(entries, CHAINS, "docker")] == [
        "docker", "local"]
    with pytest.raises(ConfigurationError, match="no Docker daemon"):
        compute_environments([{"id": "a", "chainId": 8996, "engine": "docker"}], CHAINS)
    with pytest.raises(ConfigurationError, match="engine must be one of"):
        compute_environments([{"id": "a", "chainId": 8996, "engine": "k8s"}], CHAINS, "docker")


@pytest.mark.parametrize(("container", "reference", "checksum"), [
    ({"image": "ubuntu", "tag": "latest"}, "ubuntu:latest", None),
    ({"image": "ubuntu"}, "ubuntu:latest", None),
    ({"image": "oceanprotocol/algo_dockers", "tag": "python-branin", "checksum": HEX},
     "oceanprotocol/algo_dockers:python-branin", f"sha256:{HEX}"),
    ({"image": f"registry.example:5000/team/algo@sha256:{HEX}", "tag": "ignored",
      "checksum": f"sha256:{HEX.upper()}"},
     f"registry.example:5000/team/algo@sha256:{HEX}", f"sha256:{HEX}"),
    ({"image": "python", "tag": f"sha256:{HEX}"}, f"python@sha256:{HEX}", None),
])
def test_image_references(container: dict[str, Any], reference: str,
                          checksum: str | None) -> None:
    ref = parse_image(container)
    assert (ref.reference, ref.checksum) == (reference, checksum)


@pytest.mark.parametrize("container", [
    {"image": "Ubuntu"}, {"image": "ubuntu", "tag": "bad tag"}, {"image": ""},
    {"image": "ubuntu@sha256:12"}, {"image": "ubuntu", "checksum": "md5:00"},
    {"image": "ubuntu", "checksum": 5}, {"tag": "latest"},
])
def test_bad_image_references_are_400(container: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedImageError):
        parse_image(container)


def test_checksum_matches_the_image_id_or_a_repository_digest() -> None:
    image = {"Id": f"sha256:{'11' * 32}", "RepoDigests": [f"ubuntu@sha256:{'22' * 32}"]}
    for pin in ("11" * 32, f"sha256:{'22' * 32}"):
        verify_checksum(parse_image({"image": "ubuntu", "checksum": pin}), image)
    with pytest.raises(ImageCheckError):
        verify_checksum(parse_image({"image": "ubuntu", "checksum": "33" * 32}), image)
    with pytest.raises(UnsupportedImageError, match="pinned"):
        parse_image({"image": "ubuntu"}, require_checksum=True)


def test_the_container_specification_is_hardened(tmp_path: Path) -> None:
    """Every guarantee of container_spec, field by field (the daemon tests prove they
    hold; this pins that none is dropped, also for paths the daemon tests do not take)."""
    workspace = Workspace(tmp_path / "job")
    limits = Limits(wall_seconds=10, cpu_seconds=10, memory_bytes=256 * 2**20,
                    disk_bytes=10 * 2**20, max_processes=32, max_open_files=128,
                    tmp_bytes=8 * 2**20)
    job = spec(docker_environment(cpu_number=2), code="x", container=UBUNTU_PYTHON)
    config = container_config(job, "sha256:" + "11" * 32, workspace, limits, DockerOptions(),
                              instance="i1", allow_network=False, image_volumes=["/var/data"])
    host = config["HostConfig"]
    assert config["Image"] == "sha256:" + "11" * 32
    assert config["Entrypoint"] == ["python3", "/data/transformations/algorithm"]
    assert config["User"] == "65534:65534" and config["NetworkDisabled"] is True
    assert config["Labels"] == {JOB_LABEL: job.job_id, INSTANCE_LABEL: "i1"}
    assert sorted(v.split("=")[0] for v in config["Env"]) == [
        "ALGO", "DIDS", "HOME", "TMPDIR", "TRANSFORMATION_DID"]
    assert host["NetworkMode"] == "none" and host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == [] and host["Privileged"] is False
    assert host["SecurityOpt"] == ["no-new-privileges:true"]  # default seccomp: no override
    assert host["ReadonlyRootfs"] is True and host["Devices"] == []
    assert host["DeviceRequests"] == []  # no GPU unless the environment declares one
    assert host["Memory"] == host["MemorySwap"] == 256 * 2**20
    assert host["NanoCpus"] == 2_000_000_000 and host["PidsLimit"] == 32
    assert {u["Name"]: u["Hard"] for u in host["Ulimits"]} == {
        "nofile": 128, "fsize": 10 * 2**20, "core": 0}
    assert set(host["Tmpfs"]) == {"/tmp", "/var/data"} and host["ShmSize"] == 8 * 2**20
    assert all(f"size={8 * 2**20}" in o for o in host["Tmpfs"].values())
    mounts = {m["Target"]: (m["Source"], m["ReadOnly"]) for m in host["Mounts"]}
    assert mounts == {
        "/data/inputs": (str(workspace.inputs), True), "/data/ddos": (str(workspace.ddos), True),
        "/data/transformations": (str(workspace.transformations), True),
        "/data/outputs": (str(workspace.outputs), False),
        "/data/logs": (str(workspace.logs), False)}
    assert "Binds" not in host and "VolumesFrom" not in host
    networked = container_config(job, "sha256:" + "11" * 32, workspace, limits,
                                 DockerOptions(network="jobs"), instance="i1",
                                 allow_network=True)
    assert networked["HostConfig"]["NetworkMode"] == "jobs"
    assert networked["NetworkDisabled"] is False
    assert json.loads(json.dumps(config)) == config  # a plain JSON body


def test_allowed_images_per_environment() -> None:
    entries = [{"id": "a", "chainId": 8996, "allowedImages": ["ubuntu:*", "reg:5000/team/*"]}]
    [env] = compute_environments(entries, CHAINS, "docker")
    assert env.allowed_images == ("ubuntu:*", "reg:5000/team/*")
    check_allowed(parse_image({"image": "ubuntu", "tag": "22.04"}), env.allowed_images)
    check_allowed(parse_image({"image": f"reg:5000/team/algo@sha256:{HEX}"}), env.allowed_images)
    with pytest.raises(ImageNotAllowedError) as refused:
        check_allowed(parse_image({"image": "python"}), env.allowed_images)
    assert refused.value.status == 400 and refused.value.code == "image_not_allowed"
    check_allowed(parse_image({"image": "python"}), ())  # no patterns: any image
    for bad in ({"allowedImages": "ubuntu"}, {"allowedImages": [""]},
                {"allowedImages": ["x"], "engine": "local"}):
        with pytest.raises(ConfigurationError, match="allowedImages"):
            compute_environments([{"id": "a", "chainId": 8996, **bad}], CHAINS, "docker")


def test_registry_credentials_setting(make_settings: Callable[..., Settings]) -> None:
    value = json.dumps({"reg.example:5000": {"username": "bot", "password": "s3cret-pw"},
                        "docker.io": {"username": "hub", "password": "hub-pw"}})
    s = make_settings(DOCKER_HOST="unix:///run/d.sock", TIDEGATE_DOCKER_REGISTRY_AUTH=value)
    options = compute_options(s).docker
    assert options is not None
    assert options.auth_for("reg.example:5000/team/algo") == {"username": "bot",
                                                              "password": "s3cret-pw"}
    assert options.auth_for("ubuntu") == options.auth_for("library/ubuntu") == {
        "username": "hub", "password": "hub-pw"}
    assert options.auth_for("other.example/x") is None
    assert "s3cret-pw" not in repr(s) and "s3cret-pw" not in repr(options)
    for bad in ('{"reg": {"username": "u"}}', '["x"]', '{"bad host/": {"username": "u", '
                '"password": "s3cret-pw"}}'):
        with pytest.raises(ConfigurationError, match="TIDEGATE_DOCKER_REGISTRY_AUTH") as e:
            make_settings(TIDEGATE_DOCKER_REGISTRY_AUTH=bad)
        assert "s3cret-pw" not in str(e.value)


def _gpu_config(tmp_path: Path, gpus: Gpus | None) -> dict[str, Any]:
    limits = Limits(wall_seconds=10, cpu_seconds=10, memory_bytes=2**28, disk_bytes=2**20,
                    max_processes=32, max_open_files=128, tmp_bytes=2**20)
    job = spec(docker_environment(), code="x", container=UBUNTU_PYTHON)
    config = container_config(job, "sha256:" + "11" * 32, Workspace(tmp_path / "job"),
                              limits, DockerOptions(), instance="i1", allow_network=False,
                              gpus=gpus)
    host: dict[str, Any] = config["HostConfig"]
    return host


def test_gpus_reach_the_container_as_nvidia_device_requests_or_devices(tmp_path: Path) -> None:
    """The container specification of a GPU environment's job (no GPU on this machine:
    the daemon-side effect of ``Devices`` is tested in test_docker_engine)."""
    any_two = _gpu_config(tmp_path, Gpus(count=2, type="NVIDIA A100"))
    assert any_two["DeviceRequests"] == [{"Driver": "nvidia", "Count": 2, "DeviceIDs": [],
                                          "Capabilities": [["gpu"]], "Options": {}}]
    assert any_two["Devices"] == []
    chosen = _gpu_config(tmp_path, Gpus(count=2, device_ids=("0", "GPU-3b2f")))
    assert chosen["DeviceRequests"] == [{"Driver": "nvidia", "Count": 0,
                                         "DeviceIDs": ["0", "GPU-3b2f"],
                                         "Capabilities": [["gpu"]], "Options": {}}]
    amd = _gpu_config(tmp_path, Gpus(count=1, driver="devices",
                                     device_ids=("/dev/kfd", "/dev/dri/renderD128")))
    assert amd["DeviceRequests"] == []
    assert amd["Devices"] == [
        {"PathOnHost": "/dev/kfd", "PathInContainer": "/dev/kfd", "CgroupPermissions": "rw"},
        {"PathOnHost": "/dev/dri/renderD128", "PathInContainer": "/dev/dri/renderD128",
         "CgroupPermissions": "rw"}]
    for host in (any_two, chosen, amd):  # a GPU changes nothing else
        assert host["CapDrop"] == ["ALL"] and host["Privileged"] is False
        assert host["SecurityOpt"] == ["no-new-privileges:true"]
    none = _gpu_config(tmp_path, None)
    assert none["Devices"] == [] and none["DeviceRequests"] == []
    assert gpu_access(None) == {"Devices": [], "DeviceRequests": []}


def test_gpu_environment_settings() -> None:
    entries = [
        {"id": "nv", "chainId": 8996, "gpuNumber": 2, "gpuType": "NVIDIA A100"},
        {"id": "nv-ids", "chainId": 8996, "gpuDevices": ["0", "GPU-3b2f-11"]},
        {"id": "amd", "chainId": 8996, "gpuDriver": "devices", "gpuType": "AMD MI210",
         "gpuDevices": ["/dev/kfd", "/dev/dri/renderD128"]},
        {"id": "cpu", "chainId": 8996},
        {"id": "cpu0", "chainId": 8996, "gpuNumber": 0},
    ]
    nv, nv_ids, amd, cpu, cpu0 = compute_environments(entries, CHAINS, "docker")
    assert nv.gpus == Gpus(count=2, type="NVIDIA A100")
    assert nv.to_json()["gpuNumber"] == 2 and nv.to_json()["gpuType"] == "NVIDIA A100"
    assert nv_ids.gpus == Gpus(count=2, device_ids=("0", "GPU-3b2f-11"))
    assert amd.gpus == Gpus(count=1, type="AMD MI210", driver="devices",
                            device_ids=("/dev/kfd", "/dev/dri/renderD128"))
    assert cpu.gpus is None and cpu0.gpus is None
    assert cpu.to_json()["gpuNumber"] == 0 and cpu.to_json()["gpuType"] == ""
    for bad, message in (
            ({"gpuNumber": 1, "engine": "local"}, "need engine docker"),
            ({"gpuNumber": -1}, "gpuNumber"),
            ({"gpuNumber": 1.5}, "gpuNumber"),
            ({"gpuNumber": 0, "gpuType": "x"}, "gpuNumber"),
            ({"gpuDriver": "amd", "gpuNumber": 1}, "gpuDriver"),
            ({"gpuDriver": "devices"}, "gpuDevices"),
            ({"gpuDriver": "devices", "gpuDevices": ["/etc/shadow"]}, "gpuDevices"),
            ({"gpuDriver": "devices", "gpuDevices": ["/dev/../etc"]}, "gpuDevices"),
            ({"gpuDriver": "devices", "gpuDevices": ["/dev/dri", "/dev/dri"]}, "gpuDevices"),
            ({"gpuDevices": ["0 1"]}, "gpuDevices"),
            ({"gpuDevices": "0"}, "gpuDevices"),
            ({"gpuDevices": ["0", "1"], "gpuNumber": 1}, "number of gpuDevices"),
            ({"gpuNumber": 1, "gpuType": 3}, "gpuType"),
            ({"gpuType": "NVIDIA A100"}, "without gpuNumber or gpuDevices"),
            ({"gpuDriver": "nvidia"}, "without gpuNumber or gpuDevices")):
        with pytest.raises(ConfigurationError, match=message):
            compute_environments([{"id": "a", "chainId": 8996, **bad}], CHAINS, "docker")
