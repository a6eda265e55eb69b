"""The kubernetes role's instance-store disks (tasks/ephemeral.yml) on two disks, made for real: RAID0, ext4, mounts, binds.

(One disk, a loop device handed to a podman test host, is the molecule scenario extensions/molecule/kubernetes_ephemeral.)

This machine's kernel has no md driver (no /proc/mdstat, no modules), and its KVM only runs
guests built for it, so a RAID0 cannot be made in a container or a namespace here. The test boots a
throw-away VM instead: qemu (TCG emulation) with Debian 12's cloud kernel (downloaded from the Debian
mirror with apt, as the image's packages are) and, as root file system, the test-host image with mdadm
installed, loaded into memory. The VM has two virtio disks and no network but an ssh port forwarded from
127.0.0.1 (qemu's restricted user network). Its init is a short script (modules, network, sshd) rather
than systemd, which is too slow to boot under emulation; the role's mdadm, mkfs.ext4, mount and bind
mounts run for real in the VM's kernel. The test then stops the array and assembles it again (under a new
name, as after a reboot without mdadm.conf), mounts everything from /etc/fstab, and runs the role again.

The VM is stopped at the end, also after a failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.hosts import podman_hosts
from harness.hosts.role_hosts import base_env
from harness.playbooks import PlaybookResult, run_ansible_playbook

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

MOUNT = "/mnt/ephemeral"
BIND_DIRS = ["/var/lib/kubelet", "/var/lib/containerd", "/var/lib/toil"]
KERNEL_PACKAGE = "linux-image-cloud-amd64"  # Debian 12's kernel for virtual machines (virtio, md as modules)
VM_MODULES = [  # what the VM needs beyond the kernel's built-ins (ext4 is built in)
    "drivers/virtio",
    "drivers/block/virtio_blk.ko",
    "drivers/net/virtio_net.ko",
    "drivers/net/net_failover.ko",
    "net/core/failover.ko",
    "drivers/md/md-mod.ko",
    "drivers/md/raid0.ko",
]

PLAYBOOK = """\
- name: Instance-store disks
  hosts: all
  gather_facts: false
  tasks:
    # The disks are real: never run this anywhere but on the test host.
    - name: Make sure this is the test host
      ansible.builtin.command: hostname
      register: hostname
      changed_when: false
      failed_when: hostname.stdout != inventory_hostname

    - name: The kubernetes role's ephemeral disk tasks
      ansible.builtin.include_role:
        name: toil.cluster.kubernetes
        tasks_from: ephemeral.yml
"""

VM_INIT = """\
#!/bin/sh
# The test VM's init: the root file system is this initramfs; load the drivers, configure qemu's user
# network, start sshd. (systemd takes minutes to boot under emulation.)
chmod 0755 /
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd
hostname test-vm && echo "127.0.1.1 test-vm" >> /etc/hosts  # sudo looks its host up; there is no DNS
for m in virtio_pci virtio_blk virtio_net md_mod raid0; do modprobe $m; done
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/usr/sbin/sshd -D -e &
while :; do wait; sleep 5; done
"""

# Runs in a container of the test-host image; its file system becomes the VM's.
VM_PREPARE = """\
set -eu
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends mdadm >/dev/null
release=$(ls /kernel/lib/modules)
m=/usr/lib/modules/$release
mkdir -p "$m" && cp -a /kernel/lib/modules/$release/modules.builtin* /kernel/lib/modules/$release/modules.order "$m/"
for ko in {modules}; do
    mkdir -p "$(dirname "$m/kernel/$ko")" && cp -a "/kernel/lib/modules/$release/kernel/$ko" "$m/kernel/$ko"
done
depmod -b / "$release"
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
rm -rf /usr/share/doc /usr/share/man /usr/share/locale
tar -C / --one-file-system --exclude=./proc --exclude=./sys --exclude=./dev --exclude=./kernel --exclude=./out \
    -cf /out/root.tar .
"""


def run(cmd: list[str], timeout: float = 120, **kwargs) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def converge(workdir: Path, inventory: Path, name: str, extra_vars: dict, timeout: float = 600) -> PlaybookResult:
    run_dir = workdir / name
    env = {"ANSIBLE_SSH_CONTROL_PATH_DIR": podman_hosts.control_path_dir(workdir / "cp")}
    return run_ansible_playbook(PLAYBOOK, base_env(), run_dir, inventory=str(inventory), extra_vars=extra_vars, env=env, expect_rc=None, timeout=timeout)


def changed_tasks(result: PlaybookResult) -> list[str]:
    return [entry["task"]["name"] for entry in result.tasks() if any(r.get("changed") for r in entry["hosts"].values())]


def mounts(sh) -> dict[str, tuple[str, str]]:
    """Mount point -> (source, fstype) from the kernel's mount table (findmnt)."""
    table = json.loads(sh("findmnt --json --list --output TARGET,SOURCE,FSTYPE"))["filesystems"]
    return {f["target"]: (f["source"], f["fstype"]) for f in table}


