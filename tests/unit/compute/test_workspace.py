"""A finished job's results (``compute.workspace.finished_results``) on a real directory."""

from __future__ import annotations

from pathlib import Path

from tidegate.compute.workspace import Workspace, finished_results


def workspace_with(tmp_path: Path, log: bytes, outputs: dict[str, bytes]) -> Workspace:
    workspace = Workspace(tmp_path / "job")
    workspace.create()
    workspace.log_file.write_bytes(log)
    for name, content in outputs.items():
        (workspace.outputs / name).write_bytes(content)
    return workspace


def test_a_job_stopped_before_its_first_line_gets_the_reason_in_its_log(
        tmp_path: Path) -> None:
    """The e2e flake: a stop that came after the log file was opened but before the
    algorithm printed left result 0 empty."""
    workspace = workspace_with(tmp_path, b"", {})
    results, omitted = finished_results(workspace, "Job stopped", completed=True)
    assert omitted == 0
    assert [(r.filename, r.type, r.index) for r in results] == [
        ("algorithm.log", "algorithmLog", 0)]
    assert workspace.log_file.read_bytes() == b"tidegate: Job stopped\n"
    assert results[0].filesize == len(b"tidegate: Job stopped\n")


def test_a_log_the_algorithm_wrote_is_kept_as_it_is(tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, b"hello\n", {"out.txt": b"1"})
    results, _ = finished_results(workspace, "Job stopped", completed=True)
    assert [(r.filename, r.type) for r in results] == [("out.txt", "output"),
                                                       ("algorithm.log", "algorithmLog")]
    assert workspace.log_file.read_bytes() == b"hello\n"


def test_a_silent_algorithm_that_completed_keeps_an_empty_log(tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, b"", {})
    results, _ = finished_results(workspace, "", completed=True)
    assert workspace.log_file.read_bytes() == b"" and results[0].filesize == 0


def test_a_job_that_did_not_complete_has_only_its_log_with_the_reason(
        tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, b"partial\n", {"out.txt": b"1"})
    results, _ = finished_results(workspace, "Algorithm provisioning failed", completed=False)
    assert [r.type for r in results] == ["algorithmLog"]
    assert workspace.log_file.read_bytes() == b"partial\ntidegate: Algorithm provisioning failed\n"
