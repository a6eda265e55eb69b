"""toil_nodepool against the embedded endpoint: sizes, spot, fall-back, victims, check mode, concurrency.

Scale-up call counts and injected capacity errors go through the recording proxy (aws_calls), which
also gives CreateFleet EC2's ClientToken idempotency (moto ignores ClientToken) and takes capacity pools'
capacity away (``no_capacity``: the instant fleet reports them in its Errors and launches from the next pool).
"""

from __future__ import annotations

import base64
import threading

import pytest
import yaml

from ansible_collections.toil.cluster.plugins.module_utils import price_table
from harness.bad_inputs import POOL_BAD_INPUTS
from harness.endpoint import DEFAULT_REGION
from harness.playbooks import assert_bad_inputs_fail, run_ansible_playbook
from harness.toil_interop import toil_view

ZONE = "us-west-2a"
CLUSTER = "tnp"


def pool_play(**options):
    options.setdefault("cluster", CLUSTER)
    options.setdefault("zone", ZONE)
    return {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "pool", "toil.cluster.toil_nodepool": options}]}


@pytest.fixture
def cluster(aws, run_playbook, key_pair):
    """A launched cluster (leader only); removed with toil_cluster at teardown, workers included."""
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": "cluster",
                "toil.cluster.toil_cluster": {"name": CLUSTER, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": key_pair},
            }
        ],
    }
    result = run_playbook(play).task("cluster")
    yield result
    run_playbook({**play, "tasks": [{"name": "gone", "toil.cluster.toil_cluster": {"name": CLUSTER, "zone": ZONE, "state": "absent"}}]})


@pytest.fixture
def pool(run_playbook, aws_calls):
    """pool(**options) -> the task result, run through the recording proxy."""

    def run(expect_rc=0, check=False, diff=False, **options):
        return run_playbook(pool_play(**options), expect_rc=expect_rc, check=check, diff=diff, env=aws_calls.env).task("pool")

    return run


def describe(aws, ids):
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_static_pool_grows_shrinks_and_is_idempotent(aws, cluster, pool, aws_calls):
    grown = pool(node_types="m5.large", count=3, node_storage=40)
    assert grown["changed"] is True
    assert (grown["pool"]["name"], grown["pool"]["running"], grown["pool"]["desired"]) == ("m5-large", 3, 3)
    # one instant fleet for the whole shortfall, never one call per node; the pool's template made once
    assert (aws_calls.count("CreateFleet", Type="instant"), aws_calls.count("RunInstances"), aws_calls.count("CreateLaunchTemplate")) == (1, 0, 1)
    ids = [i["instance_id"] for i in grown["pool"]["instances"]]
    leader = cluster["leader"]["instance_id"]
    ec2 = aws.client("ec2")
    (template,) = ec2.describe_launch_templates(LaunchTemplateNames=[f"{CLUSTER}.pool.m5-large"])["LaunchTemplates"]
    assert tags_of(template)["clusterName"] == CLUSTER  # what our destroy and Toil's delete
    for instance in describe(aws, ids).values():
        assert [g["GroupId"] for g in instance["SecurityGroups"]] == [cluster["security_group_id"]]
        assert instance["IamInstanceProfile"]["Arn"] == cluster["instance_profile_arn"]
        assert instance["MetadataOptions"]["HttpTokens"] == "required"
        tags = tags_of(instance)
        assert tags["ToilNodeType"] == "worker"
        assert tags["toil.cluster/pool"] == "m5-large"
        assert tags["toil.cluster/preemptible"] == "false"
        assert tags["clusterName"] == tags["Name"] == CLUSTER
        assert "sshKeyName" not in tags
        volume = ec2.describe_volumes(VolumeIds=[instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]])["Volumes"][0]
        assert (volume["VolumeType"], volume["Size"], volume["Encrypted"]) == ("gp3", 40, True)
        # Toil leaves worker volumes untagged; EC2 adds its own aws:ec2launchtemplate:* tags to the instance only
        assert tags_of(volume) == {k: v for k, v in tags.items() if not k.startswith("aws:")}

    aws_calls.clear()
    again = pool(node_types="m5.large", count=3, node_storage=40)
    assert again["changed"] is False
    assert aws_calls.mutating_calls() == []

    bigger = pool(node_types="m5.large", count=5)  # seconds after the first three (LaunchTime has 1 s resolution)
    assert bigger["pool"]["running"] == 5
    assert aws_calls.count("CreateFleet") == 1 and aws_calls.count("CreateLaunchTemplateVersion") == 0  # same settings, same version
    smaller = pool(node_types="m5.large", count=2)
    assert smaller["changed"] is True
    survivors = {i["instance_id"] for i in smaller["pool"]["instances"]}
    assert len(survivors) == 2
    assert survivors <= set(ids)  # the two newest went first
    assert leader not in {i["instance_id"] for i in bigger["pool"]["instances"]}
    assert describe(aws, [leader])[leader]["State"]["Name"] == "running"


