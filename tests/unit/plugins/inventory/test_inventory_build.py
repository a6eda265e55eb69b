"""What the toil_ec2 inventory makes of the instances it found: clusters, leaders, names, variables, groups.

``build_inventory`` is pure (module_utils/inventory.py): records in, hosts out.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.inventory import InventoryOptions, build_inventory, sanitize

T0 = "2025-01-01T00:00:00.000+00:00"


def node(instance_id, *, cluster=None, role=None, groups=None, minute=0, public=None, private=None, owner=None, extra_tags=None, **fields):
    """An instance record as the query returns it; ``cluster``/``role`` set Toil's tags."""
    tags = {}
    if cluster:
        tags.update(Name=cluster, clusterName=cluster)
    if role:
        tags["ToilNodeType"] = role
    if owner:
        tags["Owner"] = owner
    tags.update(extra_tags or {})
    record = {
        "InstanceId": instance_id,
        "InstanceType": fields.pop("instance_type", "t3.large"),
        "State": fields.pop("state", "running"),
        "LaunchTime": f"2025-01-01T00:{minute:02d}:00.000+00:00",
        "AvailabilityZone": "us-west-2a",
        "PrivateIpAddress": private or f"10.0.0.{int(instance_id.rsplit('-', 1)[-1], 16) % 250 + 1}",
        "SecurityGroups": list(groups if groups is not None else ([cluster] if cluster else [])),
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }
    if public:
        record["PublicIpAddress"] = public
    record.update(fields)
    return record


def build(instances, cluster_groups=None, region="us-west-2", **options):
    groups = cluster_groups if cluster_groups is not None else sorted({g for i in instances for g in i.get("SecurityGroups", [])} - {"default"})
    return build_inventory({region: {"cluster_groups": groups, "instances": instances}}, InventoryOptions(**options))


def hosts_by_id(inventory):
    return {host.variables["toil_instance_id"]: host for host in inventory.hosts}


# ---------------------------------------------------------------------- membership
def test_members_are_in_the_group_and_tagged_and_strays_are_warned_of():
    inventory = build(
        [
            node("i-01", cluster="c1", role="leader", minute=1),
            node("i-02", groups=["c1"], minute=2),  # in the group, no clusterName (Toil's worker before its tags, or anyone's)
            node("i-03", cluster="c1", role="worker", groups=["default"], minute=3),  # tagged c1 outside the group
            node("i-04", groups=["default"], extra_tags={"Name": "c1"}),  # neither: a Name tag alone says nothing
            node("i-05", cluster="c2", role="worker", groups=["c1"], minute=4),  # another cluster's node in c1's group
            node("i-06", groups=["c1"], extra_tags={"clusterName": "c1"}, minute=5),  # both: a member, a worker
        ],
        cluster_groups=["c1"],
    )
    assert sorted(hosts_by_id(inventory)) == ["i-01", "i-06"]
    assert {h.variables["toil_cluster"] for h in inventory.hosts} == {"c1"}
    assert hosts_by_id(inventory)["i-06"].variables["toil_node_type"] == "worker"
    warned = {line.split()[2]: line for line in inventory.warnings}
    assert sorted(warned) == ["i-02", "i-03", "i-05"]
    assert "without a clusterName tag" in warned["i-02"]
    assert "tagged clusterName=c1 outside c1's security group" in warned["i-03"]
    assert "in c1's security group but tagged clusterName=c2" in warned["i-05"]


def test_a_name_tag_does_not_stand_in_for_cluster_name():
    inventory = build([node("i-01", role="leader", groups=["old"], extra_tags={"Name": "old"})], cluster_groups=["old"])
    assert inventory.hosts == [] and len(inventory.warnings) == 1


def test_another_clusters_node_in_the_group_belongs_to_neither():
    inventory = build([node("i-01", cluster="c2", role="worker", groups=["c1"])], cluster_groups=["c1", "c2"])
    assert inventory.hosts == []
    assert len(inventory.warnings) == 2  # c1's group without c1's tag; c2's tag outside c2's group


