# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""File job stores (``file:<path>``): what is recognised, what is refused, and that removal is safe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.jobstore import describe_file, ensure_absent, ensure_present
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import parse_jobstore_locator


def locator(path):
    return parse_jobstore_locator(f"file:{path}")


def make_store(path, jobs=2, shared=("config.pickle", "rootJobReturnValue"), old_layout=False):
    """The directories FileJobStore.initialize makes (Toil 9.6; before 5.5 shared files lived in files/shared)."""
    for sub in ("jobs", "stats/inbox", "stats/archive", "files-flat", "files", "job-files"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    shared_dir = path / ("files/shared" if old_layout else "shared")
    shared_dir.mkdir(parents=True, exist_ok=True)
    for name in shared:
        (shared_dir / name).write_bytes(b"x" * 10)
    for index in range(jobs):
        job_dir = path / "jobs" / "kind-root" / f"instance-{index}"
        job_dir.mkdir(parents=True)
        (job_dir / "job").write_bytes(b"j" * 100)
    if jobs:
        (path / "jobs" / "kind-root" / "instance-0" / "job.new").write_bytes(b"")  # an update in progress: not a job
    return path


def test_a_file_job_store_is_described(tmp_path):
    store = make_store(tmp_path / "store")
    described = describe_file(locator(store), count_objects=True)
    assert described["exists"] is True and described["layout"] == "file" and described["path"] == str(store)
    assert described["workflow"] == {"initialized": True, "jobs": 2, "root_job_return_value": True, "status": "running"}
    assert (described["objects"], described["bytes"]) == (5, 220)
    assert described["problem"] is None and described["creation_time"] is None


def test_the_old_layout_and_a_finished_workflow(tmp_path):
    store = make_store(tmp_path / "store", jobs=0, shared=("config.pickle", "rootJobReturnValue", "succeeded.log"), old_layout=True)
    assert describe_file(locator(store))["workflow"]["status"] == "completed"


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_store(tmp_path / "store")
    assert describe_file(locator("~/store"))["path"] == str(tmp_path / "store")


@pytest.mark.parametrize("path", ["relative/store", "./store", "store"])
def test_relative_paths_are_refused(path):
    with pytest.raises(ToilInputError, match="needs an absolute path"):
        describe_file(parse_jobstore_locator(path if path == "store" else f"file:{path}"))


def test_a_free_path_is_fine_for_present_and_nothing_for_absent(tmp_path):
    described = describe_file(locator(tmp_path / "next"))
    assert described["exists"] is False and described["problem"] is None
    assert ensure_present(described)[0] is False
    assert ensure_absent(described, False)[0] is False


def test_a_missing_parent_fails_present_but_absent_has_nothing_to_do(tmp_path):
    described = describe_file(locator(tmp_path / "missing" / "store"))
    assert "does not exist: Toil could not create the job store" in described["problem"]
    with pytest.raises(ToilInputError, match="does not exist"):
        ensure_present(described)
    assert ensure_absent(described, False)[0] is False


def test_what_is_not_a_job_store_is_never_removed(tmp_path):
    plain = tmp_path / "plain"
    (plain / "jobs").mkdir(parents=True)  # jobs/ alone is not enough
    (plain / "precious").write_text("keep")
    a_file = tmp_path / "a-file"
    a_file.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(make_store(tmp_path / "store"))
    for path, problem in ((plain, "is not a Toil file job store"), (a_file, "is not a directory"), (link, "is a symbolic link")):
        described = describe_file(locator(path))
        assert described["exists"] is False and problem in described["problem"]
        with pytest.raises(ToilInputError, match="Nothing was removed"):
            ensure_absent(described, False)
    assert (plain / "precious").exists() and a_file.exists() and link.is_symlink() and (tmp_path / "store" / "jobs").is_dir()


def test_absent_counts_in_check_mode_and_removes_otherwise(tmp_path):
    store = make_store(tmp_path / "store")
    outside = tmp_path / "outside"
    outside.write_text("keep")
    (store / "files-flat" / "link-out").symlink_to(outside)  # a symlink inside is removed, never followed
    described = describe_file(locator(store))
    changed, removed, diff = ensure_absent(described, True)
    assert changed is True and removed == {"path": str(store), "objects": 6, "versions": None, "delete_markers": None, "bytes": 220, "multipart_uploads": None}
    assert diff == {"before": {"layout": "file", "locator": f"file:{store}", "path": str(store), "objects": 6, "bytes": 220}, "after": {}}
    assert store.is_dir()
    changed, removed, _diff = ensure_absent(described, False)
    assert changed is True and removed["objects"] == 6
    assert not os.path.lexists(store) and outside.read_text() == "keep"
    assert ensure_absent(describe_file(locator(store)), False)[0] is False


@pytest.mark.toil
def test_difference_toil_clean_deletes_any_directory(tmp_path):
    """``toil clean file:<dir>`` fails to resume, says "Deleting anyway" and removes the directory, job store or not."""
    toil = Path(__file__).resolve().parents[4] / ".venv-toil" / "bin" / "toil"
    if not os.access(toil, os.X_OK):
        pytest.fail(f"The real Toil is not installed: {toil} is missing. Run `make setup`.", pytrace=False)
    for name in ("for-toil", "for-us"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "precious.txt").write_text("keep")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOIL_", "AWS_")) and k != "PYTHONPATH"}
    cleaned = subprocess.run([str(toil), "clean", f"file:{tmp_path / 'for-toil'}"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert cleaned.returncode == 0 and "Deleting anyway" in cleaned.stderr, cleaned.stderr[-3000:]
    assert not (tmp_path / "for-toil").exists()
    described = describe_file(locator(tmp_path / "for-us"))
    with pytest.raises(ToilInputError, match="is not a Toil file job store"):
        ensure_absent(described, False)
    assert (tmp_path / "for-us" / "precious.txt").read_text() == "keep"