def test_ranged_pool_stays_within_bounds(cluster, pool):
    assert pool(node_types="t3.large", min_size=1, max_size=4)["pool"]["running"] == 1  # no desired: up to the minimum
    assert pool(node_types="t3.large", min_size=1, max_size=4, desired=3)["pool"]["running"] == 3
    result = pool(node_types="t3.large", min_size=0, max_size=2)  # new bounds: brought within them
    assert (result["changed"], result["pool"]["running"]) == (True, 2)
    failed = pool(node_types="t3.large", min_size=0, max_size=2, desired=5, expect_rc=2)
    assert "outside the pool's range 0-2" in failed["msg"]


def test_budgets_count_every_pools_workers_and_refuse_growth_past_them(aws, cluster, pool, aws_calls):
    # Two t3.large (2 vCPUs, 8 GiB each, at the bundled table's price: moto has no Price List) in one pool.
    t3_large, m5_large = (price_table.ON_DEMAND[DEFAULT_REGION][t] for t in ("t3.large", "m5.large"))
    pool(name="first", node_types="t3.large", count=2)
    # Another pool of m5.large: a budget of two and a half of them beside the first pool leaves room for 2, not 4.
    max_cost = round(2 * t3_large + 2.5 * m5_large, 4)
    result = pool(name="second", node_types="m5.large", min_size=0, max_size=4, desired=4, max_hourly_cost=max_cost)
    assert result["pool"]["running"] + result["pool"]["pending"] == 2 and result["pool"]["desired"] == 2
    budget = result["budget"]
    used, planned, would_be = (round(2 * t3_large + n * m5_large, 4) for n in (0, 2, 4))  # would be: all 4 asked
    assert (budget["used_hourly_cost"], budget["planned_hourly_cost"], budget["node_hourly_cost"], budget["capped"]) == (used, planned, m5_large, True)
    assert budget["message"] == (
        f"Pool second grows to 2 node(s), not 4: the cluster's workers would pass max_hourly_cost {max_cost:.4f} USD/h (would be {would_be:.4f} USD/h)."
    )
    assert budget["message"] in result["warnings"] and budget["prices_from"].startswith("bundled table (")
    # vCPUs: 4 + 4 running; a third m5.large passes max_vcpus 9. In check mode nothing is launched either way.
    aws_calls.clear()
    checked = pool(name="second", node_types="m5.large", min_size=0, max_size=4, desired=3, max_vcpus=9, check=True)
    assert checked["pool"]["desired"] == 2 and checked["budget"]["capped"] is True and "max_vcpus 9 (would be 10)" in checked["budget"]["message"]
    assert aws_calls.mutating_calls() == []
    # Within the budgets: nothing is refused; shrinking never is.
    assert pool(name="second", node_types="m5.large", min_size=0, max_size=4, desired=1, max_memory="8Gi")["budget"]["capped"] is False
    failed = pool(name="second", node_types="m5.large", min_size=0, max_size=4, max_hourly_cost=-1, expect_rc=2)
    assert "max_hourly_cost must be a number of US dollars per hour" in failed["msg"]


def test_a_budget_in_usd_where_no_price_is_known_fails_before_any_change(aws, pool, aws_calls):
    # moto has no Price List and the bundled table no ap-south-1: no price is made up, so a max_hourly_cost cannot be
    # kept (counting the nodes free would let it pass unseen) and is refused before anything changes.
    assert "ap-south-1" not in price_table.ON_DEMAND
    failed = pool(name="mumbai", zone="ap-south-1a", node_types="m5.large", min_size=0, max_size=4, desired=2, max_hourly_cost=5, expect_rc=2)
    assert failed["msg"].startswith("max_hourly_cost: no on-demand price in ap-south-1 for m5.large (pool mumbai and the cluster's workers)")
    assert any("the bundled table has no prices for ap-south-1" in w for w in failed["warnings"])
    assert aws_calls.count("GetProducts") >= 1 and aws_calls.mutating_calls() == []


