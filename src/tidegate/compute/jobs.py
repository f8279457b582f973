"""Compute job records and status codes (the Ocean C2D status table).

A job record is what ``GET /compute`` returns for one job; it is persisted in the
store (JSON) so it survives restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any, Final

from tidegate.errors import NotFoundError


class JobStatus(IntEnum):
    WARMING_UP = 1
    STARTED = 10
    CONFIGURING_VOLUMES = 20
    PROVISIONING_SUCCESS = 30
    DATA_PROVISIONING_FAILED = 31
    ALGORITHM_PROVISIONING_FAILED = 32
    RUNNING = 40
    FILTERING_RESULTS = 50
    PUBLISHING_RESULTS = 60
    COMPLETED = 70


STATUS_TEXT = {
    JobStatus.WARMING_UP: "Warming up",
    JobStatus.STARTED: "Job started",
    JobStatus.CONFIGURING_VOLUMES: "Configuring volumes",
    JobStatus.PROVISIONING_SUCCESS: "Provisioning success",
    JobStatus.DATA_PROVISIONING_FAILED: "Data provisioning failed",
    JobStatus.ALGORITHM_PROVISIONING_FAILED: "Algorithm provisioning failed",
    JobStatus.RUNNING: "Running algorithm",
    JobStatus.FILTERING_RESULTS: "Filtering results",
    JobStatus.PUBLISHING_RESULTS: "Publishing results",
    JobStatus.COMPLETED: "Job completed",
}

#: Ocean Node's texts for the codes both generations share (its C2DStatusText).
NODE_STATUS_TEXT: dict[int, str] = {
    JobStatus.WARMING_UP: "Job queued",
    JobStatus.STARTED: "Job started",
    JobStatus.CONFIGURING_VOLUMES: "Configuring volumes",
    JobStatus.PROVISIONING_SUCCESS: "Provisioning data",
    JobStatus.DATA_PROVISIONING_FAILED: "Data provisioning failed",
    JobStatus.ALGORITHM_PROVISIONING_FAILED: "Algorithm provisioning failed",
    JobStatus.RUNNING: "Running algorithm ",
    JobStatus.FILTERING_RESULTS: "Filtering results",
    JobStatus.PUBLISHING_RESULTS: "Publishing results",
    JobStatus.COMPLETED: "Job finished",
}

FINISHED = {JobStatus.DATA_PROVISIONING_FAILED, JobStatus.ALGORITHM_PROVISIONING_FAILED,
            JobStatus.COMPLETED}


class JobNotFoundError(NotFoundError):
    """No such job for this owner (the same answer whether it exists for another one)."""

    code = "job_not_found"


#: The status text of a job ended in the queue (its ``queueMaxWaitTime`` passed first).
QUEUE_EXPIRED_TEXT: Final = "Job expired in the queue"


@dataclass
class JobResult:
    """One downloadable result: ``type`` is "output", "algorithmLog" or "configurationLog"."""

    filename: str
    filesize: int
    type: str
    index: int


@dataclass
class JobRecord:
    job_id: str
    owner: str
    did: str
    agreement_id: str
    environment: str
    chain_id: int
    status: int = JobStatus.WARMING_UP
    status_text: str = STATUS_TEXT[JobStatus.WARMING_UP]
    date_created: float = 0.0
    date_finished: float | None = None
    date_started: float | None = None
    """When the algorithm started to run (status 40), None if it never did: a paid
    job is charged for ``date_finished - date_started`` (``commands/compute/settle.py``)."""
    results: list[JobResult] = field(default_factory=list)
    algorithm_did: str | None = None
    input_dids: list[str] = field(default_factory=list)
    stop_requested: bool = False
    removed: bool = False
    """Deleted: files gone, the record kept as the reference keeps it (``removed: 1``)."""
    detail: str = ""
    """Why a job ended the way it did (time limit, memory, exit code...)."""
    protocol: str = "classic"
    """``node``: started through Ocean Node's protocol, rendered by :meth:`to_node_json`."""
    free: bool = False
    max_duration: int = 0
    resources: list[dict[str, Any]] = field(default_factory=list)
    """Ocean Node's protocol: ``[{"id", "amount"}]`` granted to the job."""
    queue_max_wait: int = 0
    """Ocean Node's protocol: the job's ``queueMaxWaitTime`` (seconds; 0: no limit)."""

    def used_seconds(self, now: float) -> float | None:
        """Seconds the algorithm of an ended job ran (what a paid job is charged for);
        None if it never started. ``now`` stands in for a missing ``date_finished``."""
        if self.date_started is None:
            return None
        return max(0.0, (self.date_finished or now) - self.date_started)

    def to_json(self) -> dict[str, Any]:
        """The status object clients read (reference/operator-service field names)."""
        return {
            "jobId": self.job_id,
            "owner": self.owner,
            "documentId": self.did,
            "did": self.did,
            "agreementId": self.agreement_id,
            "environment": self.environment,
            "chainId": self.chain_id,
            "status": int(self.status),
            "statusText": self.status_text,
            "dateCreated": f"{self.date_created:.3f}",
            "dateFinished": f"{self.date_finished:.3f}" if self.date_finished else None,
            "results": [asdict(r) for r in self.results],
            "algoDID": self.algorithm_did,
            "inputDID": self.input_dids,
            "stopreq": int(self.stop_requested),
            "removed": int(self.removed),
            "algorithmLogUrl": None,
            "resultsUrls": [],
            "resultsDid": "",
            "detail": self.detail,
        }

    def to_node_json(self) -> dict[str, Any]:
        """The job as Ocean Node's ``ComputeJob`` (C2D v2 field names and texts)."""
        status = int(self.status)
        text = ("Job stopped" if self.stop_requested and status in FINISHED
                else self.status_text if self.status_text == QUEUE_EXPIRED_TEXT
                else NODE_STATUS_TEXT.get(status, self.status_text))
        return {
            "owner": self.owner,
            "did": self.did or None,
            "jobId": self.job_id,
            "dateCreated": f"{self.date_created:.3f}",
            "dateFinished": f"{self.date_finished:.3f}" if self.date_finished else None,
            "status": status,
            "statusText": text,
            "results": [asdict(r) for r in self.results],
            "inputDID": self.input_dids,
            "algoDID": self.algorithm_did,
            "maxJobDuration": self.max_duration,
            "agreementId": self.agreement_id or None,
            "environment": self.environment,
            "metadata": {},
            "terminationDetails": {"exitCode": None, "OOMKilled": None},
            "queueMaxWaitTime": self.queue_max_wait,
            "stopRequested": self.stop_requested,
            "isFree": self.free,
            "resources": self.resources,
            "detail": self.detail,
        }

    def to_store(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> JobRecord:
        results = [JobResult(**r) for r in data.pop("results", [])]
        return cls(**data, results=results)
