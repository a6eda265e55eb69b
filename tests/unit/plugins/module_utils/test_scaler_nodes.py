"""Issue 17, the scaler's nodes: providerIDs written and read, nodes matched to instances, dead nodes, idle timers
on the nodes, max_size.

Nodes are the kubernetes client's own V1Node models, deserialized from JSON shaped as ``kubectl get node -o
json`` prints it; the API is a recording fake (``FakeCoreV1``) answering as the API server does (merge patch with a
resourceVersion precondition: 409 when stale).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleFilterError
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ansible_collections.toil.cluster.plugins.filter.provider_id import provider_id as provider_id_filter
from ansible_collections.toil.cluster.plugins.module_utils import scaler
from ansible_collections.toil.cluster.plugins.module_utils.binpacking import GIB, PoolShape, Resources, node_capacity
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import IDLE_SINCE_ANNOTATION, INTERRUPTION_TAINT, match_instances, read_demand
from ansible_collections.toil.cluster.plugins.module_utils.provider_id import instance_of, provider_id, validate_provider_id
from harness.paths import REPO

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
API = client.ApiClient()
ID_A, ID_B, ID_C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"


def node(name, provider=None, ip="10.0.1.23", ready=True, pool="p", annotations=None, version="47000", hostname=None, taints=None):
    """A node; with ``taints``, cordoned and tainted so."""
    data = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"toil.cluster/pool": pool} if pool else {}, "annotations": annotations or {}, "resourceVersion": version},
        "spec": {**({"providerID": provider} if provider else {}), **({"taints": taints, "unschedulable": True} if taints else {})},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": hostname or name}],
            "allocatable": {"cpu": "2", "memory": "7832788Ki", "ephemeral-storage": "48307982274", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown", "reason": "KubeletReady" if ready else "NodeStatusUnknown"}],
        },
    }
    return API.deserialize(SimpleNamespace(data=json.dumps(data)), "V1Node")


def instance(iid, ip, dns=None, pool="p", state="running"):
    return {
        "InstanceId": iid,
        "PrivateIpAddress": ip,
        "PrivateDnsName": dns if dns is not None else f"ip-{ip.replace('.', '-')}.us-west-2.compute.internal",
        "State": {"Name": state},
        "Tags": [{"Key": "toil.cluster/pool", "Value": pool}],
    }


OWNER = client.V1OwnerReference(api_version="apps/v1", kind="ReplicaSet", name="web", uid="u", controller=True)


def workers(*nodes, now=NOW, legacy=None):
    return read_demand([], list(nodes), now, legacy)[1]


# ----------------------------------------------------------------------------- providerID


@pytest.mark.parametrize(
    ("instance_id", "zone"),
    [
        ("i-0123456789abcdef0", "us-west-2a"),
        ("i-0abc1234", "us-east-1f"),
        ("i-0123456789abcdef0", "us-west-2-lax-1a"),
        ("i-0123456789abcdef0", "us-east-1-wl1-bos-wlz-1"),
    ],
)
def test_provider_id_round_trip(instance_id, zone):
    written = provider_id(instance_id, zone)
    assert written == f"aws:///{zone}/{instance_id}"
    assert validate_provider_id(written) == written
    assert instance_of(written) == instance_id
    assert provider_id_filter(instance_id, zone) == written


@pytest.mark.parametrize(
    ("instance_id", "zone", "message"),
    [
        ("i-0123456789abcdef0\n--cloud-provider=aws", "us-west-2a", "is not an EC2 instance id"),
        ("i-0123456789abcdef0 --v=9", "us-west-2a", "is not an EC2 instance id"),
        ('i-0123456789abcdef0"\n    - name: x', "us-west-2a", "is not an EC2 instance id"),
        ("i-0123456789ABCDEF0", "us-west-2a", "is not an EC2 instance id"),
        ("i-0123456789abcdef0a", "us-west-2a", "is not an EC2 instance id"),
        ("i-0123", "us-west-2a", "is not an EC2 instance id"),
        ("../../etc", "us-west-2a", "is not an EC2 instance id"),
        (["i-0123456789abcdef0"], "us-west-2a", "is not an EC2 instance id"),
        ("i-0123456789abcdef0", "us-west-2a\n", "is not an EC2 availability zone"),
        ("i-0123456789abcdef0", "us-west-2a/i-0bad", "is not an EC2 availability zone"),
        ("i-0123456789abcdef0", "us-west-2", "is not an EC2 availability zone"),
        ("i-0123456789abcdef0", "US-WEST-2A", "is not an EC2 availability zone"),
        ("i-0123456789abcdef0", "a" * 70, "is not an EC2 availability zone"),
    ],
)
def test_hostile_instance_ids_and_zones_are_refused(instance_id, zone, message):
    with pytest.raises(ToilInputError, match=message):
        provider_id(instance_id, zone)
    with pytest.raises(AnsibleFilterError, match=message):
        provider_id_filter(instance_id, zone)


def test_the_filter_without_a_zone_or_id_gives_nothing_but_still_checks_the_id():
    assert provider_id_filter("", "us-west-2a") == ""
    assert provider_id_filter(None, None) == ""
    assert provider_id_filter("i-0123456789abcdef0", "") == ""
    with pytest.raises(AnsibleFilterError, match="is not an EC2 instance id"):
        provider_id_filter("i-0123\n", "")
    assert provider_id_filter("aws:///us-west-2a/i-0123456789abcdef0") == "aws:///us-west-2a/i-0123456789abcdef0"
    with pytest.raises(AnsibleFilterError, match="is not aws:///<zone>/<instance id>"):
        provider_id_filter("aws:///us-west-2a/i-0123456789abcdef0\n--v=9")


# ----------------------------------------------------------------------------- nodes and instances


def test_provider_id_first_then_dns_name_then_internal_ip():
    live = [instance(ID_A, "10.0.1.10"), instance(ID_B, "10.0.1.11"), instance(ID_C, "10.0.1.12", dns="")]
    listed = workers(
        node("by-provider", provider=f"aws:///us-west-2a/{ID_A}", ip="10.0.9.9"),
        node("ip-10-0-1-11.us-west-2.compute.internal", ip="10.0.9.8"),  # the node name is the PrivateDnsName
        node("some-host", ip="10.0.1.12"),  # only the InternalIP matches
    )
    kept, gone = match_instances(listed, live)
    assert {w.name: w.instance_id for w in kept} == {"by-provider": ID_A, "ip-10-0-1-11.us-west-2.compute.internal": ID_B, "some-host": ID_C}
    assert gone == []


def test_the_kubelets_default_name_is_the_dns_names_first_label():
    kept, _gone = match_instances(workers(node("ip-10-0-1-10", ip="192.0.2.1")), [instance(ID_A, "10.0.1.10")])
    assert kept[0].instance_id == ID_A


def test_an_ambiguous_address_matches_no_instance():
    live = [instance(ID_A, "10.0.1.10", dns=""), instance(ID_B, "10.0.1.10", dns="")]
    kept, gone = match_instances(workers(node("n", ip="10.0.1.10")), live)
    assert (kept[0].instance_id, gone) == (None, [])


def test_nodes_whose_instance_is_gone_are_never_supply():
    live = [instance(ID_A, "10.0.1.10")]
    listed = workers(
        node("a", provider=f"aws:///us-west-2a/{ID_A}", ip="10.0.1.10"),
        node("terminated", provider=f"aws:///us-west-2a/{ID_B}", ip="10.0.1.11"),
        node("stale-no-provider", ip="10.0.1.99", ready=False),  # NotReady, matches no live instance
        node("foreign-but-ready", ip="10.0.1.98"),  # Ready: not ours to delete, but nothing to remove either
        node("stopped", provider=f"aws:///us-west-2a/{ID_C}", ip="10.0.1.12"),
    )
    kept, gone = match_instances(listed, live, gone_ids={ID_B})
    assert [w.name for w in gone] == ["terminated", "stale-no-provider"]
    assert {w.name: w.instance_id for w in kept} == {"a": ID_A, "foreign-but-ready": None, "stopped": None}


class FakeEC2:
    """DescribeInstances with an instance-id filter, as EC2 answers it: unknown ids are left out."""

    def __init__(self, known):
        self.known = known
        self.calls = []

    def get_paginator(self, name):
        assert name == "describe_instances"
        return self

    def paginate(self, Filters, PaginationConfig):  # noqa: N803 (botocore's names)
        self.calls.append(Filters)
        ids = [f["Values"] for f in Filters if f["Name"] == "instance-id"][0]
        yield {"Reservations": [{"Instances": [i for i in self.known if i["InstanceId"] in ids]}]}


def test_gone_means_terminated_shutting_down_or_unknown_to_ec2():
    listed = workers(
        node("a", provider=f"aws:///us-west-2a/{ID_A}"),
        node("b", provider=f"aws:///us-west-2a/{ID_B}"),
        node("c", provider=f"aws:///us-west-2a/{ID_C}"),
        node("d", provider="aws:///us-west-2a/i-0dddddddddddddddd"),
    )
    ec2 = FakeEC2([instance(ID_B, "10.0.1.11", state="terminated"), instance(ID_C, "10.0.1.12", state="stopped")])
    gone = scaler.gone_instance_ids(ec2, listed, [instance(ID_A, "10.0.1.10")])
    assert gone == {ID_B, "i-0dddddddddddddddd"}
    assert len(ec2.calls) == 1


class FakeCoreV1:
    """Nodes by name, answering patch_node as the API server does to a merge patch: 409 when the patch carries a
    resourceVersion that is not the node's; a change bumps the version; null removes an annotation."""

    def __init__(self, *nodes):
        self.nodes = {n.metadata.name: n for n in nodes}
        self.calls = []

    def patch_node(self, name, body):
        self.calls.append(("patch", name, json.loads(json.dumps(body))))
        current = self.nodes.get(name)
        if current is None:
            raise ApiException(status=404, reason="Not Found")
        wanted = body["metadata"].get("resourceVersion")
        if wanted is not None and wanted != current.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        annotations = dict(current.metadata.annotations or {})
        for key, value in body["metadata"].get("annotations", {}).items():
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
        current.metadata.annotations = annotations
        current.metadata.resource_version = str(int(current.metadata.resource_version) + 1)

    def read_node(self, name):
        self.calls.append(("read", name))
        return self.nodes[name]

    def delete_node(self, name):
        self.calls.append(("delete", name))
        if self.nodes.pop(name, None) is None:
            raise ApiException(status=404, reason="Not Found")


