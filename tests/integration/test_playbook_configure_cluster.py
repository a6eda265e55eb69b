"""A cluster's week on stand-in hosts (issue 17): launch_cluster, configure_cluster, autoscale reading Toil's pods,
scale down, grow back under two schedulers, a lost worker, a lost leader, destroy and relaunch under the same name.

launch_cluster makes a leader, a static pool of one worker and a ranged pool of 0-1 on the embedded endpoint
(provisioning only). Five podman test hosts (Debian 12, systemd, sshd; tests/harness/hosts), started at once and while
the launch runs, stand in for the instances: a real toil_ec2 inventory source maps each node to a container
through its ``compose`` (the leader's and the worker's instance IDs to two of them, any node launched later to its
pool's spare). configure_cluster then configures the two over real SSH and tags the joined
worker on the endpoint, and a second run changes nothing. The endpoint's console output of each instance holds its
stand-in's real host keys in cloud-init's format (issue #16, point 5), and the first run meets two attacks: a node whose
console names other keys than the host at its address shows (it is not connected to and gets no join token), and the
worker's tags asking for the control plane's label (it does not get it); each join token is revoked once used.
Kubernetes on the leader is the API stand-in (harness.kube_api, served by the kubeadm double's init with the
cluster's CA); each worker's kubelet double does its TLS bootstrap with its join token and registers its node with
the providerID the role gives it; the test reads and writes that API through a copy of admin.conf
(harness.kube_remote) and makes Toil's work there as Toil 9.6 makes it (harness.kube_workloads: Jobs, their pods
bound and started as the scheduler and kubelet would).
Monday: autoscale (at -vvv, printing no join token) reads a waiting pod the busy static worker cannot hold, launches
one node in the ranged pool, and its configure step (configure_new_only) joins only that node. Tuesday: idle, it is
drained, its node deleted and its instance terminated. Wednesday: two autoscale runs at once; one acts, the other
stops on the Lease; the pool grows back from zero with a new instance. Thursday: the static worker is lost; its node
is deleted and a new worker joins. Friday: the leader is lost: launch_cluster with ``replace_lost_leader`` launches a
new one, and configure_cluster initialises it and resets and re-joins both live workers, which register with its API.
Saturday: destroy_cluster removes it all, and a new cluster launches under the same name with new instances; Sunday
it is destroyed (the aws fixture's leak check proves nothing is left). Every AWS call of the playbooks goes through
the recording proxy (``aws_calls``), which answers a reused ClientToken as EC2 does.
What needs Toil itself on a host is in the molecule scenario extensions/molecule/toil (the login user's
kubeconfig, Toil's Kubernetes batch system) and test_playbook_run_workflow_hosts.py (Toil's Python and CWL runs);
the real Toil's workflow scaled by the scaler is in test_cluster_week.py.

Replaced inside this test only: kubeadm and kubelet by the roles' test double (harness.hosts.kube_double_repo,
installed through the role's real apt path); objects needing an API server are not applied
(``kubernetes_apply_objects: false``, ``metrics_server_apply: false``). Skipped, because other tests prove them
and they are the slowest steps here: Toil's installation (``--skip-tags toil_install``; extensions/molecule/toil)
and the autoscaler role on the leader (``autoscaler_install`` builds a virtualenv with ansible-core from PyPI;
``--skip-tags autoscaler_install,autoscaler_configure``; the role's molecule scenario, extensions/molecule/autoscaler).
Node preparation, containerd and the pinned packages run for real (they install the double) and the molecule
scenario extensions/molecule/kubernetes checks their result in detail. The appliance image is given.
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
from harness.kube_remote import RemoteKube
from harness.kube_workloads import finish_jobs, pods_of, run_pods_on, toil_job
from harness.playbooks import run_ansible_playbook
from harness.toil_scaler_runs import by_pool

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

ZONE, REGION, CLUSTER = "us-west-2a", "us-west-2", "pb-cfg"
K8S_VERSION = "1.35.2"
REPO_MOUNT = "/srv/kube-double-repo"
APPLIANCE = "quay.io/ucsc_cgl/toil:9.6.0-stand-in"
NODE_TYPES, WORKERS = "t3.large,t3.medium", "1,0-1"  # a static pool of one and a ranged pool of 0-1
STATIC, RANGED = "t3-large", "t3-medium"
# The leader, the static worker, the spare (every instance of the ranged pool), a replacement leader and a replacement
# static worker.
STAND_INS = ("cfg-leader", "cfg-worker", "cfg-new", "cfg-leader2", "cfg-worker2")
POOL_SPARES = {RANGED: STAND_INS[2], STATIC: STAND_INS[4]}  # later instances, by pool
# What each stand-in's kubelet reports as its machine (the kubelet double reads /etc/kube-double/machine.json): the
# instance type's, as a real kubelet reports the instance's CPUs and memory.
MACHINES = {"t3.large": {"cpu": "2", "memory": "8Gi"}, "t3.medium": {"cpu": "2", "memory": "4Gi"}}
HOST_TYPES = dict(zip(STAND_INS, ("t3.large", "t3.large", "t3.medium", "t3.large", "t3.large"), strict=True))
CYCLE = "Run the cycle (new nodes accept authorized_keys; scale-down drains first; state and metrics kept)"
GIB = 2**30
NODE_TIMEOUT = 60  # seconds for a kubelet to register after its join (systemd restarts a failed kubelet every 10 s)
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


def stand_in_inventory(path, lab, addresses, pool_spares=None):
    """A toil_ec2 source whose compose maps the known instance IDs to their containers and any other node of the
    cluster (one autoscale launches) to its pool's spare in ``pool_spares``, else to the ranged pool's."""
    known = {instance_id: lab.hosts[name].address for instance_id, name in addresses.items()}
    spare = lab.hosts[STAND_INS[2]].address
    spares = {pool: lab.hosts[name].address for pool, name in (pool_spares or {}).items()}
    config = {
        "plugin": "toil.cluster.toil_ec2",
        "regions": [REGION],
        "clusters": [CLUSTER],
        "compose": {
            "ansible_connection": "'ssh'",  # run_ansible_playbook passes -c local (for localhost)
            "ansible_host": f"{json.dumps(known)}.get(toil_instance_id, {json.dumps(spares)}.get(toil_pool, {spare!r}))",
            "ansible_user": "'admin'",
            "ansible_ssh_private_key_file": repr(str(lab.key)),
            "ansible_ssh_common_args": "'-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
            "ansible_python_interpreter": "'/usr/bin/python3'",
            "ansible_pipelining": "true",
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for_node(kube, instance_id):
    """The Node the instance's kubelet registered (its providerID names the instance), once it is there."""
    deadline = time.monotonic() + NODE_TIMEOUT
    while (node := kube.node_of(instance_id)) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"no node of {instance_id} registered in {NODE_TIMEOUT} s: {[n['metadata']['name'] for n in kube.objects('nodes')]}")
        time.sleep(1)
    return node


