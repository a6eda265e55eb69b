"""``module_defaults: group/toil.cluster.toil`` (meta/runtime.yml) in a real playbook run against the endpoint.

The run's environment points AWS at a closed local port and at another region, so a module reaches the endpoint
only if the group's ``endpoint_url`` and ``region`` reached it: this collection's modules, and amazon.aws's through
the group's ``extend_group: [amazon.aws.aws]``.
"""

from __future__ import annotations

from harness.toil_shapes import make_toil_cluster

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_group_defaults_reach_our_modules_and_amazon_aws_ones(aws, run_playbook, key_pair):
    make_toil_cluster(aws, "tc-defaults", workers=0)
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/toil.cluster.toil": {"endpoint_url": aws.url, "region": aws.region}},
        "tasks": [
            {"name": "ours", "toil.cluster.toil_cluster_info": {"name": "tc-defaults"}},
            {"name": "amazon.aws's", "amazon.aws.ec2_key_info": {"names": [key_pair]}},
        ],
    }
    env = {"AWS_ENDPOINT_URL": NOWHERE, "AWS_URL": NOWHERE, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    result = run_playbook(play, env=env)
    ours = result.task("ours")
    assert ours["region"] == aws.region
    assert [(c["name"], c["node_count"]) for c in ours["clusters"]] == [("tc-defaults", 1)]
    assert [k["key_name"] for k in result.task("amazon.aws's")["keypairs"]] == [key_pair]