def test_gone_nodes_are_deleted_and_only_reported_in_plan_only_runs():
    listed = workers(node("dead", provider=f"aws:///us-west-2a/{ID_B}"), node("gone-long-ago", ip="10.0.1.99", ready=False))
    api = FakeCoreV1(node("dead"))
    planned = scaler.remove_gone_nodes(api, listed, act=False, warn=pytest.fail)
    assert [e["deleted"] for e in planned] == [False, False] and api.calls == []
    removed = scaler.remove_gone_nodes(api, listed, act=True, warn=pytest.fail)
    assert [(e["name"], e["deleted"]) for e in removed] == [("dead", True), ("gone-long-ago", True)]  # 404: already gone
    assert api.calls == [("delete", "dead"), ("delete", "gone-long-ago")]


# ----------------------------------------------------------------------------- idle timers on the nodes


def test_idle_timers_are_read_from_and_written_to_the_node():
    earlier = "2026-01-05T11:50:00Z"
    busy_pod = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="web-1",
            namespace="default",
            owner_references=[OWNER],
        ),
        spec=client.V1PodSpec(node_name="busy", containers=[client.V1Container(name="c")]),
        status=client.V1PodStatus(phase="Running"),
    )
    nodes = [node("idle", annotations={IDLE_SINCE_ANNOTATION: earlier}), node("new-idle"), node("busy", annotations={IDLE_SINCE_ANNOTATION: earlier})]
    _pods, listed, _timers = read_demand([busy_pod], nodes, NOW)
    by_name = {w.name: w for w in listed}
    assert (by_name["idle"].idle_seconds, by_name["idle"].idle_since) == (600, earlier)  # kept as written
    assert (by_name["new-idle"].idle_seconds, by_name["new-idle"].idle_since) == (0, "2026-01-05T12:00:00Z")
    assert (by_name["busy"].idle_seconds, by_name["busy"].idle_since) == (0, None)

    api = FakeCoreV1(*nodes)
    scaler.annotate_idle(api, listed, warn=pytest.fail)
    assert [c for c in api.calls if c[0] == "patch"] == [
        ("patch", "new-idle", {"metadata": {"annotations": {IDLE_SINCE_ANNOTATION: "2026-01-05T12:00:00Z"}, "resourceVersion": "47000"}}),
        ("patch", "busy", {"metadata": {"annotations": {IDLE_SINCE_ANNOTATION: None}, "resourceVersion": "47000"}}),
    ]
    assert IDLE_SINCE_ANNOTATION not in api.nodes["busy"].metadata.annotations

    # A second scheduler (another machine, no state file) sees the same timers.
    _pods, again, _timers = read_demand([busy_pod], list(api.nodes.values()), NOW + timedelta(minutes=5))
    assert {w.name: w.idle_seconds for w in again} == {"idle": 900, "new-idle": 300, "busy": 0}