def ids(pool):
    return sorted(i["instance_id"] for i in pool["instances"])


def states(ec2, instance_ids):
    return {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=instance_ids)["Reservations"] for i in r["Instances"]}


def test_a_clusters_week_on_stand_in_hosts(aws, aws_calls, run_playbook, key_pair, tmp_path):
    podman_hosts.require_podman()  # before the launch: the hosts are made while it runs
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
        for name, instance_type in HOST_TYPES.items():
            machine = json.dumps(MACHINES[instance_type])
            lab.hosts[name].sh(f"install -d /etc/kube-double && printf '%s' '{machine}' > /etc/kube-double/machine.json")
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
            run_playbook("playbooks/launch_cluster.yml", extra_vars=launch, env=aws_calls.env)
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

            runs = []

            def play(name, extra, verbose=(), expect_failure=False, label=None):
                """One playbook on the stand-ins; ``expect_failure`` None: whatever its outcome."""
                started = time.monotonic()
                runs.append(name)
                result = run_ansible_playbook(
                    f"playbooks/{name}.yml",
                    {**aws.env, **aws_calls.env},
                    tmp_path / f"{name}-{label or len(runs)}",
                    inventory=str(inventory),
                    extra_vars=extra,
                    args=[*SKIP, *verbose],
                    env=ansible_env(control_dir),
                    expect_rc=None,
                    timeout=1200,
                )
                print(f"\n{name}: {time.monotonic() - started:.0f} s; slowest tasks {slowest(result)}")
                if expect_failure is not None:
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

            # Monday: Kubernetes on the leader is the API stand-in (the kubeadm double serves harness.kube_api there, with
            # the cluster's CA); the worker's kubelet did its TLS bootstrap with the join token and registered its node,
            # with the providerID the role gave it. Toil's work: a job holds most of the static worker and another waits,
            # Unschedulable. autoscale (at -vvv, printing no join token) reads them through a copy of admin.conf and grows
            # the ranged pool by one node, which its configure step (configure_new_only) joins through the spare host;
            # the leader only makes its token, the joined worker is not touched.
            kube = RemoteKube(hosts["leader"].read("/etc/kubernetes/admin.conf"), tmp_path / "admin.conf")
            worker_node = wait_for_node(kube, worker_id)
            assert worker_node["spec"]["providerID"] == f"aws:///{ZONE}/{worker_id}"
            assert worker_node["metadata"]["labels"]["toil.cluster/pool"] == STATIC
            worker_name = worker_node["metadata"]["name"]
            toil_job(kube, "admin-toil-busy", 1.5, 6 * GIB, preemptible=False)
            run_pods_on(kube, {pods_of(kube, "admin-toil-busy")[0]: worker_name})
            toil_job(kube, "admin-toil-merge", 1, GIB, preemptible=False)
            # Later instances stand in on the spares by pool (the impostor is gone).
            stand_in_inventory(inventory, lab, {leader_id: STAND_INS[0], worker_id: STAND_INS[1]}, POOL_SPARES)
            authorized = [lab.key.with_suffix(".pub").read_text().strip()]
            cycle = dict(overrides, kubeconfig=kube.kubeconfig, plan_only=False, authorized_keys=authorized)
            scaled = play("autoscale", cycle, verbose=["-vvv"])
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
            # The new node registered itself; the waiting job runs there, then ends (Toil deletes its Job).
            new_name = wait_for_node(kube, new_id)["metadata"]["name"]
            run_pods_on(kube, {pods_of(kube, "admin-toil-merge")[0]: new_name})
            finish_jobs(kube, "admin-toil-merge")

            # Tuesday: the ranged node is idle; past the idle time (0 here) the scaler drains it, deletes its node and
            # terminates its instance. The static worker stays.
            down = play("autoscale", dict(cycle, scale_down_idle_seconds=0)).task(CYCLE)
            assert (by_pool(down)[RANGED]["desired"], by_pool(down)[RANGED]["victims"], by_pool(down)[RANGED]["instances"]) == (0, [new_id], []), down
            assert kube.node_of(new_id) is None and kube.node_of(worker_id) is not None
            assert states(ec2, [new_id]) == {new_id: "terminated"}

            # Wednesday: new work; the leader's timer and an AWX schedule run autoscale at the same moment (lease_wait=0,
            # CreateFleet held so that the first still holds the Lease when the other looks): exactly one acts, the
            # other stops naming the holder and configures nothing. The pool grows back from zero with a new instance
            # (a new launch token, not Monday's answer); the spare host is reset first, as a new instance is fresh.
            hosts["new"].sh("kubeadm reset -f >/dev/null")
            toil_job(kube, "admin-toil-wednesday", 1, GIB, preemptible=False)
            aws_calls.hold("CreateFleet", 8)
            try:
                with ThreadPoolExecutor(2) as schedulers:
                    runs = list(
                        schedulers.map(
                            lambda label: play("autoscale", dict(cycle, lease_wait=0), label=label, expect_failure=None),
                            ("timer", "schedule"),
                        )
                    )
            finally:
                aws_calls.release("CreateFleet")
            acted, stopped = sorted(runs, key=lambda run: run.rc)
            assert acted.rc == 0 and stopped.rc != 0, (failures(acted), failures(stopped))
            held = stopped.task(CYCLE)["msg"]
            assert f"is held by {acted.task(CYCLE)['lease']['holder']}" in held and "changed nothing" in held, held
            grown = ids(by_pool(acted.task(CYCLE))[RANGED])
            assert len(grown) == 1 and grown[0] != new_id, grown
            grown_id = grown[0]
            aws.endpoint.set_console_output(grown_id, cloud_init_console(keys["new"]))  # as it printed it (each run pins anew)
            assert set(stopped.stats) == {"localhost"}, stopped.stats  # the stopped run reached no host
            grown_name = wait_for_node(kube, grown_id)["metadata"]["name"]
            run_pods_on(kube, {pods_of(kube, "admin-toil-wednesday")[0]: grown_name})

            # Thursday: the static worker is lost (terminated behind the collection's back; its kubelet is gone with
            # it). Its node object outlives it, as without a cloud controller: autoscale deletes it, never counts it,
            # and the static pool gets a new worker (its own stand-in), which joins and registers.
            ec2.terminate_instances(InstanceIds=[worker_id])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[worker_id], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            hosts["worker"].sh("systemctl stop kubelet")
            hosts["worker2"] = lab.hosts[STAND_INS[4]]
            aws.endpoint.set_console_output("*", cloud_init_console(host_keys(hosts["worker2"])))  # the day's new instance
            assert kube.node_of(worker_id) is not None
            replaced = play("autoscale", cycle)
            result = replaced.task(CYCLE)
            assert [n["name"] for n in result["removed_nodes"] if n["deleted"]] == [worker_name], result["removed_nodes"]
            assert kube.node_of(worker_id) is None
            for pod in [p["metadata"]["name"] for p in kube.objects("pods", "default") if p["spec"].get("nodeName") == worker_name]:
                kube.delete("pods", pod)  # the pod garbage collector: its node is gone
            replacement = ids(by_pool(result)[STATIC])
            assert len(replacement) == 1 and replacement[0] != worker_id, result
            replacement_id = replacement[0]
            aws.endpoint.set_console_output(replacement_id, cloud_init_console(host_keys(hosts["worker2"])))
            assert replaced.stats[replacement_id]["failures"] == 0 and wait_for_node(kube, replacement_id)["metadata"]["labels"]["toil.cluster/pool"] == STATIC
            assert [c[0] for c in kubeadm_calls(hosts["worker2"]) if c[0] in ("init", "join")] == ["join"]

            # Friday: the leader is lost (terminated behind the collection's back). launch_cluster with
            # replace_lost_leader launches a new one (its own stand-in, at another address); configure_cluster
            # initialises it and resets and re-joins both live workers, whose kubelet.conf names the lost leader's API
            # server; their kubelets register their nodes with the new API.
            ec2.terminate_instances(InstanceIds=[leader_id])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[leader_id], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            run_playbook("playbooks/launch_cluster.yml", extra_vars=dict(launch, replace_lost_leader=True), env=aws_calls.env)
            leaders = [i["InstanceId"] for i in instances(aws) if tags(i)["ToilNodeType"] == "leader"]
            assert len(leaders) == 1 and leaders[0] != leader_id, leaders
            second_leader_id, hosts["leader2"] = leaders[0], lab.hosts[STAND_INS[3]]
            stand_in_inventory(inventory, lab, {second_leader_id: STAND_INS[3]}, POOL_SPARES)
            aws.endpoint.set_console_output(second_leader_id, cloud_init_console(host_keys(hosts["leader2"])))
            before = {role: kubeadm_calls(hosts[role]) for role in ("new", "worker2")}
            rejoined = play("configure_cluster", overrides)
            assert {h: s["failures"] for h, s in rejoined.stats.items() if h != "localhost"} == {second_leader_id: 0, grown_id: 0, replacement_id: 0}
            assert [c[0] for c in kubeadm_calls(hosts["leader2"]) if c[0] in ("init", "join", "reset")] == ["init"]
            server = f"https://{hosts['leader2'].address}:6443"
            for role, calls_before in before.items():
                calls = kubeadm_calls(hosts[role])
                assert calls[: len(calls_before)] == calls_before
                assert [c[:2] for c in calls[len(calls_before) :] if c[0] in ("init", "join", "reset")] == [["reset", "-f"], ["join", "--config"]], (
                    role,
                    calls,
                )
                kubelet_conf = yaml.safe_load(hosts[role].read("/etc/kubernetes/kubelet.conf"))
                assert kubelet_conf["clusters"][0]["cluster"]["server"] == server, (role, kubelet_conf)
            assert live_join_tokens(hosts["leader2"]) == []  # (a node already joined to this leader is not reset: `again` above)
            kube = RemoteKube(hosts["leader2"].read("/etc/kubernetes/admin.conf"), tmp_path / "admin2.conf")
            for instance_id in (grown_id, replacement_id):
                assert wait_for_node(kube, instance_id)["spec"]["providerID"] == f"aws:///{ZONE}/{instance_id}"

            # Saturday: destroy_cluster removes the three live nodes and the rest; a new cluster under the same name
            # launches (new launch tokens, new instances), and Sunday's destroy removes it (the aws fixture's leak
            # check proves nothing is left).
            gone = run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster, env=aws_calls.env)
            assert sorted(gone.task("Show what was removed")["msg"]["removed"]["instances"]) == sorted([second_leader_id, grown_id, replacement_id])
            every = {leader_id, worker_id, new_id, grown_id, replacement_id, second_leader_id, impostor_id}
            # Through the proxy a reused launch token would be answered with the terminated instances: new ones came.
            run_playbook("playbooks/launch_cluster.yml", extra_vars=launch, env=aws_calls.env)
            relaunched = {tags(i)["ToilNodeType"]: i["InstanceId"] for i in instances(aws)}
            assert sorted(relaunched) == ["leader", "worker"] and not set(relaunched.values()) & every, relaunched
            gone = run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster, env=aws_calls.env)
            destroyed = True
            assert sorted(gone.task("Show what was removed")["msg"]["removed"]["instances"]) == sorted(relaunched.values())
        finally:
            preparing.exception()  # the hosts are up (or failed) before they are removed
            if lab is not None:
                errors = lab.close([control_dir])
                assert not errors, f"test hosts were not cleaned up: {errors}"