def test_spot_pool_nodes_are_spot_with_the_bid(aws, cluster, pool, aws_calls):
    result = pool(node_types="c5.large:0.35", count=2, labels={"workload": "align"})
    assert result["pool"]["name"] == "c5-large-spot"
    assert result["pool"]["spot"] == 2 and result["pool"]["on_demand"] == 0
    spot = {
        "TargetCapacitySpecification.DefaultTargetCapacityType": "spot",
        "SpotOptions.AllocationStrategy": "price-capacity-optimized",
        "LaunchTemplateConfigs.1.Overrides.1.MaxPrice": "0.35",
    }
    assert aws_calls.count("CreateFleet", **spot) == 1 and aws_calls.count("RunInstances") == 0
    for instance in describe(aws, [i["instance_id"] for i in result["pool"]["instances"]]).values():
        assert instance.get("InstanceLifecycle") == "spot"
        tags = tags_of(instance)
        assert tags["toil.cluster/preemptible"] == "true"
        assert tags["toil.cluster/labels"] == "eks.amazonaws.com/capacityType=SPOT,workload=align"


def _overrides(params):
    """The (instance type, subnet, priority) of each override of a CreateFleet's form parameters, in order."""
    count = sum(1 for key in params if key.startswith("LaunchTemplateConfigs.1.Overrides.") and key.endswith(".InstanceType"))
    prefix = "LaunchTemplateConfigs.1.Overrides.{}."
    return [tuple(params.get(prefix.format(n) + key) for key in ("InstanceType", "SubnetId", "Priority")) for n in range(1, count + 1)]


def _fleets(aws_calls):
    return [params for _service, action, params in aws_calls.requests if action == "CreateFleet"]


def test_falls_back_to_the_next_type_within_one_fleet_then_reports_a_deficit(aws, cluster, pool, aws_calls):
    aws_calls.no_capacity("c5.4xlarge")
    result = pool(node_types="c5.4xlarge/c5a.4xlarge", count=3, zones=[ZONE])  # one zone: one capacity pool per type
    assert {i["instance_type"] for i in result["pool"]["instances"]} == {"c5a.4xlarge"}
    assert result["pool"]["deficit"] == 0
    (fleet,) = _fleets(aws_calls)  # the fall-back happened inside the one call
    subnet = _overrides(fleet)[0][1]  # the zone's subnet like the leader's (pool_subnets)
    assert _overrides(fleet) == [("c5.4xlarge", subnet, "0.0"), ("c5a.4xlarge", subnet, "1.0")]  # the user's order
    assert fleet["OnDemandOptions.AllocationStrategy"] == "prioritized"
    assert result["pool"]["capacity_errors"] == [f"c5.4xlarge in {subnet}: InsufficientInstanceCapacity"]
    aws_calls.no_capacity("c5a.4xlarge", left=1)
    short = pool(node_types="c5.4xlarge/c5a.4xlarge", count=6, zones=[ZONE])
    assert (short["pool"]["deficit"], short["pool"]["running"], short["changed"]) == (2, 4, True)  # a partial fulfilment is taken
    assert short["pool"]["capacity_errors"] == [f"{kind} in {subnet}: InsufficientInstanceCapacity" for kind in ("c5.4xlarge", "c5a.4xlarge")]
    assert any("2 node(s) short" in w for w in short.get("warnings", []))
    assert len(_fleets(aws_calls)) == 2