def fstab(sh) -> list[list[str]]:
    return [line.split() for line in sh("cat /etc/fstab").splitlines() if line.strip() and not line.startswith("#")]


def assert_layout(sh, device: str) -> None:
    """The disk is ext4 at MOUNT, every bind dir is its subdirectory, /etc/fstab says so, and data lands on it.

    extensions/molecule/kubernetes_ephemeral/verify.yml checks the same for one disk."""
    table = mounts(sh)
    assert table[MOUNT] == (device, "ext4"), table
    for directory in BIND_DIRS:
        assert table[directory] == (f"{device}[{directory}]", "ext4"), table
    uuid = sh(f"blkid --probe --match-tag UUID --output value {device}").strip()
    entries = {fields[1]: fields for fields in fstab(sh)}
    assert entries[MOUNT][:3] == [f"UUID={uuid}", MOUNT, "ext4"], entries
    for directory in BIND_DIRS:
        src, _target, fstype, opts = entries[directory][:4]
        assert (src, fstype) == (f"{MOUNT}{directory}", "none"), entries[directory]
        assert {"bind", "nofail", f"x-systemd.requires-mounts-for={MOUNT}"} <= set(opts.split(",")), opts
    sh("echo written-through-the-bind > /var/lib/toil/probe")
    assert sh(f"cat {MOUNT}/var/lib/toil/probe").strip() == "written-through-the-bind"


# ---------------------------------------------------------------------------------------------- two disks
def write_cpio(root: Path, out: Path) -> None:
    """An uncompressed newc cpio archive of ``root`` (the kernel unpacks it as its initramfs); no cpio(1) here."""
    inode = 0
    with out.open("wb") as f:

        def entry(name: str, mode: int, uid: int, gid: int, mtime: int, data: bytes) -> None:
            nonlocal inode
            inode += 1
            encoded = name.encode() + b"\0"
            fields = (inode, mode, uid, gid, 1, mtime, len(data), 0, 0, 0, 0, len(encoded), 0)
            f.write(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded)
            f.write(b"\0" * (-(110 + len(encoded)) % 4) + data + b"\0" * (-len(data) % 4))

        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted(dirnames + filenames):
                path = Path(dirpath, name)
                st = path.lstat()
                rel = str(path.relative_to(root))
                if stat.S_ISLNK(st.st_mode):
                    data = os.readlink(path).encode()
                elif stat.S_ISREG(st.st_mode):
                    data = path.read_bytes()
                elif stat.S_ISDIR(st.st_mode):
                    data = b""
                else:  # device nodes and sockets: devtmpfs provides /dev
                    continue
                entry(rel, st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime), data)
        entry("TRAILER!!!", 0, 0, 0, 0, b"")


def build_vm(workdir: Path, public_key: Path) -> tuple[Path, Path]:
    """Debian 12's cloud kernel and an initramfs made from the test-host image plus mdadm and the modules."""
    show = run(["apt-cache", "show", "--no-all-versions", KERNEL_PACKAGE])
    depends = re.search(r"^Depends: (linux-image-\S+)", show, re.MULTILINE)
    assert depends, f"no kernel behind {KERNEL_PACKAGE}: {show}"
    debs = workdir / "debs"
    debs.mkdir()
    debs.chmod(0o777)  # apt downloads as _apt
    run(["apt-get", "download", "-q", depends.group(1)], cwd=debs, timeout=300)
    kernel = workdir / "kernel"
    run(["dpkg-deb", "-x", str(next(debs.glob("*.deb"))), str(kernel)])
    vmlinuz = next((kernel / "boot").glob("vmlinuz-*"))
    out = workdir / "out"
    out.mkdir()
    prepare = VM_PREPARE.replace("{modules}", " ".join(VM_MODULES))
    podman_hosts.podman("run", "--rm", "-v", f"{kernel}:/kernel:ro", "-v", f"{out}:/out", podman_hosts.IMAGE, "bash", "-c", prepare, timeout=600)
    root = workdir / "root"
    root.mkdir()
    run(["tar", "-x", "-f", str(out / "root.tar"), "-C", str(root)])
    (out / "root.tar").unlink()
    for directory in ("proc", "sys", "dev"):
        (root / directory).mkdir(exist_ok=True)
    (root / "init").write_text(VM_INIT)
    (root / "init").chmod(0o755)
    shutil.copy(public_key, root / "etc/ssh/test_authorized_keys")
    (root / "etc/ssh/test_authorized_keys").chmod(0o644)
    initrd = workdir / "rootfs.cpio"
    write_cpio(root, initrd)
    shutil.rmtree(root)
    return vmlinuz, initrd