def test_warnings_follow_the_clusters_asked_for():
    instances = [node("i-01", cluster="c2", role="worker", groups=["c1"])]
    assert len(build(instances, cluster_groups=["c1", "c2"], clusters=("c1",)).warnings) == 1
    assert build(instances, cluster_groups=["c1", "c2"], clusters=("c3",)).warnings == []


def test_clusters_and_owners_select():
    instances = [
        node("i-01", cluster="c1", role="leader", owner="me"),
        node("i-02", cluster="c2", role="leader", owner="you"),
        node("i-03", cluster="c2", role="worker", owner="me", minute=5),
    ]
    assert sorted(hosts_by_id(build(instances, clusters=("c2",)))) == ["i-02", "i-03"]
    assert sorted(hosts_by_id(build(instances, owners=("me",)))) == ["i-01", "i-03"]


# ---------------------------------------------------------------------- leaders
def test_tagged_leader_even_if_younger():
    hosts = hosts_by_id(build([node("i-01", cluster="c1", role="worker", minute=0), node("i-02", cluster="c1", role="leader", minute=9)]))
    assert hosts["i-02"].variables["toil_node_type"] == "leader"
    assert hosts["i-01"].variables["toil_node_type"] == "worker"
    assert hosts["i-01"].variables["toil_leader"] == "i-02"


def test_only_a_tagged_leader_leads_never_the_oldest_node():
    instances = [node("i-01", cluster="c1", role="worker", minute=0), node("i-02", cluster="c1", minute=3), node("i-03", groups=["c1"], minute=5)]
    hosts = hosts_by_id(build(instances))
    assert {h.variables["toil_node_type"] for h in hosts.values()} == {"worker"}
    # With the leader stopped or terminated (not listed), workers stay workers.
    only_workers = hosts_by_id(build([node("i-01", cluster="c1", role="worker"), node("i-04", cluster="c1", role="worker", minute=1)]))
    assert {h.variables["toil_node_type"] for h in only_workers.values()} == {"worker"}
    assert {h.variables["toil_leader"] for h in only_workers.values()} == {None}


def test_same_cluster_name_in_two_regions_has_two_leaders():
    result = {
        "us-west-2": {"cluster_groups": ["c1"], "instances": [node("i-01", cluster="c1", role="leader"), node("i-02", cluster="c1", role="worker")]},
        "us-east-1": {"cluster_groups": ["c1"], "instances": [node("i-03", cluster="c1", role="leader"), node("i-04", cluster="c1", role="worker")]},
    }
    hosts = hosts_by_id(build_inventory(result, InventoryOptions()))
    assert hosts["i-02"].variables["toil_leader"] == "i-01" and hosts["i-04"].variables["toil_leader"] == "i-03"
    assert hosts["i-03"].variables["toil_region"] == "us-east-1"
    assert all("toil_cluster_c1" in h.groups for h in hosts.values())


# ---------------------------------------------------------------------- variables
def test_variables_are_namespaced_and_tags_is_never_set():
    (host,) = build([node("i-0a", cluster="c1", role="leader", public="54.0.0.1", owner="me", PrivateDnsName="ip-10.internal")]).hosts
    variables = host.variables
    assert "tags" not in variables
    assert variables["ec2_tags"] == {"Name": "c1", "clusterName": "c1", "ToilNodeType": "leader", "Owner": "me"}
    assert variables["ansible_host"] == "54.0.0.1"
    expected = {
        "toil_cluster": "c1",
        "toil_node_type": "leader",
        "toil_leader": "i-0a",
        "toil_pool": None,
        "toil_preemptible": False,
        "toil_instance_id": "i-0a",
        "toil_instance_type": "t3.large",
        "toil_region": "us-west-2",
        "toil_zone": "us-west-2a",
        "toil_launch_time": T0,
        "toil_state": "running",
        "toil_private_ip": variables["toil_private_ip"],
        "toil_public_ip": "54.0.0.1",
        "toil_private_dns": "ip-10.internal",
    }
    assert {k: v for k, v in variables.items() if k.startswith("toil_")} == expected
    assert [k for k in variables if not k.startswith(("toil_", "ansible_"))] == ["ec2_tags"]


