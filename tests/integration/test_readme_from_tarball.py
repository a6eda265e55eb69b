"""The README's commands, as written, from the installed tarball (issue #19: "the README's commands run as written
from a fresh clone and from an installed tarball"; test_demo.py runs the fresh clone's `make demo`).

The collection is built as test_collection_tarball.py builds it and installed with ``ansible-galaxy collection install
--no-deps -p ~/.ansible/collections`` under a HOME of the test's own, so the README's ``~/.ansible/collections/...``
inventory path holds as written; the dependencies are the ``ansible`` package's (docs/getting-started.md: "the
``ansible`` 12 package has them all"), in the venv's site-packages. The commands are read from README.md's "Use
against real AWS" section: its shell blocks (not the install recipe) and its ``vars.yml``. They run one by one with
bash, in README order, from a directory outside the repository, with the environment a user has there: the venv's
PATH, that HOME, ANSIBLE_COLLECTIONS_PATH naming the installed copy and site-packages only, no ansible.cfg, no
PYTHONPATH, and the ``aws`` fixture's AWS settings (endpoint, region, credentials). Nothing is substituted: the
README's key pair ``me`` is imported first, as the user has one.

The README's list after ``<!-- reaches-nodes`` says which commands reach the cluster's nodes; the nodes here are
addresses moto hands out, which nothing may connect to. So: ``launch_cluster`` runs with the flag that list gives
for its AWS half (``-e provision_only=true``); the other ssh commands are not run (``ssh -G`` shows where ``ssh -F
... leader`` would go, without connecting); ``autoscale`` reads its ``kubeconfig`` from the Kubernetes API stand-in
(harness.kube_api, the ``kube`` fixture) as ``admin.conf``, the leader's admin kubeconfig the README names. Any ssh
Ansible would start is ``false`` (ANSIBLE_SSH_EXECUTABLE), so that a command wrongly left off the list fails
without an ssh connection. ANSIBLE_VERBOSITY=2 prints each task's file, which proves the installed copy ran; the YAML result format
lets the debug results be read.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness import collection_tarball
from harness.ansible_output import graph_groups, results
from harness.kube_workloads import toil_job
from harness.paths import REPO, VENV_BIN, venv_executable
from harness.toil_interop import import_key_pair, purge_toil_cluster

README = REPO / "README.md"
SECTION = "## Use against real AWS"
NODES_MARKER = "<!-- reaches-nodes"
COMMAND_TIMEOUT = 300


@dataclass(frozen=True)
class Command:
    text: str  # one shell command as the README writes it (a part of an ``&&`` list, continuation lines joined)
    name: str  # the playbook's short name (launch_cluster) or the program (ansible-inventory, ssh, export)


def readme_section() -> str:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end >= 0 else len(text)]


def fenced_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """(offset, body) of every ```language block in ``text``."""
    return [(m.start(), m[1]) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


def command_name(command: str) -> str:
    words = shlex.split(command, comments=True)
    if words[0] == "ansible-playbook":
        return next(w for w in words if w.startswith("toil.cluster.")).removeprefix("toil.cluster.")
    return words[0]


def uncommented(command: str) -> str:
    """``command`` without its trailing ``# comment`` (the README's comments follow a space)."""
    return re.sub(r"\s+#\s.*$", "", command)


def readme_commands(section: str) -> list[Command]:
    """The section's shell commands in order: every sh block but the install recipe's, a line with ``\\`` joined to
    the next, comment-only lines left out, an ``a && b`` line as its two commands."""
    recipe = section.find("<!-- install-recipe")
    commands = []
    for offset, body in fenced_blocks(section, "sh"):
        if recipe >= 0 and section.find("```sh", recipe) == offset:
            continue
        for line in body.replace("\\\n", "").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands += [Command(part.strip(), command_name(part)) for part in line.split(" && ")]
    return commands


def readme_vars_file(section: str) -> str:
    (body,) = [body for _offset, body in fenced_blocks(section, "yaml") if body.startswith("# vars.yml\n")]
    return body


def reaches_nodes(section: str, names: set[str]) -> tuple[set[str], str, set[str]]:
    """The README's list of what reaches the nodes: (over ssh, launch_cluster's AWS-only flag, through kubeconfig)."""
    after = section[section.index(NODES_MARKER) :].split("\n", 1)[1]
    items = re.findall(r"^- (.*(?:\n  .*)*)", after.split("\n\n", 1)[0], re.MULTILINE)
    assert len(items) == 2 and items[0].startswith("over ssh:") and "`kubeconfig`" in items[1], items
    ssh, api = (set(re.findall(r"`([^`]+)`", item)) for item in items)
    (aws_only_flag,) = [code for code in ssh if code.startswith("-e ")]
    return ssh & names, aws_only_flag, api & names


