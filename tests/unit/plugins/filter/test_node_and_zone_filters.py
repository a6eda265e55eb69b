"""The filters that read a node's tags (node_facts, tag_key), give a zone's region (zone_region) and the
scaler's pools (worker_pools with scaler=true): the roles and playbooks use them instead of tag keys and Jinja."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.filter.node_facts import FilterModule as NodeFactsFilters
from ansible_collections.toil.cluster.plugins.filter.tag_key import FilterModule as TagKeyFilters
from ansible_collections.toil.cluster.plugins.filter.worker_pools import FilterModule as WorkerPoolsFilters
from ansible_collections.toil.cluster.plugins.filter.zone_region import FilterModule as ZoneRegionFilters
from ansible_collections.toil.cluster.plugins.module_utils import tags as tag_module

node_facts = NodeFactsFilters().filters()["node_facts"]
tag_key = TagKeyFilters().filters()["tag_key"]
zone_region = ZoneRegionFilters().filters()["zone_region"]
worker_pools = WorkerPoolsFilters().filters()["worker_pools"]

SPOT = {"eks.amazonaws.com/capacityType": "SPOT"}
POOL_WORKER = {
    "clusterName": "lab",
    "ToilNodeType": "worker",
    "toil.cluster/pool": "t3-large",
    "toil.cluster/preemptible": "false",
    "toil.cluster/labels": "team=genomics,tier=a=b",
    "toil.cluster/joined": "true",
}


def test_node_facts_from_the_tags_of_a_pool_worker():
    assert node_facts(POOL_WORKER) == {
        "cluster": "lab",
        "node_type": "worker",
        "pool": "t3-large",
        "preemptible": False,
        "joined": True,
        "labels": {"toil.cluster/pool": "t3-large", "team": "genomics", "tier": "a=b"},
    }


def test_node_facts_of_a_node_without_tags():
    assert node_facts({}) == {"cluster": "", "node_type": "", "pool": "", "preemptible": False, "joined": False, "labels": {}}
    assert node_facts(None) == node_facts({})


def test_the_inventory_wins_over_the_tags_when_it_knows():
    facts = node_facts(POOL_WORKER, cluster="other", pool="big", preemptible=True)
    assert (facts["cluster"], facts["pool"], facts["preemptible"]) == ("other", "big", True)
    assert facts["labels"] == {"toil.cluster/pool": "big", "team": "genomics", "tier": "a=b", **SPOT}
    # Empty (or None) cluster and pool mean unknown, as toil_ec2 gives None for a node of no pool; preemptible=None too.
    assert node_facts(POOL_WORKER, cluster="", pool=None, preemptible=None) == node_facts(POOL_WORKER)
    assert node_facts({"toil.cluster/preemptible": "true"}, preemptible=False)["preemptible"] is False


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("True", True), ("yes", True), ("false", False), ("", False), ("nonsense", False)])
def test_the_preemptible_tag_reads_as_ansible_bool_does(value, expected):
    assert node_facts({"toil.cluster/preemptible": value})["preemptible"] is expected


def test_a_spot_node_of_no_pool_gets_only_the_spot_label():
    assert node_facts({"clusterName": "lab"}, preemptible=True)["labels"] == SPOT


def test_given_labels_stand_for_the_pool_s_and_still_get_the_spot_label():
    assert node_facts(POOL_WORKER, labels={"a": "b"})["labels"] == {"a": "b"}
    assert node_facts({}, labels={"a": "b"}, preemptible=True)["labels"] == {"a": "b", **SPOT}
    assert node_facts(POOL_WORKER, labels={}, preemptible=False)["labels"] == {}


def test_the_labels_keep_their_order_pool_then_tag_then_spot():
    facts = node_facts({"toil.cluster/pool": "p", "toil.cluster/labels": "b=1,,a=2", "toil.cluster/preemptible": "true"})
    assert list(facts["labels"].items()) == [("toil.cluster/pool", "p"), ("b", "1"), ("a", "2"), *SPOT.items()]


def test_tag_key_names_every_fact_s_tag_from_the_tags_module():
    assert {fact: tag_key(fact) for fact in ("cluster", "node_type", "pool", "preemptible", "labels", "joined")} == {
        "cluster": tag_module.TAG_CLUSTER_NAME,
        "node_type": tag_module.TAG_NODE_TYPE,
        "pool": tag_module.POOL_TAG,
        "preemptible": tag_module.PREEMPTIBLE_TAG,
        "labels": tag_module.LABELS_TAG,
        "joined": tag_module.JOINED_TAG,
    }
    assert set(node_facts({})) == set(tag_module.NODE_FACT_TAGS)


@pytest.mark.parametrize(
    ("zone", "region", "expected"),
    [("us-west-2a", "", "us-west-2"), ("", "eu-west-1", "eu-west-1"), ("", "", ""), (None, None, ""), ("us-west-2a", "eu-west-1", "us-west-2")],
)
def test_zone_region(zone, region, expected):
    assert zone_region(zone, region) == expected


def test_zone_region_refuses_what_is_not_an_availability_zone_unless_told_not_to(monkeypatch):
    monkeypatch.setenv("TOIL_AWS_ZONE", "eu-west-1a")  # never read: playbooks default their zone to it themselves
    assert zone_region("") == ""
    assert zone_region("us-west-2", strict=False) == ""
    assert zone_region("us-west-2", "us-west-2", strict=False) == ""
    with pytest.raises(AnsibleFilterError, match="Can't extract a region from availability zone 'us-west-2'"):
        zone_region("us-west-2")


def test_worker_pools_for_the_scaler():
    assert worker_pools("c5.4xlarge/c5a.4xlarge:0.42,t3.large,m5.large", "4-0,2,0", scaler=True, node_storage="80") == [
        {"name": "c5-4xlarge-spot", "node_types": "c5.4xlarge/c5a.4xlarge:0.42", "min_size": 0, "max_size": 4, "node_storage": 80},
        {"name": "t3-large", "node_types": "t3.large", "min_size": 2, "max_size": 2, "node_storage": 80},
    ]
    assert worker_pools([{"name": "align", "node_types": "r5.2xlarge", "count": 3}], scaler=True) == [
        {"name": "align", "node_types": "r5.2xlarge", "min_size": 3, "max_size": 3}
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: node_facts({"toil.cluster/labels": "team"}), "'team' has no '='"),
        (lambda: node_facts(["clusterName"]), "must be a mapping"),
        (lambda: node_facts({}, labels="a=b"), "labels must be a mapping"),
        (lambda: tag_key("owner"), "'owner' is not a fact with a tag"),
        (lambda: worker_pools("t3.large", "1,2", scaler=True), "same length"),
    ],
)
def test_bad_input_is_a_filter_error(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()