@pytest.mark.parametrize(
    ("fields", "tags", "preemptible"),
    [
        ({"InstanceLifecycle": "spot"}, {}, True),
        ({"SpotInstanceRequestId": "sir-1"}, {}, True),
        ({}, {"toil.cluster/preemptible": "true"}, True),
        ({}, {"toil.cluster/preemptible": "false"}, False),
        ({}, {}, False),
    ],
)
def test_preemptible(fields, tags, preemptible):
    (host,) = build([node("i-01", cluster="c1", role="worker", extra_tags=tags, **fields)]).hosts
    assert host.variables["toil_preemptible"] is preemptible
    assert ("toil_preemptible" in host.groups) is preemptible


@pytest.mark.parametrize(
    ("tags", "fields", "user"),
    [
        ({"toil.cluster/pool": "p"}, {}, "admin"),  # a worker of a toil_nodepool pool
        ({}, {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}, "admin"),  # a leader of toil_cluster
        ({}, {"HttpTokens": "optional", "HttpPutResponseHopLimit": 3}, "core"),  # Toil's leader
        ({}, {"HttpTokens": "required", "HttpPutResponseHopLimit": 3}, "core"),  # Toil's, in an IMDSv2-only account
        ({}, {}, "core"),
    ],
)
def test_ansible_user_fits_the_node(tags, fields, user):
    (host,) = build([node("i-01", cluster="c1", role="worker", extra_tags=tags, **fields)]).hosts
    assert host.variables["ansible_user"] == user
    (host,) = build([node("i-01", cluster="c1", role="worker", extra_tags=tags, **fields)], ssh_user="ubuntu").hosts
    assert host.variables["ansible_user"] == "ubuntu"


# ---------------------------------------------------------------------- names and addresses
def test_hostnames_by_preference_never_collapse_two_nodes():
    instances = [
        node("i-01", cluster="c1", role="leader", public="54.0.0.1", private="10.0.0.9"),
        node("i-02", cluster="c1", role="worker", private="10.0.0.9", minute=1),  # same private IP (another VPC)
        node("i-03", cluster="c1", role="worker", minute=2, private="10.0.0.3"),
    ]
    names = {h.variables["toil_instance_id"]: h.name for h in build(instances, hostnames=("public_ip", "private_ip")).hosts}
    assert names == {"i-01": "54.0.0.1", "i-02": "10.0.0.9", "i-03": "10.0.0.3"}
    names = {h.variables["toil_instance_id"]: h.name for h in build(instances, hostnames=("private_ip",)).hosts}
    assert names == {"i-01": "10.0.0.9", "i-02": "i-02", "i-03": "10.0.0.3"}
    assert [h.name for h in build(instances).hosts] == ["i-01", "i-02", "i-03"]


def test_connection_address():
    instances = [
        node("i-01", cluster="c1", role="leader", public="54.0.0.1", private="10.0.0.1"),
        node("i-02", cluster="c1", role="worker", private="10.0.0.2"),
    ]
    assert [h.variables["ansible_host"] for h in build(instances).hosts] == ["54.0.0.1", "10.0.0.2"]
    assert [h.variables["ansible_host"] for h in build(instances, use_private_ip=True).hosts] == ["10.0.0.1", "10.0.0.2"]
    stopped = node("i-03", cluster="c1", role="worker", state="stopped", minute=4)
    del stopped["PrivateIpAddress"]
    host = hosts_by_id(build([*instances, stopped]))["i-03"]
    assert "ansible_host" not in host.variables and "toil_stopped" in host.groups


