"""The kubernetes role on an NVIDIA GPU worker, on podman test hosts over real SSH (issue #18, Accelerators).

Two Debian 12 hosts with systemd (tests/harness/hosts): a leader, whose GPUs the role looks for in the real sysfs of
this machine (it has none), and a worker with its GPU forced on by ``kubernetes_nvidia_gpu: true``. kubeadm and
kubelet are the test doubles of harness.hosts.kube_double_repo. NVIDIA's repositories are unreachable from here and
the driver cannot run without a GPU, so ONLY the packages are stand-ins (harness.hosts.nvidia_double_repo): the role's
production path runs as it would on EC2 - two repositories signed-by keys checked against the pinned fingerprint and
checksum, the apt preference that pins the driver's version (proven: the double repository offers a newer dependency
that apt would otherwise take), the pinned and held packages, modprobe, containerd's configuration with the nvidia
runtime (validated by ``containerd config dump`` before the restart, and running), and the GPU label at join, which
the kubelet double registers in the leader's API stand-in. Not exercised here: DKMS building the module, the driver
loading, the real nvidia-container-runtime, and the device plugin's pod (see docs/testing.md).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from harness.hosts import kube_double_repo, nvidia_double_repo, podman_hosts
from harness.hosts.role_hosts import ansible_env, base_env, changed_tasks, failures
from harness.kube_remote import RemoteKube
from harness.playbooks import PlaybookResult, run_ansible_playbook

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

KUBE_MOUNT, NVIDIA_MOUNT = "/srv/kube-double-repo", "/srv/nvidia-double"
LEADER, GPU = "tcl-leader", "tcl-gpu"
# As the toil_ec2 inventory gives them (plugins/module_utils/inventory.py).
NODE = {"toil_cluster": "lab", "toil_leader": LEADER, "toil_preemptible": False, "toil_region": "us-west-2", "toil_zone": "us-west-2a"}
HOSTVARS = {
    LEADER: {**NODE, "toil_node_type": "leader", "toil_pool": None, "toil_instance_id": "i-00000000000000001"},
    GPU: {**NODE, "toil_node_type": "worker", "toil_pool": "g4dn.xlarge", "toil_instance_id": "i-00000000000000002", "kubernetes_nvidia_gpu": True},
}
DRIVER, TOOLKIT = nvidia_double_repo.DRIVER_VERSION, nvidia_double_repo.TOOLKIT_VERSION
TOOLKIT_PACKAGES = ["libnvidia-container-tools", "libnvidia-container1", "nvidia-container-toolkit", "nvidia-container-toolkit-base"]
CONVERGE = "- name: Kubernetes on every node\n  hosts: toil_nodes\n  roles:\n    - role: toil.cluster.kubernetes\n"


@dataclass
class Lab:
    lab: podman_hosts.PodmanLab
    nvidia: nvidia_double_repo.NvidiaDoubleRepos
    runs: list[PlaybookResult] = field(default_factory=list)

    def host(self, name: str) -> podman_hosts.Host:
        return self.lab.hosts[name]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Generator[Lab, None, None]:
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup` (it installs the test hosts' Debian packages)", pytrace=False)
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("kubernetes-nvidia")
    kube = kube_double_repo.build(workdir / "kube-repo")
    nvidia = nvidia_double_repo.build(workdir / "nvidia-repo")
    podman_lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(kube.path), KUBE_MOUNT), (str(workdir / "nvidia-repo"), NVIDIA_MOUNT)])
    control_dir = workdir / "cp"
    try:
        podman_lab.start([LEADER, GPU], HOSTVARS)
        groups = {"toil_nodes": [LEADER, GPU], "toil_leaders": [LEADER], "toil_workers": [GPU]}
        inventory = podman_lab.inventory(groups)
        lab = Lab(podman_lab, nvidia)
        overrides = {**kube.role_vars(KUBE_MOUNT), **nvidia.role_vars(NVIDIA_MOUNT)}
        for run in ("first", "second"):
            lab.runs.append(
                run_ansible_playbook(
                    CONVERGE,
                    base_env(),
                    workdir / run,
                    inventory=str(inventory),
                    extra_vars=overrides,
                    env=ansible_env(control_dir),
                    expect_rc=None,
                    timeout=900,
                    local=False,
                )
            )
            if lab.runs[-1].rc != 0:
                break
        yield lab
    finally:
        errors = podman_lab.close([control_dir])
        assert not errors, f"test hosts were not cleaned up: {errors}"


def test_the_gpu_worker_converges_and_a_second_run_changes_nothing(lab: Lab) -> None:
    assert lab.runs[0].rc == 0, failures(lab.runs[0])
    assert len(lab.runs) == 2 and lab.runs[1].rc == 0, failures(lab.runs[-1])
    assert {host: stats["changed"] for host, stats in lab.runs[1].stats.items()} == {LEADER: 0, GPU: 0}, changed_tasks(lab.runs[1])


def test_nvidias_repositories_are_added_with_their_keys_checked(lab: Lab) -> None:
    gpu = lab.host(GPU)
    for name, repo, keyring in (
        ("nvidia-cuda", lab.nvidia.driver, "/etc/apt/keyrings/nvidia-cuda-keyring.asc"),
        ("nvidia-container-toolkit", lab.nvidia.toolkit, "/etc/apt/keyrings/nvidia-container-toolkit-keyring.asc"),
    ):
        source = gpu.read(f"/etc/apt/sources.list.d/{name}.sources")
        assert f"Signed-By: {keyring}" in source
        assert gpu.sh(f"sha256sum {keyring}").split()[0] == repo.key_sha256
        fingerprints = re.findall(r"^fpr:+([0-9A-F]{40}):", gpu.sh(f"gpg --show-keys --with-colons {keyring}"), re.M)
        assert repo.key_fingerprint in fingerprints
    # The leader has no GPU (this machine's sysfs lists none): nothing of NVIDIA's.
    assert lab.host(LEADER).sh("ls /etc/apt/sources.list.d/ /etc/apt/keyrings/").split().count("kubernetes.sources") == 1
    assert "nvidia" not in lab.host(LEADER).sh("ls /etc/apt/sources.list.d/ /etc/apt/keyrings/ /etc/apt/preferences.d/")


def test_the_driver_and_toolkit_are_installed_at_their_pinned_versions_and_held(lab: Lab) -> None:
    gpu = lab.host(GPU)
    names = ["nvidia-open", "nvidia-kernel-open-dkms", *TOOLKIT_PACKAGES]
    versions = dict(line.split("=", 1) for line in gpu.sh(f"dpkg-query -W -f '${{Package}}=${{Version}}\\n' {' '.join(names)}").split())
    # nvidia-kernel-open-dkms: the repository offers a newer version too; the role's apt preference keeps the driver's.
    assert versions == {"nvidia-open": DRIVER, "nvidia-kernel-open-dkms": DRIVER, **dict.fromkeys(TOOLKIT_PACKAGES, TOOLKIT)}
    assert f"linux-headers-{gpu.sh('uname -r').strip()}" in gpu.sh("dpkg-query -W -f '${Package}\\n' 'linux-headers-*'").split()
    held = set(gpu.sh("apt-mark showhold").split())
    assert {"nvidia-open", *TOOLKIT_PACKAGES} <= held
    assert f"Pin: version {DRIVER}" in gpu.read("/etc/apt/preferences.d/nvidia-driver.pref")
    assert lab.host(LEADER).sh("dpkg-query -W nvidia-open 2>&1 || true").startswith("dpkg-query: no packages found")


def test_containerd_runs_with_the_nvidia_runtime_as_default_on_the_gpu_worker_only(lab: Lab) -> None:
    for name, default in ((GPU, "nvidia"), (LEADER, "runc")):
        host = lab.host(name)
        assert host.sh("systemctl is-active containerd").strip() == "active"
        # containerd's own reading of its configuration, as the role's validate: step checked before the restart.
        dump = host.sh("containerd config dump")
        assert f'default_runtime_name = "{default}"' in dump, dump
        assert ('BinaryName = "/usr/bin/nvidia-container-runtime"' in dump) == (name == GPU)
        assert "SystemdCgroup = true" in dump and 'sandbox_image = "registry.k8s.io/pause:3.10.1"' in dump
    config = lab.host(GPU).read("/etc/containerd/config.toml")
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]' in config


def test_the_gpu_worker_registers_with_the_gpu_label_and_the_kubelets_own_architecture(lab: Lab, tmp_path: Path) -> None:
    """The label the device plugin's DaemonSet selects, given to the kubelet at join (NodeRestriction lets a kubelet
    set labels outside kubernetes.io and k8s.io); kubernetes.io/arch is the kubelet's own, never overridden."""
    kube = RemoteKube(lab.host(LEADER).read("/etc/kubernetes/admin.conf"), tmp_path / "admin.conf")
    nodes = {node["metadata"]["name"]: node["metadata"]["labels"] for node in kube.objects("nodes")}
    assert nodes[GPU]["nvidia.com/gpu.present"] == "true"
    assert nodes[GPU]["toil.cluster/pool"] == "g4dn.xlarge"
    assert nodes[GPU]["kubernetes.io/arch"] == "amd64"
    assert "nvidia.com/gpu.present" not in nodes[LEADER]
    flags = lab.host(GPU).read("/var/lib/kubelet/kubeadm-flags.env")
    assert "nvidia.com/gpu.present=true" in re.search(r"--node-labels=([^\s\"]+)", flags).group(1)
    assert "kubernetes.io/arch" not in flags


def test_the_leader_renders_the_device_plugin(lab: Lab) -> None:
    docs = list(yaml.safe_load_all(lab.host(LEADER).read("/etc/kubernetes/toil.cluster/nvidia-device-plugin.yml")))
    (daemonset,) = [doc for doc in docs if doc]
    assert daemonset["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