def test_a_fleet_that_launched_nothing_does_not_block_the_next_run(aws, cluster, pool, aws_calls):
    """An instant fleet that launched nothing succeeded, so EC2 keeps its token; the next run of the same intent
    must not be answered with that empty fleet again (the pool's template remembers the spent token)."""
    aws_calls.no_capacity("m5.large", code="InsufficientInstanceCapacity")
    empty = pool(node_types="m5.large", count=2)
    assert (empty["changed"], empty["pool"]["deficit"], empty["pool"]["running"]) == (False, 2, 0)
    again = pool(node_types="m5.large", count=2)  # still no capacity: a new attempt, not the old answer
    assert again["pool"]["deficit"] == 2
    tokens = [fleet["ClientToken"] for fleet in _fleets(aws_calls)]
    assert len(tokens) == 2 and tokens[0] != tokens[1] and aws_calls.token_repeats == []
    aws_calls.capacity_back()
    grown = pool(node_types="m5.large", count=2)
    assert (grown["changed"], grown["pool"]["running"], grown["pool"]["deficit"]) == (True, 2, 0)
    assert len(set(fleet["ClientToken"] for fleet in _fleets(aws_calls))) == 3
    aws_calls.clear()
    assert pool(node_types="m5.large", count=2)["changed"] is False and aws_calls.mutating_calls() == []


def test_a_pool_by_requirements_launches_the_smallest_matching_type_and_falls_back_in_size_order(aws, cluster, pool, aws_calls):
    # m5.large (2 vCPUs, 8 GiB), c5.xlarge (4, 8), m5.xlarge (4, 16); m5.2xlarge excluded, m5.4xlarge too large.
    node_types = {"requirements": {"vcpus": "2-8", "memory_gib": "8-", "include": ["m5.*large", "c5.xlarge"], "exclude": ["m5.2xlarge"]}}
    planned = pool(name="general", node_types=node_types, count=2, check=True)
    assert planned["pool"]["node_types"] == "m5.large/c5.xlarge/m5.xlarge"  # found in check mode too
    assert aws_calls.mutating_calls() == [] and aws_calls.count("DescribeInstanceTypes") >= 1
    first = pool(name="general", node_types=node_types, count=2)
    assert {i["instance_type"] for i in first["pool"]["instances"]} == {"m5.large"}
    aws_calls.clear()
    aws_calls.no_capacity("m5.large")
    grown = pool(name="general", node_types=node_types, count=4)
    # the region's types once; no type described again, one image lookup for the requirements' architecture
    assert aws_calls.count("DescribeInstanceTypes") == 1 and aws_calls.count("DescribeImages") == 1
    assert sorted(i["instance_type"] for i in grown["pool"]["instances"]) == ["c5.xlarge", "c5.xlarge", "m5.large", "m5.large"]
    (fleet,) = _fleets(aws_calls)
    # every like subnet of each type, the types in size order
    assert list(dict.fromkeys(instance_type for instance_type, _subnet, _priority in _overrides(fleet))) == ["m5.large", "c5.xlarge", "m5.xlarge"]
    none = pool(name="general", node_types={"requirements": {"vcpus": 4, "memory_gib": 1}}, count=1, expect_rc=2)
    assert "No on-demand instance type in us-west-2 meets the requirements (vcpus 4, memory 1 GiB, x86_64)" in none["msg"]


def test_check_mode_changes_nothing_and_diffs_sizes(aws, cluster, pool, aws_calls):
    pool(node_types="m5.large", count=2)
    aws_calls.clear()
    result = pool(node_types="m5.large", count=4, check=True, diff=True)
    assert result["changed"] is True
    assert aws_calls.mutating_calls() == []
    assert (result["diff"]["before"]["size"], result["diff"]["after"]["size"]) == (2, 4)
    assert pool(node_types="m5.large", count=0, check=True)["pool"]["desired"] == 0
    assert aws_calls.mutating_calls() == []
    assert pool(node_types="m5.large", count=2)["changed"] is False