def test_leader_as_bastion_for_private_workers_only():
    instances = [
        node("i-01", cluster="c1", role="leader", public="54.0.0.1", private="10.0.0.1", HttpTokens="required", HttpPutResponseHopLimit=2),
        node("i-02", cluster="c1", role="worker", private="10.0.0.2", minute=1),
        node("i-03", cluster="c1", role="worker", public="54.0.0.3", minute=2),
    ]
    hosts = hosts_by_id(build(instances, leader_as_bastion=True))
    assert hosts["i-02"].variables["toil_jump"] == {"host": "54.0.0.1", "user": "admin", "instance_id": "i-01"}
    assert "toil_jump" not in hosts["i-03"].variables
    assert "toil_jump" not in hosts["i-01"].variables
    hosts = hosts_by_id(build(instances, leader_as_bastion=True, use_private_ip=True, ssh_user="me"))
    assert hosts["i-02"].variables["toil_jump"] == hosts["i-03"].variables["toil_jump"] == {"host": "54.0.0.1", "user": "me", "instance_id": "i-01"}
    # The leader need not be in the inventory to be the bastion.
    hosts = hosts_by_id(build(instances, leader_as_bastion=True, node_types=("worker",)))
    assert sorted(hosts) == ["i-02", "i-03"]
    assert hosts["i-02"].variables["toil_jump"]["host"] == "54.0.0.1"
    assert hosts["i-02"].variables["toil_leader"] is None
    # Without it, nothing is set; the connection arguments themselves are the plugin's (a template, never AWS text).
    assert all("toil_jump" not in h.variables and "ansible_ssh_common_args" not in h.variables for h in build(instances).hosts)
    # No leader, no bastion.
    leaderless = build(instances[1:], leader_as_bastion=True).hosts
    assert all("toil_jump" not in h.variables for h in leaderless if h.variables["toil_node_type"] == "worker")


def test_cluster_hosts_for_add_host_carry_the_jump_and_the_private_address():
    from ansible_collections.toil.cluster.plugins.module_utils.inventory import cluster_hosts  # noqa: PLC0415

    def boto3_instance(instance_id, role, public=None, private=None):
        instance = {
            "InstanceId": instance_id,
            "State": {"Name": "running"},
            "PrivateIpAddress": private,
            "SecurityGroups": [{"GroupName": "c1"}],
            "Tags": [{"Key": "clusterName", "Value": "c1"}, {"Key": "ToilNodeType", "Value": role}],
        }
        if public:
            instance["PublicIpAddress"] = public
        return instance

    instances = [boto3_instance("i-01", "leader", "54.0.0.1", "10.0.0.1"), boto3_instance("i-02", "worker", "54.0.0.2", "10.0.0.2")]
    hosts = {host["name"]: host["vars"] for host in cluster_hosts("us-west-2", "c1", instances)}
    assert hosts["i-02"]["ansible_host"] == "54.0.0.2" and "toil_jump" not in hosts["i-02"]
    # Toil's --use_private_ip: the controller is in the VPC and reaches every node on its private address, directly.
    hosts = {host["name"]: host["vars"] for host in cluster_hosts("us-west-2", "c1", instances, use_private_ip=True)}
    assert [hosts["i-01"]["ansible_host"], hosts["i-02"]["ansible_host"]] == ["10.0.0.1", "10.0.0.2"]
    assert "toil_jump" not in hosts["i-02"]
    # A worker without a public address is reached through the leader.
    instances[1] = boto3_instance("i-02", "worker", private="10.0.0.2")
    hosts = {host["name"]: host["vars"] for host in cluster_hosts("us-west-2", "c1", instances)}
    assert hosts["i-02"]["ansible_host"] == "10.0.0.2"
    assert hosts["i-02"]["toil_jump"] == {"host": "54.0.0.1", "user": "core", "instance_id": "i-01"}


