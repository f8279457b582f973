"""The container of one job: what it may see and use (a Docker Engine API create body).

Every job's container, whatever the image asks for:

- runs the image's files read-only (``ReadonlyRootfs``) as a non-root user
  (``DockerOptions.user``, default ``65534:65534``), with every capability dropped,
  ``no-new-privileges`` and the daemon's default seccomp profile (never ``unconfined``);
- sees of the host only the job's workspace: ``/data/inputs``, ``/data/ddos`` and
  ``/data/transformations`` read-only, ``/data/outputs`` and ``/data/logs`` writable,
  plus a size-capped ``/tmp`` tmpfs and ``/dev/shm`` of the same size (each ``VOLUME``
  the image declares becomes such a tmpfs too, so an image cannot open a writable,
  uncapped volume on the daemon's disk); no Docker socket, no other bind, no device
  except the GPUs its environment declares (:func:`gpu_access`);
- has no network (``NetworkMode`` ``none``) unless the environment allows it;
- is bounded: memory (= memory + swap, so no swap), CPUs (``NanoCpus``), processes
  (``PidsLimit``), open files, file size (the environment's disk) and no core dumps;
- gets only ``ALGO``, ``DIDS``, ``TRANSFORMATION_DID``, ``HOME``, ``TMPDIR`` (and the
  image's own environment): nothing of Tidegate's;
- carries labels naming the job and the Tidegate instance, so a restarted Tidegate
  finds and removes what a crashed one left.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tidegate.compute.engines.base import JobSpec
from tidegate.compute.engines.docker_images import names_registry
from tidegate.compute.environments import NVIDIA, Gpus
from tidegate.compute.runtimes import ALGORITHM_PATH, entrypoint_argv
from tidegate.compute.sandbox import Limits
from tidegate.compute.workspace import Workspace

__all__ = ["INSTANCE_LABEL", "JOB_LABEL", "DockerOptions", "container_config", "gpu_access",
           "grant_outputs", "limits_of"]

JOB_LABEL: Final = "org.tidegate.job"
INSTANCE_LABEL: Final = "org.tidegate.instance"
_MIB: Final = 1024 * 1024
_TMP: Final = "/tmp"  # noqa: S108 - the container's own size-capped tmpfs


@dataclass(frozen=True)
class DockerOptions:
    """How the Docker engine runs jobs (from settings; tests use small values)."""

    user: str = "65534:65534"
    """``uid:gid`` every job runs as (never root)."""
    network: str = "bridge"
    """The network of jobs whose environment allows network (``none`` otherwise)."""
    pull_timeout: float = 600.0
    require_checksum: bool = False
    max_processes: int = 64
    max_open_files: int = 1024
    tmp_bytes: int = 64 * _MIB
    max_output_files: int = 256
    """At most this many outputs are listed as results (``TIDEGATE_COMPUTE_MAX_OUTPUT_FILES``)."""
    log_bytes: int = 16 * _MIB
    """The algorithm log is cut beyond this size (with a note saying so)."""
    poll_interval: float = 0.2
    min_free_bytes: int = 1024 * _MIB
    """A job is refused unless the compute directory keeps this much free beyond what the
    job may write (its inputs and its outputs, ``diskGB`` each), and a local daemon's
    data root (when readable) keeps this much free."""
    image_cache_bytes: int | None = None
    """Images Tidegate pulled are evicted, least recently used first, beyond this total
    (``TIDEGATE_DOCKER_IMAGE_CACHE_GB``; None: never)."""
    place_by_capacity: bool = False
    """Place jobs on hosts by CPUs and memory (``TIDEGATE_DOCKER_HOSTS``); else only
    ``maxJobs`` bounds them (one ``DOCKER_HOST``, as before)."""
    registry_auth: Mapping[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    """Registry (``host[:port]``) -> (username, password) sent when pulling from it."""

    def auth_for(self, image_name: str) -> dict[str, str] | None:
        """The credentials of the registry ``image_name`` names, if any are configured."""
        registry = image_name.partition("/")[0] if names_registry(image_name) else "docker.io"
        found = self.registry_auth.get(registry)
        return {"username": found[0], "password": found[1]} if found else None


def _mounts(workspace: Workspace) -> list[dict[str, Any]]:
    def bind(source: str, target: str, read_only: bool) -> dict[str, Any]:
        return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only,
                "BindOptions": {"Propagation": "rprivate"}}

    return [bind(str(workspace.inputs), "/data/inputs", True),
            bind(str(workspace.ddos), "/data/ddos", True),
            bind(str(workspace.transformations), "/data/transformations", True),
            bind(str(workspace.outputs), "/data/outputs", False),
            bind(str(workspace.logs), "/data/logs", False)]


def gpu_access(gpus: Gpus | None) -> dict[str, Any]:
    """The ``HostConfig`` fields that give a container ``gpus`` (none: no device at all).

    NVIDIA: one device request to the ``nvidia`` driver (the NVIDIA container toolkit on
    the daemon) with the ``gpu`` capability, for the listed ``DeviceIDs`` or any
    ``Count`` of GPUs. Other GPUs: their device nodes, at the same path, read-write
    (no ``mknod``).
    """
    if gpus is None:
        return {"Devices": [], "DeviceRequests": []}
    if gpus.driver == NVIDIA:
        request: dict[str, Any] = {"Driver": "nvidia", "Capabilities": [["gpu"]],
                                   "Options": {}}
        if gpus.device_ids:
            request.update(Count=0, DeviceIDs=list(gpus.device_ids))
        else:
            request.update(Count=gpus.count, DeviceIDs=[])
        return {"Devices": [], "DeviceRequests": [request]}
    return {"Devices": [{"PathOnHost": path, "PathInContainer": path,
                         "CgroupPermissions": "rw"} for path in gpus.device_ids],
            "DeviceRequests": []}


def container_config(spec: JobSpec, image_id: str, workspace: Workspace, limits: Limits,
                     options: DockerOptions, *, instance: str, allow_network: bool,
                     image_volumes: Sequence[str] = (),
                     labels: Mapping[str, str] | None = None,
                     gpus: Gpus | None = None) -> dict[str, Any]:
    """The ``POST /containers/create`` body of ``spec``'s job.

    ``image_id`` is the checked image's id (what runs is what was verified, even if
    the tag moves meanwhile); ``image_volumes`` the paths the image declares as
    ``VOLUME``; ``gpus`` those of the job's environment (the engine's configured one).
    """
    argv = entrypoint_argv(spec.algorithm.container.get("entrypoint"), ALGORITHM_PATH)
    env = {"ALGO": ALGORITHM_PATH, "DIDS": json.dumps([i.did for i in spec.inputs]),
           "TRANSFORMATION_DID": spec.algorithm.did or "", "HOME": _TMP, "TMPDIR": _TMP}
    tmpfs = f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"
    volumes = {path: tmpfs for path in image_volumes if path != _TMP and
               not path.startswith("/data")}
    memory = limits.memory_bytes
    return {
        "Image": image_id,
        "Entrypoint": argv,
        "Cmd": [],
        "Env": [f"{name}={value}" for name, value in env.items()],
        "User": options.user,
        "WorkingDir": "/data",
        "Hostname": "tidegate-job",
        "Labels": {JOB_LABEL: spec.job_id, INSTANCE_LABEL: instance, **(labels or {})},
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "OpenStdin": False, "Tty": False,
        "NetworkDisabled": not allow_network,
        "HostConfig": {
            "NetworkMode": options.network if allow_network else "none",
            "Mounts": _mounts(workspace),
            "Tmpfs": {_TMP: tmpfs, **volumes},
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "CapAdd": [],
            "SecurityOpt": ["no-new-privileges:true"],
            "Privileged": False,
            "PublishAllPorts": False,
            "IpcMode": "private",
            # /dev/shm (POSIX shared memory, multiprocessing) is a tmpfs too: capped.
            "ShmSize": limits.tmp_bytes,
            "Memory": memory,
            "MemorySwap": memory,
            "OomKillDisable": False,
            "NanoCpus": int(spec.environment.cpu_number * 1_000_000_000),
            "PidsLimit": limits.max_processes,
            "Ulimits": [
                {"Name": "nofile", "Soft": limits.max_open_files,
                 "Hard": limits.max_open_files},
                {"Name": "fsize", "Soft": limits.disk_bytes, "Hard": limits.disk_bytes},
                {"Name": "core", "Soft": 0, "Hard": 0},
            ],
            **gpu_access(gpus),
            "LogConfig": {"Type": "json-file",
                          "Config": {"max-size": str(options.log_bytes), "max-file": "1"}},
            "RestartPolicy": {"Name": "no"},
            "AutoRemove": False,  # removed by the engine once its state and log are read
        },
    }


def grant_outputs(workspace: Workspace, user: str) -> None:
    """Let the container's user write ``outputs`` and ``logs`` (only those).

    Without root (a member of the docker group) ownership cannot be given: the two
    directories become writable by all, reachable only through the container's mounts
    (the job's directory itself stays 0700).
    """
    uid, _, gid = user.partition(":")
    for path in (workspace.outputs, workspace.logs):
        try:
            os.chown(path, int(uid), int(gid or uid))
        except PermissionError:
            path.chmod(0o777)


def limits_of(limits: Limits, options: DockerOptions) -> Limits:
    """``limits`` with the Docker engine's process, file and ``/tmp`` allowances."""
    return Limits(wall_seconds=limits.wall_seconds, cpu_seconds=limits.cpu_seconds,
                  memory_bytes=limits.memory_bytes, disk_bytes=limits.disk_bytes,
                  max_processes=options.max_processes, max_open_files=options.max_open_files,
                  tmp_bytes=options.tmp_bytes)