def test_an_old_state_files_timers_are_read_once_for_nodes_without_the_annotation():
    legacy = {"old": "2026-01-05T11:40:00+00:00", "annotated": "2026-01-05T11:00:00+00:00"}
    listed = workers(node("old"), node("annotated", annotations={IDLE_SINCE_ANNOTATION: "2026-01-05T11:55:00Z"}), legacy=legacy)
    assert {w.name: (w.idle_seconds, w.idle_since) for w in listed} == {"old": (1200, "2026-01-05T11:40:00Z"), "annotated": (300, "2026-01-05T11:55:00Z")}


def test_a_conflicting_patch_is_retried_on_the_fresh_node_unless_another_run_set_the_timer():
    listed = workers(node("a"), node("b"))
    api = FakeCoreV1(node("a", version="48000"), node("b", version="48000", annotations={IDLE_SINCE_ANNOTATION: "2026-01-05T11:59:00Z"}))
    scaler.annotate_idle(api, listed, warn=pytest.fail)
    # a: the node changed (not its timer): patched again with the fresh version; b: another run's timer stands.
    assert api.nodes["a"].metadata.annotations[IDLE_SINCE_ANNOTATION] == "2026-01-05T12:00:00Z"
    assert api.nodes["b"].metadata.annotations[IDLE_SINCE_ANNOTATION] == "2026-01-05T11:59:00Z"
    assert [c[:2] for c in api.calls] == [("patch", "a"), ("read", "a"), ("patch", "a"), ("patch", "b"), ("read", "b")]