# ---------------------------------------------------------------------- groups
def test_documented_groups():
    instances = [
        node("i-01", cluster="my-cluster", role="leader"),
        node(
            "i-02",
            cluster="my-cluster",
            role="worker",
            extra_tags={"toil.cluster/pool": "c5-4xlarge-spot"},
            InstanceLifecycle="spot",
            instance_type="c5.4xlarge",
            minute=1,
        ),
        node("i-03", cluster="other", role="leader"),
    ]
    inventory = build(instances)
    hosts = hosts_by_id(inventory)
    assert hosts["i-01"].groups == ["toil_nodes", "toil_cluster_my_cluster", "toil_leaders", "toil_cluster_my_cluster_leaders", "toil_type_t3_large"]
    assert hosts["i-02"].groups == [
        "toil_nodes",
        "toil_cluster_my_cluster",
        "toil_workers",
        "toil_cluster_my_cluster_workers",
        "toil_preemptible",
        "toil_pool_my_cluster_c5_4xlarge_spot",
        "toil_type_c5_4xlarge",
    ]
    assert inventory.groups == sorted({g for h in inventory.hosts for g in h.groups})
    # One cluster's role groups are children of its cluster group and of the role group spanning all clusters.
    assert inventory.children == {
        "toil_cluster_my_cluster": ["toil_cluster_my_cluster_leaders", "toil_cluster_my_cluster_workers"],
        "toil_cluster_other": ["toil_cluster_other_leaders"],
        "toil_leaders": ["toil_cluster_my_cluster_leaders", "toil_cluster_other_leaders"],
        "toil_workers": ["toil_cluster_my_cluster_workers"],
    }


def test_hostile_cluster_names_give_plain_distinct_groups():
    """Cluster names are tag values anyone who may tag an instance writes: each group name stays an Ansible group name
    (letters, digits, '_', not starting with a digit), and a cluster named like another's role group never joins it."""
    names = ["a", "a-leaders", "a_leaders", "x; rm -rf / #", "ünï{{ lookup('pipe','id') }}", "../..", "0"]
    instances = [node(f"i-{n:02x}", cluster=name, role="leader" if n % 2 else "worker", minute=n) for n, name in enumerate(names, 1)]
    inventory = build(instances)
    assert len(inventory.hosts) == len(names)
    for group in inventory.groups:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", group), group
    # A host's groups: toil_nodes, its cluster's, its role's, its cluster's role group, then the others.
    role_groups = {host.variables["toil_cluster"]: host.groups[3] for host in inventory.hosts}
    assert all(re.fullmatch(r"toil_cluster_.*_(leaders|workers)(_[0-9a-f]{6})?", group) for group in role_groups.values())
    # Every cluster has its own role group, none shared, and none is another cluster's cluster group.
    assert len(set(role_groups.values())) == len(names)
    cluster_groups = {h.groups[1] for h in inventory.hosts}
    assert not cluster_groups & set(role_groups.values())
    # "a" (a leader) and "a-leaders" (a worker): "toil_cluster_a_leaders" would name both, so each gets a hash suffix.
    assert role_groups["a"] != "toil_cluster_a_leaders" and role_groups["a"].startswith("toil_cluster_a_leaders_")


def test_group_names_never_merge_different_clusters_or_pools():
    instances = [
        node("i-01", cluster="a-b", role="worker", extra_tags={"toil.cluster/pool": "c"}),
        node("i-02", cluster="a", role="worker", extra_tags={"toil.cluster/pool": "b-c"}),
        node("i-03", cluster="a--b", role="leader"),
    ]
    inventory = build(instances)
    pools = [g for h in inventory.hosts for g in h.groups if g.startswith("toil_pool_")]
    assert len(set(pools)) == 2 and all(g.startswith("toil_pool_a_b_c_") for g in pools)
    clusters = sorted({h.groups[1] for h in inventory.hosts})
    assert clusters == ["toil_cluster_a", "toil_cluster_a__b", "toil_cluster_a_b"]
    for group in inventory.groups:
        assert sanitize(group) == group


def test_node_types_select():
    instances = [node("i-01", cluster="c1", role="leader"), node("i-02", cluster="c1", role="worker", minute=1)]
    assert [h.name for h in build(instances, node_types=("leader",)).hosts] == ["i-01"]
    assert [h.name for h in build(instances, node_types=("worker",)).hosts] == ["i-02"]
    assert len(build(instances, node_types=("leader", "worker")).hosts) == 2


def test_sanitize():
    assert sanitize("c5.4xlarge") == "c5_4xlarge"
    assert sanitize("u-6tb1.metal") == "u_6tb1_metal"
    assert sanitize("ok_name9") == "ok_name9"
