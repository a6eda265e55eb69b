"""The roles' molecule scenarios (extensions/molecule/*/molecule.yml), each as one test of ``make test``.

Each runs ``molecule test -s <scenario>`` as a role author would (podman driver, the Debian 12 test image from
tests/harness/hosts/build-image.sh): create, prepare, converge, idempotence, the scenario's side effects and its
verify playbooks (the assertions), destroy. A scenario fails this test when any step fails; the output's tail is
the message. Host names carry a per-run prefix (MOLECULE_HOST_PREFIX) and molecule's ephemeral directory is the
test's own, as is the directory of ansible's ssh masters (ended afterwards), so two checkouts can run the same
scenario at once and no master outlives its hosts. After the run no container or network of the prefix, and no loop
device backed by a file of the run (kubernetes_ephemeral's disk), may be left.
`make molecule` runs the same scenarios without pytest.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from harness.hosts import podman_hosts
from harness.hosts.role_hosts import base_env
from harness.paths import REPO

pytestmark = pytest.mark.hosts  # podman test hosts: one lane at a time, not in `make check`

SCENARIOS = sorted(path.parent.name for path in (REPO / "extensions" / "molecule").glob("*/molecule.yml"))
MOLECULE = Path(sys.executable).with_name("molecule")


def molecule_env(prefix: str, ephemeral: Path, control_dir: Path) -> dict[str, str]:
    env = base_env()
    env.pop("ANSIBLE_CONFIG", None)  # molecule writes the provisioner's own ansible.cfg
    env.update(MOLECULE_HOST_PREFIX=prefix, MOLECULE_EPHEMERAL_DIRECTORY=str(ephemeral), PY_COLORS="0", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = podman_hosts.control_path_dir(control_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), *filter(None, [env.get("PYTHONPATH")])])  # the stand-ins in harness/
    return env


def loop_devices_under(directory: Path) -> list[str]:
    """The loop devices whose backing file is under ``directory``."""
    proc = subprocess.run(["losetup", "--list", "--json", "--output", "NAME,BACK-FILE"], capture_output=True, text=True, check=False)
    devices = json.loads(proc.stdout or "{}").get("loopdevices", [])
    return [d["name"] for d in devices if (d.get("back-file") or "").startswith(f"{directory}/")]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str, tmp_path: Path) -> None:
    podman_hosts.build_image()
    prefix = f"tcl-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        proc = subprocess.run(
            [str(MOLECULE), "test", "-s", scenario],
            cwd=REPO,
            env=molecule_env(prefix, tmp_path / "molecule", tmp_path / "cp"),
            capture_output=True,
            text=True,
            timeout=2700,
            check=False,
        )
    finally:
        podman_hosts.end_ssh_masters(tmp_path / "cp")
        left = podman_hosts.podman("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}", check=False).stdout.split()
        for name in left:
            podman_hosts.podman("rm", "-f", "-v", "-t", "3", name, check=False)
        networks = podman_hosts.podman("network", "ls", "--filter", f"name={prefix}", "--format", "{{.Name}}", check=False).stdout.split()
        for name in networks:
            podman_hosts.podman("network", "rm", "-f", name, check=False)
        loops = loop_devices_under(tmp_path)
        for device in loops:
            subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)
    assert proc.returncode == 0, f"molecule test -s {scenario} exited {proc.returncode}:\n{proc.stdout[-12000:]}\n{proc.stderr[-4000:]}"
    assert not left, f"molecule left containers: {left}"
    assert not networks, f"molecule left networks: {networks}"
    assert not loops, f"molecule left loop devices: {loops}"