# ----------------------------------------------------------------------------- max_size in a run


def test_a_run_never_launches_past_max_size_and_keeps_busy_nodes(monkeypatch):
    """Old code: a node object without an instance counted as busy, desired became 3 against max_size 2
    ("current=3, desired=3, capped at max_size 2") and the pool of 2 instances launched a third."""
    asked = {}

    def reconcile(_ec2, spec, _state, _check, _wait, _timeout):
        asked[spec.name] = (spec.desired, spec.victims)
        return False, {"deficit": 0, "instances": []}, {}

    monkeypatch.setattr(scaler, "reconcile", reconcile)
    settings = scaler.ScalerSettings.from_params(
        {
            "cluster": "c1",
            "zone": "us-west-2a",
            "region": None,
            "pools": [{"name": "p", "node_types": "m5.large", "min_size": 0, "max_size": 2}],
            "beta_inertia": 0.0,
            "preemptible_compensation": 0.0,
            "scale_down_idle_seconds": 600,
            "demand": None,
            "kubeconfig": None,
            "context": None,
            "apply": True,
            "wait": False,
            "wait_timeout": 60,
            "drain_timeout": 60,
            "state_path": None,
            "metrics_path": None,
        }
    )
    shape = PoolShape("p", node_capacity(2, 8192, 50), False, 0, 2, ("m5.large",))
    live = [instance(ID_A, "10.0.1.10"), instance(ID_B, "10.0.1.11")]
    listed = workers(
        node("a", provider=f"aws:///us-west-2a/{ID_A}", ip="10.0.1.10"),
        node("b", provider=f"aws:///us-west-2a/{ID_B}", ip="10.0.1.11"),
        node("stale", ip="10.0.1.99", ready=False),
    )
    kept, _gone = match_instances(listed, live)
    # Both live nodes run a pod: not idle.
    states = [scaler.node_state(w.instance_id, w.pool, w.allocatable, w.allocatable, 0, True, False, w.name) for w in kept]
    _packing, decisions, _results, _changed = scaler.run(None, settings, [shape], [], states, {}, None, scaler.pool_sizes_of(live))
    assert decisions["p"].desired <= 2
    assert asked["p"] == (2, ())

    # Without the mapping (the old run): the stale node counts, yet desired stays within max_size.
    old_states = states + [scaler.node_state(None, "p", Resources(2000, GIB, GIB), Resources(), 5000, True, False, "stale")]
    _packing, decisions, _results, _changed = scaler.run(None, settings, [shape], [], old_states, {}, None, scaler.pool_sizes_of(live))
    assert decisions["p"].desired == 2
    assert asked["p"] == (2, ())


