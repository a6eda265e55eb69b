"""The wheelhouses the podman-host tests install from (mounted read-only into the hosts), made once per machine.

- ``toil()``: Toil at the ``toil`` role's pinned version with the role's default extras, for the role's
  ``toil_pip_extra_args: --no-index --find-links ...`` (the molecule scenario extensions/molecule/toil and
  test_playbook_run_workflow_hosts.py).
- ``autoscaler()``: ansible-core, boto3 and kubernetes for the ``autoscaler`` role (its molecule scenario,
  extensions/molecule/autoscaler, mounts ROOT and runs ``python -m harness.wheelhouses autoscaler`` first).

Both are for this machine's Python, which is the hosts' too (Debian 12, CPython 3.11), pinned by the constraints file
the tests' own virtualenv was made with. Each is made again only when what it holds changes (a stamp with the
requirements and the constraints). ``make setup`` makes them alongside the virtualenvs
(``python -m harness.wheelhouses``), so the tests that use them find them ready; a test calls its function anyway,
which costs nothing when the wheelhouse is up to date.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from harness.paths import REPO

ROOT = REPO / ".venv" / "wheelhouse"
PIP = REPO / ".venv" / "bin" / "pip"
TOIL_DEFAULTS = REPO / "roles" / "toil" / "defaults" / "main.yml"
AUTOSCALER_PACKAGES = ("ansible-core", "boto3", "botocore", "kubernetes")  # versions: constraints.txt


def toil_requirement() -> str:
    """``toil[<the role's default extras>]==<the role's version>``."""
    defaults = yaml.safe_load(TOIL_DEFAULTS.read_text())
    return f"toil[{','.join(defaults['toil_extras'])}]=={defaults['toil_version']}"


def _made(directory: Path, requirements: list[str], constraints: Path) -> Path:
    stamp = directory / ".requirement"
    wanted = "\n".join([*requirements, constraints.read_text()])
    if not (stamp.exists() and stamp.read_text() == wanted):
        # Made again from empty: a wheel of an old pin left here would be found by pip too, and win when higher.
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        pip = [str(PIP), "wheel", "-q", *requirements, "-c", str(constraints), "-w", str(directory)]
        subprocess.run(pip, check=True, capture_output=True, timeout=1800)
        stamp.write_text(wanted)
    return directory


def toil() -> Path:
    requirement = toil_requirement()
    return _made(ROOT / f"toil-{requirement.rsplit('==', 1)[1]}", [requirement], REPO / "tests" / "toil-constraints.txt")


def autoscaler() -> Path:
    return _made(ROOT / "autoscaler", list(AUTOSCALER_PACKAGES), REPO / "constraints.txt")


WHEELHOUSES = {"toil": toil, "autoscaler": autoscaler}

if __name__ == "__main__":
    # `python -m harness.wheelhouses [NAME ...]`: the named ones (a molecule scenario's prepare), by default all.
    unknown = set(sys.argv[1:]) - WHEELHOUSES.keys()
    if unknown:
        sys.exit(f"no wheelhouse named {', '.join(sorted(unknown))}: one of {', '.join(WHEELHOUSES)}")
    for make in (WHEELHOUSES[name] for name in sys.argv[1:] or WHEELHOUSES):
        try:
            print(f"wheelhouse ready: {make().relative_to(REPO)}")
        except subprocess.CalledProcessError as exc:
            sys.exit(f"pip wheel failed for the {make.__name__} wheelhouse:\n{exc.stderr.decode(errors='replace')[-3000:]}")
