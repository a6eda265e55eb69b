"""Secrets: no AWS secret key or session token appears in any output at -vvv.

The modules run at ``-vvv`` with the default (human) output, which prints every module's arguments and
result: the whole lifecycle (launch, pools, scaler, info, job store clean, destroy) with the credentials
given both in the environment and through ``module_defaults`` (group ``toil.cluster.toil``), then the
launch_cluster and destroy_cluster playbooks, then the inventory plugin with keys in its configuration.
Each secret is a distinctive string that must not appear anywhere in stdout or stderr. The control: the
access key ID, which is not a secret, does appear (module arguments are printed at -vvv, and the grep
would find a leak), and the secret arguments show as Ansible's no_log placeholder.

The kubernetes role's join token is checked by the molecule scenario extensions/molecule/kubernetes
(verify.yml: no join token appears in the output); the collection uses no kubeadm certificate key (no --upload-certs).
"""

from __future__ import annotations

import json
import subprocess

from harness.jobstores import make_job_store
from harness.paths import REPO, venv_executable
from harness.playbooks import ansible_environment, run_ansible_playbook
from harness.resilience import ZONE, lifecycle_tasks

ACCESS_KEY = "AKIATOILSECRETSTEST1"
ENV_SECRET = "envSecretKey0ToilNeverPrintsThis0abcdefg"
PARAM_SECRET = "paramSecretKey1ToilNeverPrintsThis1abcd"
SESSION_TOKEN = "sessionToken2ToilNeverPrintsThis2abcdefgh"
SECRETS = (ENV_SECRET, PARAM_SECRET, SESSION_TOKEN)
VERBOSE = {"ANSIBLE_STDOUT_CALLBACK": "default", "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}


def leaks(text):
    return [secret for secret in SECRETS if secret in text]


def test_lifecycle_at_vvv_prints_no_secret(aws, key_pair, tmp_path):
    make_job_store(aws, "sec-store")
    defaults = {"access_key": ACCESS_KEY, "secret_key": PARAM_SECRET, "session_token": SESSION_TOKEN}
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/toil.cluster.toil": defaults},
        "tasks": lifecycle_tasks("sec", key_pair, "sec-store", tmp_path),
    }
    result = run_ansible_playbook(play, aws.env, tmp_path / "run", args=["-vvv"], env=VERBOSE, expect_rc=None)
    output = result.stdout + result.stderr
    assert result.rc == 0, output[-8000:]
    assert leaks(output) == []
    assert ACCESS_KEY in output and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output  # the control
    assert output.count('"module_args"') >= 7


def test_playbooks_at_vvv_print_no_secret(aws, key_pair, tmp_path):
    launch = {
        "cluster_name": "sec-pb",
        "zone": ZONE,
        "leader_node_type": "t3.large",
        "key_pair_name": key_pair,
        "node_types": "m5.large",
        "workers": "1",
        "provision_only": True,
    }
    env = {**VERBOSE, "AWS_SESSION_TOKEN": SESSION_TOKEN}
    outputs = []
    for name, extra_vars in (("launch_cluster", launch), ("destroy_cluster", {"cluster_name": "sec-pb", "zone": ZONE})):
        playbook = REPO / "playbooks" / f"{name}.yml"
        result = run_ansible_playbook(playbook, aws.env, tmp_path / name, extra_vars=extra_vars, args=["-vvv"], env=env, expect_rc=None)
        output = result.stdout + result.stderr
        assert result.rc == 0, output[-8000:]
        outputs.append(output)
    assert leaks("".join(outputs)) == []
    assert all('"module_args"' in output for output in outputs)


def test_inventory_at_vvv_prints_no_secret(aws, tmp_path):
    ec2 = aws.client("ec2")
    image = "ami-0d12e1ac5d5e4a002"  # tools/debian_amis.json: a Debian 12 amd64 image
    tags = [{"Key": "clusterName", "Value": "sec-inv"}, {"Key": "Name", "Value": "sec-inv"}, {"Key": "ToilNodeType", "Value": "leader"}]
    group = ec2.create_security_group(GroupName="sec-inv", Description="Toil appliance security group")["GroupId"]
    aws.add_cleanup(ec2.delete_security_group, GroupId=group)
    instance = ec2.run_instances(
        ImageId=image, InstanceType="t3.large", MinCount=1, MaxCount=1, SecurityGroupIds=[group], TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"]
    aws.add_cleanup(ec2.get_waiter("instance_terminated").wait, InstanceIds=[instance])
    aws.add_cleanup(ec2.terminate_instances, InstanceIds=[instance])
    config = tmp_path / "keys.toil_ec2.yml"
    keys = {"access_key": ACCESS_KEY, "secret_key": PARAM_SECRET, "session_token": SESSION_TOKEN}
    config.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", "regions": ["us-west-2"], **keys}))
    env = ansible_environment(aws.env, tmp_path / "work", VERBOSE)
    proc = subprocess.run(
        [venv_executable("ansible-inventory"), "-vvv", "-i", str(config), "--list"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert instance in proc.stdout  # the keys in the file were used and worked
    assert leaks(proc.stdout + proc.stderr) == []