def test_busy_nodes_above_max_size_are_kept_not_terminated(monkeypatch):
    asked = {}

    def reconcile(_ec2, spec, *_args):
        asked[spec.name] = spec.desired
        return False, {"deficit": 0, "instances": []}, {}

    monkeypatch.setattr(scaler, "reconcile", reconcile)
    settings = SimpleNamespace(
        apply=True,
        pools=(SimpleNamespace(name="p", desired=None, victims=()),),
        preemptible_compensation=0.0,
        beta_inertia=0.0,
        scale_down_idle_seconds=600,
        wait=False,
        wait_timeout=1,
        budget=None,
    )
    shape = PoolShape("p", node_capacity(2, 8192, 50), False, 0, 2, ("m5.large",))
    ids = [f"i-0{n:016x}" for n in range(4)]
    states = [scaler.node_state(i, "p", Resources(2000, GIB, GIB), Resources(2000, GIB, GIB), 0, False, False, i) for i in ids]
    _packing, decisions, _results, _changed = scaler.run(None, settings, [shape], [], states, {}, None, {"p": 4})
    assert decisions["p"].desired == 2  # reported within max_size
    assert asked["p"] == 4  # but no busy node is terminated


# ----------------------------------------------------------------------------- instance-store disks


class FakeTypes:
    """DescribeInstanceTypes as EC2 answers it (c5d.4xlarge: one 400 GB NVMe instance-store disk; m5.large: none)."""

    TYPES = {
        "c5d.4xlarge": {
            "InstanceType": "c5d.4xlarge",
            "VCpuInfo": {"DefaultVCpus": 16},
            "MemoryInfo": {"SizeInMiB": 32768},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "InstanceStorageSupported": True,
            "InstanceStorageInfo": {"TotalSizeInGB": 400, "Disks": [{"SizeInGB": 400, "Count": 1, "Type": "ssd"}], "NvmeSupport": "required"},
        },
        "m5.large": {
            "InstanceType": "m5.large",
            "VCpuInfo": {"DefaultVCpus": 2},
            "MemoryInfo": {"SizeInMiB": 8192},
            "ProcessorInfo": {"SupportedArchitectures": ["i386", "x86_64"]},
            "InstanceStorageSupported": False,
        },
        "m6g.large": {
            "InstanceType": "m6g.large",
            "VCpuInfo": {"DefaultVCpus": 2},
            "MemoryInfo": {"SizeInMiB": 8192},
            "ProcessorInfo": {"SupportedArchitectures": ["arm64"]},
        },
        "g4dn.xlarge": {
            "InstanceType": "g4dn.xlarge",
            "VCpuInfo": {"DefaultVCpus": 4},
            "MemoryInfo": {"SizeInMiB": 16384},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "GpuInfo": {"Gpus": [{"Name": "T4", "Manufacturer": "NVIDIA", "Count": 1, "MemoryInfo": {"SizeInMiB": 16384}}]},
            "InstanceStorageInfo": {"TotalSizeInGB": 125, "Disks": [{"SizeInGB": 125, "Count": 1, "Type": "ssd"}]},
        },
        "g4ad.xlarge": {
            "InstanceType": "g4ad.xlarge",
            "VCpuInfo": {"DefaultVCpus": 4},
            "MemoryInfo": {"SizeInMiB": 16384},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "GpuInfo": {"Gpus": [{"Name": "Radeon Pro V520", "Manufacturer": "AMD", "Count": 1, "MemoryInfo": {"SizeInMiB": 8192}}]},
        },
    }

    def __init__(self):
        self.asked = []

    def describe_instance_types(self, InstanceTypes, aws_retry):  # noqa: N803 (botocore's names)
        self.asked.append(list(InstanceTypes))
        return {"InstanceTypes": [self.TYPES[t] for t in InstanceTypes]}


