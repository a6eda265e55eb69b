"""launch_cluster, configure_cluster, autoscale and destroy_cluster on stand-in hosts, as a user runs them.

launch_cluster makes a leader, a static pool of one worker and a ranged pool of 0-1 on the embedded endpoint
(provisioning only). Four podman test hosts (Debian 12, systemd, sshd; tests/harness/hosts), started at once and while
the launch runs, stand in for the instances: a real toil_ec2 inventory source maps each node to a container
through its ``compose`` (connection and address: the leader's and the worker's instance IDs to two of them, any
node launched later to the spare). configure_cluster then configures the two over real SSH and tags the joined
worker on the endpoint, and a second run changes nothing. The endpoint's console output of each instance holds its
stand-in's real host keys in cloud-init's format (issue #16, point 5), and the first run meets two attacks: a node whose
console names other keys than the host at its address shows (it is not connected to and gets no join token), and the
worker's tags asking for the control plane's label (it does not get it); each join token is revoked once used;
autoscale (at -vvv, printing no join token), given a
demand the static worker cannot hold, launches one node in the ranged pool (toil_scaler, giving it the leader's
key), and its configure step (configure_new_only) joins only that node, through the spare host;
then the leader is lost: launch_cluster with ``replace_lost_leader`` launches a new one (a fourth host, at
another address), and configure_cluster initialises it and resets and re-joins both live workers to it (issue #17);
destroy_cluster removes it all (the aws fixture's leak check proves nothing is left).

Replaced inside this test only: kubeadm and kubelet by the roles' test double (harness.hosts.kube_double_repo,
installed through the role's real apt path); objects needing an API server are not applied
(``kubernetes_apply_objects: false``, ``metrics_server_apply: false``). Skipped, because other tests prove them
and they are the slowest steps here: Toil's installation (``--skip-tags toil_install``; test_role_toil_hosts.py)
and the autoscaler role on the leader (``autoscaler_install`` builds a virtualenv with ansible-core from PyPI;
``--skip-tags autoscaler_install,autoscaler_configure``; test_role_autoscaler_hosts.py). Node preparation,
containerd and the pinned packages run for real (they install the double) and test_role_kubernetes.py checks
their result in detail. The appliance image is given.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import yaml

from harness.hosts import kube_double_repo, podman_hosts
from harness.hosts.role_hosts import ansible_env, failures
from harness.playbooks import run_ansible_playbook

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

ZONE, REGION, CLUSTER = "us-west-2a", "us-west-2", "pb-cfg"
K8S_VERSION = "1.35.2"
REPO_MOUNT = "/srv/kube-double-repo"
APPLIANCE = "quay.io/ucsc_cgl/toil:9.6.0-stand-in"
NODE_TYPES, WORKERS = "t3.large,t3.medium", "1,0-1"  # a static pool of one and a ranged pool of 0-1
STATIC, RANGED = "t3-large", "t3-medium"
STAND_INS = ("cfg-leader", "cfg-worker", "cfg-new", "cfg-leader2")  # the last stands in for a replacement leader
SKIP = ["--skip-tags", "toil_install,autoscaler_install,autoscaler_configure"]


def instances(aws):
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "tag:clusterName", "Values": [CLUSTER]}, {"Name": "instance-state-name", "Values": ["running", "pending"]}]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def tags(instance):
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def kubeadm_calls(host):
    text = host.sh("cat /var/log/kube-double/kubeadm.log 2>/dev/null || true")
    return [line.split("\t")[1:] for line in text.splitlines() if line]


def slowest(run, count=8):
    """The slowest tasks of a run (ansible.posix.json's durations), for the log: where the time goes."""
    spans = []
    for entry in run.tasks():
        duration = entry["task"].get("duration", {})
        if duration.get("start") and duration.get("end"):
            start, end = (datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
            spans.append((round((end - start).total_seconds(), 1), entry["task"]["name"]))
    return sorted(spans, reverse=True)[:count]


def host_keys(host):
    """The stand-in's own host keys (made at its first boot), as ``type base64``."""
    return [" ".join(line.split()[:2]) for line in host.sh("cat /etc/ssh/ssh_host_*_key.pub").splitlines() if line.strip()]


def cloud_init_console(keys):
    """A console output as cloud-init's keys_to_console writes it (tools/write-ssh-key-fingerprints)."""
    return "\r\n".join(
        [
            "[    0.000000] Linux version 6.1.0-27-cloud-amd64",
            "ec2: #############################################################",
            "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
            "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
            "ec2: #############################################################",
            "-----BEGIN SSH HOST KEY KEYS-----",
            *(f"{key} root@stand-in" for key in keys),
            "-----END SSH HOST KEY KEYS-----",
            "",
        ]
    )


def join_labels(host):
    """The node labels of the stand-in's last kubeadm join (the double keeps a copy of each configuration)."""
    copies = host.sh("ls /var/log/kube-double/ | grep 'kubeadm-join.yaml'").split()
    join = next(d for d in yaml.safe_load_all(host.read(f"/var/log/kube-double/{copies[-1]}")) if d["kind"] == "JoinConfiguration")
    args = {a["name"]: a["value"] for a in join["nodeRegistration"].get("kubeletExtraArgs", [])}
    return dict(item.split("=", 1) for item in args.get("node-labels", "").split(",") if item)


def live_join_tokens(host):
    """`kubeadm token list` on the control plane: the live tokens made for a join."""
    return [line for line in host.sh("kubeadm token list").splitlines()[1:] if "join of" in line]


def stand_in_inventory(path, lab, addresses):
    """A toil_ec2 source whose compose maps the known instance IDs to their containers and any other node of the
    cluster (the one autoscale launches) to the spare container."""
    known = {instance_id: lab.hosts[name].address for instance_id, name in addresses.items()}
    spare = lab.hosts[STAND_INS[2]].address
    config = {
        "plugin": "toil.cluster.toil_ec2",
        "regions": [REGION],
        "clusters": [CLUSTER],
        "compose": {
            "ansible_connection": "'ssh'",  # run_ansible_playbook passes -c local (for localhost)
            "ansible_host": f"{json.dumps(known)}.get(toil_instance_id, {spare!r})",
            "ansible_user": "'admin'",
            "ansible_ssh_private_key_file": repr(str(lab.key)),
            "ansible_ssh_common_args": "'-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
            "ansible_python_interpreter": "'/usr/bin/python3'",
            "ansible_pipelining": "true",
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_configure_then_autoscale_joins_stand_in_nodes_and_destroy_leaves_nothing(aws, run_playbook, key_pair, tmp_path):
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup`", pytrace=False)
    cluster = {"cluster_name": CLUSTER, "zone": ZONE}
    lab = None
    control_dir = tmp_path / "cp"
    destroyed = False

    def prepare():  # the hosts boot while the launch runs
        podman_hosts.build_image()
        repo = kube_double_repo.build(tmp_path / "repo", K8S_VERSION)
        nonlocal lab
        lab = podman_hosts.PodmanLab(tmp_path / "lab", mounts=[(str(repo.path), REPO_MOUNT)])
        lab.start(list(STAND_INS))
        return repo

    def destroy_if_left():
        if not destroyed:
            run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster)

    with ThreadPoolExecutor(1) as pool:
        preparing = pool.submit(prepare)
        try:
            aws.add_cleanup(destroy_if_left)
            started = time.monotonic()
            launch = dict(cluster, leader_node_type="t3.large", key_pair_name=key_pair, node_types=NODE_TYPES, workers=WORKERS, provision_only=True)
            run_playbook("playbooks/launch_cluster.yml", extra_vars=launch)
            nodes = {tags(i)["ToilNodeType"]: i for i in instances(aws)}
            assert sorted(nodes) == ["leader", "worker"]
            assert tags(nodes["worker"])["toil.cluster/pool"] == STATIC
            print(f"\nlaunch_cluster: {time.monotonic() - started:.0f} s")
            repo = preparing.result()
            print(f"stand-ins ready: {time.monotonic() - started:.0f} s after the launch began")
            hosts = dict(zip(["leader", "worker", "new"], (lab.hosts[name] for name in STAND_INS[:3]), strict=True))
            inventory = stand_in_inventory(
                tmp_path / "stand-ins.toil_ec2.yml",
                lab,
                {nodes["leader"]["InstanceId"]: STAND_INS[0], nodes["worker"]["InstanceId"]: STAND_INS[1]},
            )
            leader_id, worker_id = nodes["leader"]["InstanceId"], nodes["worker"]["InstanceId"]
            overrides = {
                **cluster,
                "node_types": NODE_TYPES,
                "workers": WORKERS,
                "appliance": APPLIANCE,
                "ssh_timeout": 120,
                **repo.role_vars(REPO_MOUNT),
            }

            def play(name, extra, verbose=(), expect_failure=False):
                started = time.monotonic()
                result = run_ansible_playbook(
                    f"playbooks/{name}.yml",
                    aws.env,
                    tmp_path / name,
                    inventory=str(inventory),
                    extra_vars=extra,
                    args=[*SKIP, *verbose],
                    env=ansible_env(control_dir),
                    expect_rc=None,
                    timeout=1200,
                )
                print(f"\n{name}: {time.monotonic() - started:.0f} s; slowest tasks {slowest(result)}")
                assert (result.rc != 0) if expect_failure else (result.rc == 0), failures(result)
                return result

            # Each instance's console output shows its stand-in's host keys, as cloud-init prints them; any other
            # instance (the inventory maps it to the spare) shows the spare's.
            keys = {role: host_keys(host) for role, host in hosts.items()}
            aws.endpoint.set_console_output(leader_id, cloud_init_console(keys["leader"]))
            aws.endpoint.set_console_output(worker_id, cloud_init_console(keys["worker"]))
            aws.endpoint.set_console_output("*", cloud_init_console(keys["new"]))
            # Attack 1: a node of the cluster whose console names the worker's keys, while its address (the spare)
            # answers with other keys, as a man in the middle would. Attack 2: the worker's tags ask for the control
            # plane's label and another pool's (a node may launch instances with any tags).
            ec2 = aws.client("ec2")
            worker = nodes["worker"]
            impostor_id = ec2.run_instances(
                ImageId=worker["ImageId"],
                InstanceType=worker["InstanceType"],
                MinCount=1,
                MaxCount=1,
                SubnetId=worker["SubnetId"],
                SecurityGroupIds=[g["GroupId"] for g in worker["SecurityGroups"]],
                TagSpecifications=[{"ResourceType": "instance", "Tags": worker["Tags"]}],
            )["Instances"][0]["InstanceId"]
            aws.endpoint.set_console_output(impostor_id, cloud_init_console(keys["worker"]))
            ec2.create_tags(
                Resources=[worker_id], Tags=[{"Key": "toil.cluster/labels", "Value": f"node-role.kubernetes.io/control-plane=,toil.cluster/pool={RANGED}"}]
            )

            # configure_cluster (the host half of launch_cluster): init on the leader, join on the worker; the
            # impostor fails (ssh refuses its host key), so the run fails.
            first = play("configure_cluster", dict(overrides, ssh_timeout=20), expect_failure=True)
            problems = []
            impostor = first.stats.get(impostor_id, {})
            if impostor.get("failures", 0) + impostor.get("unreachable", 0) != 1 or "Host key verification failed" not in first.stdout:
                problems.append(f"the impostor was not refused for its host key: {impostor}")
            if [c[0] for c in kubeadm_calls(hosts["new"]) if c[0] in ("init", "join")]:
                problems.append("the impostor's host ran kubeadm join")
            made_for = [c for c in kubeadm_calls(hosts["leader"]) if c[:2] == ["token", "create"]]
            if [c[-1] for c in made_for] != [f"toil.cluster: join of {worker_id}"]:
                problems.append(f"join tokens were made for {[c[-1] for c in made_for]}")
            if join_labels(hosts["worker"]) != {"toil.cluster/pool": STATIC, "node.kubernetes.io/instance-type": "t3.large"}:
                problems.append(f"the worker got the labels of its tags: {join_labels(hosts['worker'])}")
            if live_join_tokens(hosts["leader"]):
                problems.append(f"join tokens outlive their join: {live_join_tokens(hosts['leader'])}")
            assert not problems, problems
            ec2.terminate_instances(InstanceIds=[impostor_id])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[impostor_id], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            configured = first
            assert {h: s["failures"] for h, s in configured.stats.items() if h not in ("localhost", impostor_id)} == {leader_id: 0, worker_id: 0}
            leader_calls, worker_calls = kubeadm_calls(hosts["leader"]), kubeadm_calls(hosts["worker"])
            assert [c[0] for c in leader_calls if c[0] in ("init", "join")] == ["init"]
            assert [c[0] for c in worker_calls if c[0] in ("init", "join")] == ["join"]
            assert kubeadm_calls(hosts["new"]) == []
            environment = hosts["leader"].read("/etc/toil/environment")
            assert f"TOIL_APPLIANCE_SELF={APPLIANCE}" in environment and f"TOIL_AWS_ZONE={ZONE}" in environment
            # The worker joined, so it is tagged on AWS (scale-down removes nodes that never joined first); the leader is not.
            after = {i["InstanceId"]: tags(i) for i in instances(aws)}
            assert after[worker_id].get("toil.cluster/joined") == "true"
            assert "toil.cluster/joined" not in after[leader_id]
            # A second run on the finished cluster changes nothing and calls kubeadm no more (guarded by its files).
            again = play("configure_cluster", overrides)
            assert {h: s["changed"] for h, s in again.stats.items() if h != "localhost"} == {leader_id: 0, worker_id: 0}
            assert (kubeadm_calls(hosts["leader"]), kubeadm_calls(hosts["worker"])) == (leader_calls, worker_calls)
            tokens_before = hosts["leader"].read("/etc/kubernetes/.double-tokens").split("\n")

            # autoscale: the static worker is full and one on-demand pod waits, so the ranged pool grows by one node,
            # which configure_new_only joins; the leader only makes its token, the joined worker is not touched.
            busy = {"cpu": "2", "memory": "7Gi"}
            demand = {
                "pods": [{"name": "merge", "cpu": "1", "memory": "1Gi", "preemptible": False}],
                "nodes": [{"instance_id": worker_id, "pool": STATIC, "allocatable": busy, "requested": busy, "idle_seconds": 0, "safe_to_evict": False}],
            }
            # At -vvv, with every module's arguments shown: the join token made in this run must still not appear.
            keys = [lab.key.with_suffix(".pub").read_text().strip()]
            scaled = play("autoscale", dict(overrides, demand=demand, plan_only=False, authorized_keys=keys), verbose=["-vvv"])
            plan = {p["name"]: p for p in scaled.task("Show the plan")["msg"]["pools"]}
            assert (plan[RANGED]["current"], plan[RANGED]["desired"]) == (0, 1), plan
            assert (plan[STATIC]["current"], plan[STATIC]["desired"]) == (1, 1), plan
            now = {i["InstanceId"]: i for i in instances(aws)}
            new = [i for i in now if i not in (leader_id, worker_id)]
            assert len(new) == 1 and len(now) == 3, sorted(now)
            new_id = new[0]
            assert tags(now[new_id])["toil.cluster/pool"] == RANGED
            # Only the new node was configured; the others only answered ssh (the leader for the join's token).
            assert {h: (s["failures"], s["unreachable"]) for h, s in scaled.stats.items() if h != "localhost"} == {
                leader_id: (0, 0),
                new_id: (0, 0),
            }
            assert scaled.stats[leader_id]["changed"] == 0 and scaled.stats[new_id]["changed"] > 0
            assert kubeadm_calls(hosts["worker"]) == worker_calls
            leader_now = kubeadm_calls(hosts["leader"])
            assert leader_now[: len(leader_calls)] == leader_calls
            assert [c[:2] for c in leader_now[len(leader_calls) :]] == [["token", "create"], ["token", "delete"]]
            assert live_join_tokens(hosts["leader"]) == []  # revoked once the node joined
            new_calls = kubeadm_calls(hosts["new"])
            assert [c for c in new_calls if c[0] in ("init", "join")] == [["join", "--config", "/etc/kubernetes/kubeadm-join.yaml"]]
            # The join used the token made for it now and the CA hash pinned from the leader.
            tokens_now = hosts["leader"].read("/etc/kubernetes/.double-tokens").split("\n")
            fresh = [line.split()[0] for line in tokens_now if line and line not in tokens_before]
            copies = hosts["new"].sh("ls /var/log/kube-double/ | grep 'kubeadm-join.yaml'").split()
            join = next(d for d in yaml.safe_load_all(hosts["new"].read(f"/var/log/kube-double/{copies[-1]}")) if d["kind"] == "JoinConfiguration")
            assert fresh == [join["discovery"]["bootstrapToken"]["token"]]
            assert fresh[0] not in scaled.stdout + scaled.stderr and '"module_args"' in scaled.stdout
            ca_hash = (
                hosts["leader"]
                .sh("openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1")
                .strip()
            )
            assert join["discovery"]["bootstrapToken"]["caCertHashes"] == [f"sha256:{ca_hash}"]
            assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == f"{hosts['leader'].address}:6443"
            assert join_labels(hosts["new"]) == {"toil.cluster/pool": RANGED, "node.kubernetes.io/instance-type": "t3.medium"}
            assert tags(now[new_id]).get("toil.cluster/joined") == "true"
            assert "toil.cluster/joined" not in tags(now[leader_id])

            # The leader is lost (terminated behind the collection's back). launch_cluster with replace_lost_leader
            # launches a new one (its own stand-in, at another address); configure_cluster initialises it and resets
            # and re-joins both live workers, whose kubelet.conf names the lost leader's API server.
            ec2.terminate_instances(InstanceIds=[leader_id])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[leader_id], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            run_playbook("playbooks/launch_cluster.yml", extra_vars=dict(launch, replace_lost_leader=True))
            leaders = [i["InstanceId"] for i in instances(aws) if tags(i)["ToilNodeType"] == "leader"]
            assert len(leaders) == 1 and leaders[0] != leader_id, leaders
            second_leader_id, hosts["leader2"] = leaders[0], lab.hosts[STAND_INS[3]]
            stand_in_inventory(inventory, lab, {second_leader_id: STAND_INS[3], worker_id: STAND_INS[1]})
            aws.endpoint.set_console_output(second_leader_id, cloud_init_console(host_keys(hosts["leader2"])))
            worker_before, new_before = kubeadm_calls(hosts["worker"]), kubeadm_calls(hosts["new"])
            rejoined = play("configure_cluster", overrides)
            assert {h: s["failures"] for h, s in rejoined.stats.items() if h != "localhost"} == {second_leader_id: 0, worker_id: 0, new_id: 0}
            assert [c[0] for c in kubeadm_calls(hosts["leader2"]) if c[0] in ("init", "join", "reset")] == ["init"]
            server = f"https://{hosts['leader2'].address}:6443"
            for role, before in (("worker", worker_before), ("new", new_before)):
                calls = kubeadm_calls(hosts[role])
                assert calls[: len(before)] == before
                assert [c[:2] for c in calls[len(before) :] if c[0] in ("init", "join", "reset")] == [["reset", "-f"], ["join", "--config"]], (role, calls)
                kubelet_conf = yaml.safe_load(hosts[role].read("/etc/kubernetes/kubelet.conf"))
                assert kubelet_conf["clusters"][0]["cluster"]["server"] == server, (role, kubelet_conf)
            assert live_join_tokens(hosts["leader2"]) == []  # (a node already joined to this leader is not reset: `again` above)

            # destroy_cluster: the three live nodes and the rest go (the aws fixture's leak check proves nothing is left).
            gone = run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster)
            destroyed = True
            assert sorted(gone.task("Show what was removed")["msg"]["removed"]["instances"]) == sorted([second_leader_id, worker_id, new_id])
        finally:
            preparing.exception()  # the hosts are up (or failed) before they are removed
            if lab is not None:
                errors = lab.close([control_dir])
                assert not errors, f"test hosts were not cleaned up: {errors}"
