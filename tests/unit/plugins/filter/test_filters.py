"""The filter plugins: Toil's CLI conventions for playbooks, with AnsibleFilterError on bad input."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.filter.cluster_names import FilterModule as ClusterNamesFilters
from ansible_collections.toil.cluster.plugins.filter.cluster_tags import FilterModule as ClusterTagsFilters
from ansible_collections.toil.cluster.plugins.filter.node_types import FilterModule as NodeTypesFilters
from ansible_collections.toil.cluster.plugins.filter.worker_pools import FilterModule as WorkerPoolsFilters

node_types = NodeTypesFilters().filters()["node_types"]
worker_pools = WorkerPoolsFilters().filters()["worker_pools"]
cluster_names = ClusterNamesFilters().filters()["cluster_names"]
cluster_tags = ClusterTagsFilters().filters()["cluster_tags"]


def test_node_types_from_toil_syntax_and_structured_form_agree():
    from_string = node_types("c5.4xlarge/c5a.4xlarge:0.42,t3.large")
    from_structure = node_types([{"instance_types": ["c5.4xlarge", "c5a.4xlarge"], "spot_bid": 0.42}, ["t3.large"]])
    assert from_string == from_structure
    assert from_string[0] == {"instance_types": ["c5.4xlarge", "c5a.4xlarge"], "spot_bid": 0.42, "preemptible": True, "spec": "c5.4xlarge/c5a.4xlarge:0.42"}
    assert from_string[1]["preemptible"] is False


def test_worker_pools_pair_and_skip_zero():
    pools = worker_pools("m5.large,t3.large:0.1,c5.large", "3-1,0,2")
    assert [(p["name"], p["static"]) for p in pools] == [("m5-large", False), ("c5-large", True)]
    assert (pools[0]["min_size"], pools[0]["max_size"]) == (1, 3)
    assert pools[1]["count"] == 2


def test_worker_pools_structured():
    pools = worker_pools([{"name": "align", "node_types": "r5.2xlarge:0.2", "min_size": 0, "max_size": 10}])
    assert pools[0]["name"] == "align"
    assert pools[0]["node_type"]["spot_bid"] == 0.2
    assert pools[0]["summary"] == "r5.2xlarge:0.2 x 0-10 (spot, ranged)"


def test_cluster_names():
    assert cluster_names("my-cluster")["iam_role"] == "my_cluster_toil"


def test_cluster_tags_leader_and_environment():
    tags = cluster_tags("c1", node_type="leader", key_pair_name="key", toil_owner_tag="lab", toil_aws_tags='{"Project": "x"}')
    assert tags == {
        "Name": "c1",
        "Owner": "lab",
        "clusterName": "c1",
        "Project": "x",
        "kubernetes.io/cluster/c1": "",
        "ToilNodeType": "leader",
        "sshKeyName": "key",
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: node_types("t3.large:"), "not a number"),
        (lambda: worker_pools("t3.large", "1,2"), "same length"),
        (lambda: worker_pools("t3.large", None), "require worker counts"),
        (lambda: cluster_names("My_Cluster"), "lowercase"),
        (lambda: cluster_tags("c1", toil_aws_tags="[1]"), "must be a JSON object"),
        (lambda: cluster_tags("c1", node_type="leader"), "key pair name"),
    ],
)
def test_bad_input_is_a_filter_error(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()