def _pool_spec(node_types, node_storage=50, name="p"):
    (spec,), *_rest = scaler.validate_settings(
        {"cluster": "c1", "pools": [{"name": name, "node_types": node_types, "min_size": 0, "max_size": 4, "node_storage": node_storage}]}
    )
    return spec


def test_a_200_gib_job_on_c5d_4xlarge_is_placeable():
    """Issue 17: Toil sizes a node's disk from its instance-store disks (getNodeShape: disks x disk_capacity GiB,
    the root volume only when there are none); a 200 GiB Toil job (Toil asks disk + 512 MiB) fits c5d.4xlarge's
    400 GB disk, not its 50 GiB root volume."""
    ec2 = FakeTypes()
    cache = scaler.instance_type_shapes(ec2, {"c5d.4xlarge", "m5.large"}, {})
    assert cache["c5d.4xlarge"]["storage_gib"] == 400 and cache["m5.large"]["storage_gib"] == 0
    (shape,) = scaler.pool_shapes([_pool_spec("c5d.4xlarge")], cache)
    assert shape.capacity.disk == 400 * GIB - (5 * 10**9 + int(0.05 * 400 * GIB))  # Toil's _disk_overhead
    job = scaler.PodGroup("toil-job", Resources(1000, 2 * GIB + 512 * 2**20, 200 * GIB + 512 * 2**20), True)
    packing = scaler.pack([job], [shape], [])
    assert packing.unplaceable == []
    assert packing.new_nodes == {"p": 1}
    # An EBS-only type keeps the root volume (node_storage) as its disk.
    (ebs,) = scaler.pool_shapes([_pool_spec("m5.large", node_storage=300)], cache)
    assert ebs.capacity.disk == 300 * GIB - (5 * 10**9 + int(0.05 * 300 * GIB))


def test_an_older_state_files_instance_types_are_described_again():
    ec2 = FakeTypes()
    cache = scaler.instance_type_shapes(ec2, {"c5d.4xlarge"}, {"c5d.4xlarge": {"vcpus": 16, "memory_mib": 32768}})
    assert ec2.asked == [["c5d.4xlarge"]] and cache["c5d.4xlarge"]["storage_gib"] == 400
    scaler.instance_type_shapes(ec2, {"c5d.4xlarge"}, cache)
    assert ec2.asked == [["c5d.4xlarge"]]  # cached since


def listing_core(listed_nodes):
    """A CoreV1Api stand-in listing no pods and ``listed_nodes``, as the list calls with _preload_content=False answer:
    the HTTP response, undecoded."""

    def response(body):
        return SimpleNamespace(data=json.dumps(API.sanitize_for_serialization(body)).encode(), release_conn=lambda: None)

    return SimpleNamespace(
        list_pod_for_all_namespaces=lambda **_kw: response(client.V1PodList(items=[], metadata=client.V1ListMeta())),
        list_node=lambda **_kw: response(listed_nodes),
    )


def test_a_state_file_of_the_previous_version_keeps_its_timers_once(monkeypatch):
    """Backward compatibility: idle timers kept in the state file by an older scaler are used for nodes without the
    annotation, then dropped from the state (the annotation takes over)."""
    listed = client.V1NodeList(
        items=[node("old"), node("annotated", annotations={IDLE_SINCE_ANNOTATION: "2026-01-05T11:55:00Z"})], metadata=client.V1ListMeta()
    )

    monkeypatch.setattr(scaler, "now_utc", lambda: NOW)
    state = {"version": 1, "idle_since": {"old": "2026-01-05T11:40:00+00:00", "annotated": "2026-01-05T11:00:00+00:00"}, "estimates": {"p": 2}}
    settings = SimpleNamespace(demand=None, drain_timeout=1, cluster="c1")
    observed = scaler.read_pods_and_nodes(settings, state, pytest.fail, None, (listing_core(listed), None))
    assert {w.name: (w.idle_seconds, w.idle_since) for w in observed.workers} == {
        "old": (1200, "2026-01-05T11:40:00Z"),
        "annotated": (300, "2026-01-05T11:55:00Z"),
    }
    assert state == {"version": 1, "estimates": {"p": 2}}


# ----------------------------------------------------------------------------- GPUs and architectures