@functools.cache
def site_packages() -> Path:
    """The venv's site-packages, where the ``ansible`` package keeps its collections."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([venv_executable("python"), "-c", code], check=True, capture_output=True, text=True).stdout.strip())


def user_environment(aws_env: dict[str, str], home: Path, collections: Path) -> dict[str, str]:
    """A user's shell with the venv activated, the installed collection and the endpoint's AWS settings; nothing of
    this checkout's (no ansible.cfg, no PYTHONPATH, no ANSIBLE_* from the test run)."""
    no_ssh = shutil.which("false")
    assert no_ssh
    return {
        **{k: v for k, v in aws_env.items() if k.startswith("AWS_")},
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(home / "tmp"),
        "ANSIBLE_COLLECTIONS_PATH": f"{collections}:{site_packages()}",
        # The test's, not the user's: no ssh ever starts (no node is contacted), task paths shown, results as YAML.
        "ANSIBLE_SSH_EXECUTABLE": no_ssh,
        "ANSIBLE_VERBOSITY": "2",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
        "ANSIBLE_NOCOLOR": "1",
    }


def loaded_files(output: str) -> set[str]:
    """The playbook and task files an ansible-playbook run at -vv names."""
    return set(re.findall(r"^task path: (\S+):\d+$", output, re.MULTILINE)) | set(re.findall(r"^\d+ plays? in (\S+)$", output, re.MULTILINE))