@dataclass
class RaidVM:
    ssh: list[str]
    runs: dict[str, PlaybookResult] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def sh(self, script: str) -> str:
        return run([*self.ssh, f"sudo bash -c {shlex.quote(script)}"], timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def raid_vm(tmp_path_factory: pytest.TempPathFactory) -> Generator[RaidVM, None, None]:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.fail("qemu-system-x86_64 is missing: `apt-get install qemu-system-x86` (make test-vm installs it)", pytrace=False)
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("ephemeral-raid0")
    key = workdir / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "toil.cluster test", "-f", str(key)])
    vmlinuz, initrd = build_vm(workdir, key.with_suffix(".pub"))
    disks = [workdir / f"disk{i}.img" for i in (1, 2)]
    for disk in disks:
        with disk.open("wb") as f:
            f.truncate(256 << 20)
    port = free_port()
    cmd = [qemu, "-accel", "tcg", "-m", "2048", "-nographic", "-no-reboot", "-kernel", str(vmlinuz), "-initrd", str(initrd)]
    cmd += ["-append", "console=ttyS0 panic=-1 rdinit=/init quiet"]
    for disk in disks:
        cmd += ["-drive", f"file={disk},if=virtio,format=raw"]
    cmd += ["-nic", f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"]
    console = (workdir / "console.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes", "ConnectTimeout=10", "LogLevel=ERROR"]
    ssh = ["ssh", "-i", str(key), "-p", str(port), *(a for o in options for a in ("-o", o)), "admin@127.0.0.1"]
    try:
        deadline = time.monotonic() + 300
        while subprocess.run([*ssh, "sudo -n true"], capture_output=True, timeout=60, check=False).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the VM did not answer ssh: {(workdir / 'console.log').read_text(errors='replace')[-3000:]}")
            time.sleep(2)
        vm = RaidVM(ssh)
        inventory = workdir / "inventory.yml"
        host = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "admin", "ansible_become": True}
        host |= {"ansible_ssh_private_key_file": str(key), "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True, "ansible_timeout": 60}
        host |= {"ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
        inventory.write_text(json.dumps({"all": {"children": {"toil_workers": {"hosts": {"test-vm": host}}}}}))
        extra = {"kubernetes_ephemeral_devices": ["/dev/vda", "/dev/vdb"]}
        vm.runs["first"] = converge(workdir, inventory, "first", extra)
        if vm.runs["first"].rc == 0:
            vm.runs["second"] = converge(workdir, inventory, "second", extra)
            vm.facts["layout-checked"] = ""
            try:
                assert_layout(vm.sh, "/dev/md0")
                vm.facts["layout-checked"] = "yes"
            except AssertionError as error:
                vm.facts["layout-error"] = str(error)
            # As after a reboot without mdadm.conf: the array comes back under another name; fstab mounts it.
            vm.facts["mdstat-first"] = vm.sh("cat /proc/mdstat")
            vm.sh(f"umount {' '.join(BIND_DIRS)} {MOUNT} && mdadm --stop /dev/md0 && mdadm --assemble /dev/md127 /dev/vda /dev/vdb")
            vm.facts["mdstat"] = vm.sh("cat /proc/mdstat")
            vm.sh("mount -a")
            vm.runs["after-reassembly"] = converge(workdir, inventory, "after-reassembly", extra)
        yield vm
    finally:
        podman_hosts.end_ssh_masters(workdir / "cp")
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        console.close()


@pytest.mark.vm
def test_two_disks_become_a_raid0_with_the_binds(raid_vm: RaidVM) -> None:
    first = raid_vm.runs["first"]
    assert first.rc == 0, first.describe()
    mdstat = raid_vm.facts.get("mdstat-first", "")
    assert re.search(r"^md0 : active raid0 vd[ab]\[\d\] vd[ab]\[\d\]", mdstat, re.MULTILINE), mdstat
    assert raid_vm.facts.get("layout-checked") == "yes", raid_vm.facts.get("layout-error")


@pytest.mark.vm
def test_two_disks_second_run_changes_nothing(raid_vm: RaidVM) -> None:
    second = raid_vm.runs.get("second")
    assert second is not None, "the first run failed"
    assert second.rc == 0, second.describe()
    assert second.stats["test-vm"]["changed"] == 0, changed_tasks(second)


@pytest.mark.vm
def test_two_disks_reassembled_under_another_name_are_found_again(raid_vm: RaidVM) -> None:
    again = raid_vm.runs.get("after-reassembly")
    assert again is not None, "an earlier run failed"
    assert again.rc == 0, again.describe()
    assert again.stats["test-vm"]["changed"] == 0, changed_tasks(again)
    assert re.search(r"^md127 : active raid0", raid_vm.facts["mdstat"], re.MULTILINE), raid_vm.facts["mdstat"]
    assert_layout(raid_vm.sh, "/dev/md127")