def test_a_pools_shape_has_its_types_nvidia_gpus_and_architecture():
    cache = scaler.instance_type_shapes(FakeTypes(), {"g4dn.xlarge", "g4ad.xlarge", "m5.large", "m6g.large"}, {})
    assert {t: (cache[t]["gpus"], cache[t]["arch"]) for t in cache} == {
        "g4dn.xlarge": (1, "amd64"),
        "g4ad.xlarge": (0, "amd64"),  # AMD's GPUs are not nvidia.com/gpu
        "m5.large": (0, "amd64"),  # i386 and x86_64
        "m6g.large": (0, "arm64"),
    }
    (gpu,) = scaler.pool_shapes([_pool_spec("g4dn.xlarge")], cache)
    assert (gpu.capacity.gpu, gpu.arch) == (1, "amd64")
    (arm,) = scaler.pool_shapes([_pool_spec("m6g.large")], cache)
    assert (arm.capacity.gpu, arm.arch) == (0, "arm64")
    (mixed_gpus,) = scaler.pool_shapes([_pool_spec("g4dn.xlarge/m5.large")], cache)
    assert mixed_gpus.capacity.gpu == 0  # the smallest of its types, as for CPU and memory


def test_a_pool_mixing_architectures_is_refused_before_any_change():
    cache = scaler.instance_type_shapes(FakeTypes(), {"m5.large", "m6g.large"}, {})
    with pytest.raises(ToilInputError, match=r"Pool p mixes architectures \(amd64: m5.large; arm64: m6g.large\).*Make one pool per architecture"):
        scaler.pool_shapes([_pool_spec("m5.large/m6g.large")], cache)
    cache["mac1.metal"] = {"vcpus": 12, "memory_mib": 32768, "storage_gib": 0, "gpus": 0, "arch": None}
    with pytest.raises(ToilInputError, match=r"Pool p: instance type\(s\) mac1.metal run neither x86_64 nor arm64 Linux"):
        scaler.pool_shapes([_pool_spec("mac1.metal")], cache)


