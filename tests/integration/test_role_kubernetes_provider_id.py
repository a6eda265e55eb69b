"""The kubernetes role's providerID (issue 17), on this machine (no container host): hostile instance ids and zones
from the inventory fail the role's argument validation, before its first task; good ones land in the kubeadm
configuration's kubeletExtraArgs (rendered from the role's own defaults and template). The molecule scenario
(extensions/molecule/kubernetes) proves the flag reaches the kubelet."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.paths import REPO
from harness.playbooks import run_ansible_playbook

ROLE = REPO / "roles" / "kubernetes"
GOOD = {"toil_instance_id": "i-0123456789abcdef0", "toil_zone": "us-west-2a"}
# The role's default node name reads ansible_facts; given here, the rendering play needs no facts.
NO_FACTS = {"kubernetes_node_name": "n1"}
HOSTILE = {
    "bad-id-newline": {"toil_instance_id": "i-0123456789abcdef0\n--cloud-provider=aws", "toil_zone": "us-west-2a"},
    "bad-id-yaml": {"toil_instance_id": 'i-0123456789abcdef0"\n    - name: v\n      value: "9', "toil_zone": "us-west-2a"},
    "bad-zone": {"toil_instance_id": "i-0123456789abcdef0", "toil_zone": "us-west-2a --v=9"},
}


def test_hostile_ids_fail_before_any_task_and_good_ones_reach_kubelet_extra_args(tmp_path: Path) -> None:
    local = {"ansible_connection": "local", "ansible_python_interpreter": str(REPO / ".venv" / "bin" / "python")}
    inventory = {"all": {"hosts": {"good": {**local, **GOOD}, "no-zone": {**local, "toil_instance_id": GOOD["toil_instance_id"]}}}}
    inventory["all"]["hosts"].update({name: {**local, **hostvars} for name, hostvars in HOSTILE.items()})
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    plays = [
        {  # the registration the role renders, from its defaults (first: a play whose hosts all fail ends the run)
            "hosts": "good,no-zone",
            "gather_facts": False,
            "vars": {"_kubernetes_labels": {}},
            "tasks": [
                {"name": "Role defaults", "ansible.builtin.include_vars": {"file": str(ROLE / "defaults" / "main.yml")}},
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(ROLE / "templates" / "kubeadm-node-registration.yaml.j2"),
                        "dest": str(tmp_path / "{{ inventory_hostname }}.yaml"),
                        "mode": "0600",
                    },
                },
            ],
        },
        {  # the role itself: its argument validation must stop it before its first task
            "hosts": ",".join(HOSTILE),
            "gather_facts": True,  # the role's argument spec itself templates a fact (the host name)
            "gather_subset": ["min"],
            "check_mode": True,
            # A guard, never reached: were the ids not checked, the role's first task (its input assert) stops here.
            "vars": {"kubernetes_version": "not-a-version"},
            "roles": [{"role": "toil.cluster.kubernetes"}],
        },
    ]
    result = run_ansible_playbook(plays, {}, tmp_path / "run", inventory=str(tmp_path / "inventory.json"), expect_rc=None, extra_vars=NO_FACTS)
    failed = {host: message for _task, host, message in result.failed_tasks()}
    assert set(failed) == set(HOSTILE), result.describe()
    for host in ("bad-id-newline", "bad-id-yaml"):
        assert "is not an EC2 instance id" in failed[host], failed[host]
    assert "is not an EC2 availability zone" in failed["bad-zone"], failed["bad-zone"]
    for host in HOSTILE:  # nothing but the facts and the validation ran
        assert result.stats[host]["ok"] == 1 and result.stats[host]["changed"] == 0, result.stats[host]
        ran = [t["task"]["name"] for t in result.tasks() if host in t["hosts"]]
        assert len(ran) == 2 and ran[0] == "Gathering Facts" and "Validating arguments against arg spec 'main'" in ran[1], ran

    registration = yaml.safe_load((tmp_path / "good.yaml").read_text())["nodeRegistration"]
    assert registration["kubeletExtraArgs"] == [{"name": "provider-id", "value": "aws:///us-west-2a/i-0123456789abcdef0"}]
    assert "kubeletExtraArgs" not in yaml.safe_load((tmp_path / "no-zone.yaml").read_text())["nodeRegistration"]