def test_the_readme_commands_run_as_written_from_the_installed_tarball(aws, kube, tmp_path):
    section = readme_section()
    commands = readme_commands(section)
    names = {c.name for c in commands}
    over_ssh, aws_only_flag, through_kubeconfig = reaches_nodes(section, names)
    assert {"launch_cluster", "ssh", "rsync_cluster", "run_workflow"} <= over_ssh and through_kubeconfig == {"autoscale"}
    assert aws_only_flag == "-e provision_only=true"

    home, work = tmp_path / "home", tmp_path / "work"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    assert REPO not in work.resolve().parents
    collections = collection_tarball.install_alone(collection_tarball.build(REPO, tmp_path / "dist"), home / ".ansible" / "collections")
    installed = collections / "ansible_collections" / "toil" / "cluster"
    assert (installed / "MANIFEST.json").is_file()
    assert not (site_packages() / "ansible_collections" / "toil").exists()  # the only toil.cluster is the installed one
    env = user_environment(aws.env, home, collections)
    listed = subprocess.run(["ansible-galaxy", "collection", "list", "toil.cluster"], cwd=work, env=env, check=True, capture_output=True, text=True)
    assert re.findall(r"^# (\S+)$", listed.stdout, re.MULTILINE) == [str(collections / "ansible_collections")], listed.stdout

    # What the user has before the README's commands: the key pair it names, vars.yml, the leader's admin.conf.
    (work / "vars.yml").write_text(readme_vars_file(section))
    variables = yaml.safe_load(readme_vars_file(section))
    cluster = variables["cluster_name"]
    import_key_pair(aws, variables["key_pair_name"], tmp_path)
    aws.add_cleanup(purge_toil_cluster, aws.env, cluster, aws.region)  # if a command fails before destroy_cluster
    toil_job(kube, "admin-toil-align-0", 6, 2**30)  # pending Toil jobs: 2 fit a c5.4xlarge (16 vCPUs)
    toil_job(kube, "admin-toil-align-1", 6, 2**30)
    toil_job(kube, "admin-toil-align-2", 6, 2**30)
    kube.write_kubeconfig(str(work / "admin.conf"))

    exports: list[str] = []
    outputs: dict[str, str] = {}
    for command in commands:
        if command.name == "export":
            exports.append(command.text)
            continue
        if command.name in over_ssh - {"launch_cluster"}:
            continue
        text = f"{uncommented(command.text)} {aws_only_flag}" if command.name == "launch_cluster" else command.text
        proc = subprocess.run(  # the user's shell: the README's exports so far, then the command
            ["bash", "-euo", "pipefail", "-c", "\n".join([*exports, text])],
            cwd=work, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{text}\nrc {proc.returncode}\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
        outputs[command.name] = proc.stdout
        if command.text.startswith("ansible-playbook"):
            files = loaded_files(proc.stdout)
            assert files, text
            assert sorted(f for f in files if not f.startswith(f"{installed}/")) == [], f"{text} ran files not from the installed copy"
        if command.name == "plan":
            assert aws.client("ec2").describe_instances()["Reservations"] == []  # a plan launches nothing
        if command.name == "launch_cluster":
            launched = cluster_instances(aws, cluster)
        if command.name == "autoscale":
            assert cluster_instances(aws, cluster) == launched  # plan_only
        if command.name == "destroy_cluster":
            assert cluster_instances(aws, cluster) == {}
    ran = set(outputs)
    assert {"plan", "ansible", "ansible-doc", "launch_cluster", "ansible-inventory", "status", "ssh_config", "autoscale", "destroy_cluster"} <= ran

    # The installed copy answered: ansible-doc names its file.
    assert f"({installed}/plugins/modules/toil_cluster.py)" in outputs["ansible-doc"]
    assert "SUCCESS" in outputs["ansible"]

    # launch_cluster's AWS half: the leader and the static pool of 2 (vars.yml's workers 0-4,2: the ranged pool starts empty).
    assert sorted(launched.values()) == ["leader", "worker", "worker"]
    (leader,) = [i for i, kind in launched.items() if kind == "leader"]

    # The documented inventory file, as ANSIBLE_INVENTORY names it.
    groups = graph_groups(outputs["ansible-inventory"])
    assert groups["toil_leaders"] == [leader]
    assert sorted(groups[f"toil_cluster_{cluster.replace('-', '_')}"]) == sorted(launched)

    status = results(outputs["status"])["Show the cluster's status"]["msg"]["status"]
    assert status["leader"]["instance_id"] == leader and status["node_count"] == 3

    # ssh_config wrote ~/.ssh/toil-my-cluster.config; `ssh -F ... leader` would go to the leader (-G: print, not connect).
    ssh_command = next(c.text for c in commands if c.name == "ssh").removeprefix("ssh ")
    resolved = subprocess.run(["bash", "-c", f"ssh -G {ssh_command}"], cwd=work, env=env, check=True, capture_output=True, text=True, timeout=30).stdout
    assert f"hostname {status['leader_address']}" in resolved.splitlines()

    # autoscale plan_only through admin.conf: the pending jobs want 2 spot nodes; nothing was launched for them.
    plan = results(outputs["autoscale"])["Show the plan"]["msg"]
    assert plan["plan_only"] is True and plan["queue_size"] == 3
    assert {p["name"]: p["desired"] for p in plan["pools"]} == {"c5-4xlarge-spot": 2, "t3-large": 2}
    assert "GET /api/v1/pods" in kube.calls()

    # Nothing left on the endpoint once the user's key pair goes too.
    aws.client("ec2").delete_key_pair(KeyName=variables["key_pair_name"])
    assert aws.leftovers(include_fixtures=True) == {}


def cluster_instances(aws, cluster: str) -> dict[str, str]:
    """{instance id: ToilNodeType} of the cluster's instances that are not terminated."""
    reservations = aws.client("ec2").describe_instances(Filters=[{"Name": "tag:clusterName", "Values": [cluster]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return {i["InstanceId"]: next(t["Value"] for t in i["Tags"] if t["Key"] == "ToilNodeType") for i in instances}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ansible-playbook toil.cluster.status -e @vars.yml   # pools", [("ansible-playbook toil.cluster.status -e @vars.yml   # pools", "status")]),
        (
            "ansible-playbook toil.cluster.ssh_config -e @vars.yml && ssh -F f leader",
            [("ansible-playbook toil.cluster.ssh_config -e @vars.yml", "ssh_config"), ("ssh -F f leader", "ssh")],
        ),
        ("ansible-playbook toil.cluster.plan -e a=b \\\n  -e c=d", [("ansible-playbook toil.cluster.plan -e a=b   -e c=d", "plan")]),
    ],
)  # fmt: skip
def test_the_command_reader_splits_and_names_commands(line, expected):
    section = f"{SECTION}\n\n<!-- install-recipe -->\n```sh\npip install x\n```\n\n```sh\n# a comment\n{line}\n```\n"
    assert [(c.text, c.name) for c in readme_commands(section)] == expected


def test_a_flag_added_to_a_command_goes_before_its_comment():
    line = "ansible-playbook toil.cluster.launch_cluster -e @vars.yml   # toil launch-cluster (a re-run converges)"
    assert uncommented(line) == "ansible-playbook toil.cluster.launch_cluster -e @vars.yml"
    assert uncommented("ansible-playbook toil.cluster.plan -e tags=a#b") == "ansible-playbook toil.cluster.plan -e tags=a#b"