def test_a_scaler_run_refuses_a_mixed_pool_before_it_changes_anything(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(scaler, "reconcile", lambda *args, **kwargs: calls.append(args))
    settings = scaler.ScalerSettings(
        cluster="c1",
        pools=(_pool_spec("m5.large/m6g.large"),),
        region="us-west-2",
        demand={"pods": [{"name": "x", "cpu": "1"}]},
        state_path=str(tmp_path / "state.json"),
        lease_wait=0,
    )
    with pytest.raises(ToilInputError, match="mixes architectures"):
        scaler.scale(settings, FakeTypes(), print)
    assert calls == [] and not (tmp_path / "state.json").exists()


def test_an_older_state_files_shapes_without_gpus_or_architecture_are_described_again():
    ec2 = FakeTypes()
    old = {"g4dn.xlarge": {"vcpus": 4, "memory_mib": 16384, "storage_gib": 125}}  # kept before GPUs were counted
    cache = scaler.instance_type_shapes(ec2, {"g4dn.xlarge"}, old)
    assert ec2.asked == [["g4dn.xlarge"]] and (cache["g4dn.xlarge"]["gpus"], cache["g4dn.xlarge"]["arch"]) == (1, "amd64")


class FakeCatalogue:
    """DescribeInstanceTypes' pages (the region's whole catalogue), counting the reads."""

    def __init__(self):
        self.reads = 0

    def get_paginator(self, name):
        assert name == "describe_instance_types"
        return self

    def paginate(self):
        self.reads += 1
        return [{"InstanceTypes": list(FakeTypes.TYPES.values())}]


def test_a_kept_catalogue_of_an_older_version_is_read_again():
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    old_entry = {"vcpus": 4, "memory_mib": 16384, "storage_gib": 125, "architectures": ["x86_64"], "usage_classes": ["spot"], "accelerators": True}
    state = {"catalogue": {"region": "us-west-2", "read_at": now.isoformat(), "types": {"g4dn.xlarge": old_entry}}}
    ec2 = FakeCatalogue()
    types = scaler.region_catalogue(ec2, state, "us-west-2", now)
    assert ec2.reads == 1 and types["g4dn.xlarge"]["gpus"] == 1 and state["catalogue"]["version"] == scaler.CATALOGUE_VERSION
    scaler.region_catalogue(ec2, state, "us-west-2", now + timedelta(hours=1))
    assert ec2.reads == 1  # this one is kept


def test_the_demand_options_gpus_and_architectures_are_packed():
    pods, nodes = scaler.normalize_demand(
        {
            "pods": [
                {"name": "train", "cpu": "2", "memory": "8Gi", "gpu": 1, "count": 3},
                {"name": "arm", "cpu": "1", "memory": "1Gi", "arch": "arm64", "count": 2},
                {"name": "either", "cpu": "1", "memory": "1Gi", "arch": ["amd64", "arm64"]},
            ],
            "nodes": [{"instance_id": "i-g", "pool": "gpu", "arch": "amd64", "allocatable": {"cpu": "4", "memory": "15Gi", "gpu": "1"}}],
        }
    )
    assert [(p.request.gpu, p.arches) for p in pods] == [(1, None), (0, frozenset({"arm64"})), (0, frozenset({"amd64", "arm64"}))]
    assert (nodes[0].free.gpu, nodes[0].arch) == (1, "amd64")
    cache = scaler.instance_type_shapes(FakeTypes(), {"g4dn.xlarge", "m5.large", "m6g.large"}, {})
    shapes = scaler.pool_shapes([_pool_spec("g4dn.xlarge", name="gpu"), _pool_spec("m5.large", name="cpu"), _pool_spec("m6g.large", name="arm")], cache)
    packing = scaler.pack(pods, shapes, nodes)
    assert packing.new_nodes == {"gpu": 2, "cpu": 0, "arm": 1}  # 1 GPU pod on the node, 2 more; the arm64 pods on one m6g
    assert packing.placed == {"gpu": 4, "cpu": 0, "arm": 2} and packing.unplaceable == []


# ----------------------------------------------------------------------------- spot interruptions (issue 18)
# A node tainted aws-node-termination-handler/spot-itn (by the kubernetes role's handler or by NTH) is leaving: not
# room for pods, not repaired, and its pool's size on EC2 counts it on top of the desired nodes, so the run launches
# its replacement before EC2 terminates it (the resize: test_scaler_repair.py).

SPOT_ITN = {"key": INTERRUPTION_TAINT, "value": "1767614520", "effect": "NoSchedule"}
REBALANCE = {"key": "aws-node-termination-handler/rebalance-recommendation", "value": "1767614400", "effect": "NoSchedule"}


def test_the_handlers_taint_is_the_one_the_scaler_reads():
    handler = (REPO / "roles" / "kubernetes" / "files" / "toil_interruption_handler.py").read_text()
    assert f'SPOT_TAINT = "{INTERRUPTION_TAINT}"' in handler


def test_only_an_interruption_notice_makes_a_node_leaving():
    found = {w.name: w.leaving for w in workers(node("itn", taints=[SPOT_ITN]), node("rebalance", taints=[REBALANCE]), node("plain"))}
    # A rebalance recommendation only cordons (the node may live on): the usual scale-down removes it once idle.
    assert found == {"itn": True, "rebalance": False, "plain": False}


def test_a_leaving_node_is_not_supply_and_is_reported(monkeypatch):
    listed = client.V1NodeList(items=[node("itn", taints=[SPOT_ITN]), node("stays")], metadata=client.V1ListMeta())
    monkeypatch.setattr(scaler, "now_utc", lambda: NOW)
    settings = SimpleNamespace(demand=None, drain_timeout=1, cluster="c1")
    observed = scaler.read_pods_and_nodes(settings, {}, pytest.fail, None, (listing_core(listed), None))
    assert [n.name for n in observed.nodes] == ["stays"]
    assert observed.leaving == [{"name": "itn", "instance_id": None, "pool": "p"}]  # no EC2 here: not matched, its label's pool


def test_repaired_waiting_and_leaving_nodes_are_counted_per_pool():
    repair = SimpleNamespace(pool="p")
    counts = scaler.not_counted([repair], [SimpleNamespace(pool="p"), SimpleNamespace(pool="q")], [{"pool": "q"}], applied=True)
    assert counts == {"p": (1, 1), "q": (0, 2)}
    assert scaler.not_counted([repair], [], [], applied=False) == {"p": (0, 1)}  # plan only: still running