def test_two_concurrent_runs_launch_once(aws, cluster, aws_calls, tmp_path):
    env = {**aws.env, **aws_calls.env}
    # Hold CreateFleet, so both runs look at the empty pool before either launch lands, however loaded the machine.
    aws_calls.hold("CreateFleet", 8)
    results = []

    def run(index):
        results.append(run_ansible_playbook(pool_play(node_types="m5.large", count=3), env, tmp_path / f"run{index}"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.rc for r in results] == [0, 0], [r.describe() for r in results]
    assert aws_calls.count("CreateFleet") == 2  # both asked ...
    instances = aws.client("ec2").describe_instances(
        Filters=[{"Name": "tag:toil.cluster/pool", "Values": ["m5-large"]}, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )["Reservations"]
    assert sum(len(r["Instances"]) for r in instances) == 3  # ... and the same ClientToken launched once


def test_victims_first_then_unjoined_then_newest(aws, cluster, pool):
    ids = [i["instance_id"] for i in sorted(pool(node_types="m5.large", count=4)["pool"]["instances"], key=lambda i: i["launch_time"])]
    ec2 = aws.client("ec2")
    ec2.create_tags(Resources=ids, Tags=[{"Key": "toil.cluster/joined", "Value": "true"}])
    ec2.delete_tags(Resources=[ids[1]], Tags=[{"Key": "toil.cluster/joined"}])  # ids[1] has not joined Kubernetes
    result = pool(node_types="m5.large", count=2, terminate_instance_ids=[ids[0]])
    assert sorted(i["instance_id"] for i in result["pool"]["instances"]) == sorted([ids[2], ids[3]])
    stranger = pool(node_types="m5.large", count=1, terminate_instance_ids=[cluster["leader"]["instance_id"]], expect_rc=2)
    assert "are not live nodes of pool m5-large" in stranger["msg"]
    assert len(pool(node_types="m5.large", count=2)["pool"]["instances"]) == 2  # the refused run changed nothing


def test_absent_removes_only_the_pool(aws, cluster, pool):
    pool(node_types="m5.large", count=2)
    other = pool(node_types="t3.large", count=1)
    gone = pool(node_types="m5.large", state="absent")
    assert gone["changed"] is True and gone["pool"]["running"] == 0
    kept = describe(aws, [other["pool"]["instances"][0]["instance_id"], cluster["leader"]["instance_id"]])
    assert all(i["State"]["Name"] == "running" for i in kept.values())
    assert pool(node_types="m5.large", state="absent")["changed"] is False
    templates = aws.client("ec2").describe_launch_templates()["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in templates] == [f"{CLUSTER}.pool.t3-large"]  # the removed pool's went with it


def test_authorized_keys_reach_the_nodes_through_cloud_init(aws, cluster, pool):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl scaler@leader"
    result = pool(node_types="m5.large", count=1, authorized_keys=[key])
    instance_id = result["pool"]["instances"][0]["instance_id"]
    data = aws.client("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    text = base64.b64decode(data).decode()
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == {"ssh_authorized_keys": [key]}  # as cloud-init reads it


def test_toils_provisioner_lists_the_workers(aws, cluster, pool):
    result = pool(node_types="m5.large", count=3)
    view = toil_view(aws.env, CLUSTER, ZONE)
    assert view.get("error") is None, view
    assert view["leader"] == cluster["leader"]["instance_id"]
    assert sorted(view["workers"]) == sorted(i["instance_id"] for i in result["pool"]["instances"])


def test_bad_input_fails_before_any_change(cluster, run_playbook, aws_calls):
    cases = [({"cluster": CLUSTER, "zone": ZONE, **options}, message) for options, message in POOL_BAD_INPUTS]
    assert_bad_inputs_fail(run_playbook, "toil_nodepool", cases, aws_calls)


def _pool_ever(aws, name):
    pages = aws.client("ec2").get_paginator("describe_instances").paginate(Filters=[{"Name": "tag:toil.cluster/pool", "Values": [name]}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def test_a_pool_grows_back_after_going_to_zero_and_a_lost_answer_launches_once(aws, cluster, pool, aws_calls):
    """2 -> 0 -> 2: EC2 answers a reused token with the terminated instances, so the token must differ per
    generation (the proxy answers as EC2 does). Each launch's answer is lost after EC2 carried it out (a 503
    after the request): botocore's retry sends the same token and gets the same reservation, in both generations."""
    aws_calls.fail_next("CreateFleet", status=503, code="RequestLimitExceeded", lost=True)
    first = {i["instance_id"] for i in pool(node_types="m5.large", count=2, wait_timeout=60)["pool"]["instances"]}
    assert pool(node_types="m5.large", count=0)["pool"]["running"] == 0
    tokens = []

    def lose_the_new_launch(_service, action, params):  # the 1st call meets the old token, the 2nd launches
        if action == "CreateFleet":
            tokens.append(params["ClientToken"])
            if len(tokens) == 2:
                aws_calls.fail_next("CreateFleet", status=503, code="RequestLimitExceeded", lost=True)

    aws_calls.on_call = lose_the_new_launch
    back = pool(node_types="m5.large", count=2, wait_timeout=60)
    again = {i["instance_id"] for i in back["pool"]["instances"]}
    assert back["pool"]["running"] == 2 and not again & first
    assert len(_pool_ever(aws, "m5-large")) == 4  # nothing launched twice
    assert [code for _s, action, _st, code, _lost in aws_calls.injected if action == "CreateFleet"] == ["RequestLimitExceeded"] * 2
    assert len(tokens) == 3 and tokens[0] != tokens[1] == tokens[2]  # the old token, the new one, its retry
    assert [outcome for _t, outcome in aws_calls.token_repeats] == ["replayed", "replayed", "replayed"]  # 2 retries, 1 stale token


def test_a_cluster_destroyed_and_launched_again_under_its_name_gets_new_nodes(aws, run_playbook, key_pair, aws_calls):
    """Destroy then launch with the same name: the leader's and the pools' tokens belong to the cluster's
    generation (its new security group), so EC2 does not answer with the destroyed cluster's instances."""
    launch = {"name": CLUSTER, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": key_pair}
    workers = {"cluster": CLUSTER, "zone": ZONE, "node_types": "m5.large", "count": 2, "wait_timeout": 60}
    life = [
        {"name": "launch", "toil.cluster.toil_cluster": launch, "register": "launch"},
        {"name": "pool", "toil.cluster.toil_nodepool": workers, "register": "pool"},
        {"name": "destroy", "toil.cluster.toil_cluster": {"name": CLUSTER, "zone": ZONE, "state": "absent"}},
    ]
    runs = [run_playbook({"hosts": "localhost", "gather_facts": False, "tasks": life}, env=aws_calls.env, expect_rc=None) for _generation in range(2)]
    assert [r.rc for r in runs] == [0, 0], runs[1].describe()
    leaders = [r.task("launch")["leader"]["instance_id"] for r in runs]
    nodes = [{i["instance_id"] for i in r.task("pool")["pool"]["instances"]} for r in runs]
    assert leaders[0] != leaders[1] and not nodes[0] & nodes[1]
    assert all(r.task("pool")["pool"]["running"] == 2 for r in runs)


def test_a_lost_static_worker_is_replaced_by_the_pool_and_by_the_scaler(aws, cluster, pool, run_playbook, aws_calls, tmp_path):
    """A static pool grown 1 -> 2 loses its second node behind the collection's back (the pool is back at the
    intent that launched it: members {first}, target 2). The next toil_nodepool run (what launch_cluster runs)
    replaces it, and so does the scaler (what autoscale runs) after a second loss."""
    ec2 = aws.client("ec2")
    first = {i["instance_id"] for i in pool(node_types="m5.large", count=1, wait_timeout=60)["pool"]["instances"]}
    grown = {i["instance_id"] for i in pool(node_types="m5.large", count=2, wait_timeout=60)["pool"]["instances"]}
    lost = grown - first
    ec2.terminate_instances(InstanceIds=sorted(lost))
    replaced = pool(node_types="m5.large", count=2, wait_timeout=60)
    now = {i["instance_id"] for i in replaced["pool"]["instances"]}
    assert replaced["changed"] is True and replaced["pool"]["running"] == 2 and first < now and not now & lost
    ec2.terminate_instances(InstanceIds=sorted(now - first))
    scaler = {
        "cluster": CLUSTER,
        "zone": ZONE,
        "pools": [{"name": "m5-large", "node_types": "m5.large", "min_size": 2, "max_size": 2}],
        "demand": {"pods": []},
        "state_path": str(tmp_path / "state.json"),
        "metrics_path": str(tmp_path / "metrics.prom"),
        "wait_timeout": 60,
    }
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "scaler", "toil.cluster.toil_scaler": scaler}]}
    cycle = run_playbook(play, env=aws_calls.env).task("scaler")
    live = pool(node_types="m5.large", count=2)
    assert cycle["changed"] is True and live["changed"] is False and live["pool"]["running"] == 2
    assert first <= {i["instance_id"] for i in live["pool"]["instances"]}
