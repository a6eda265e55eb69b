# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Node types and worker counts (reference section 1, ``--nodeTypes`` and ``-w``)."""

from __future__ import annotations

import math
import re

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import (
    NodeType,
    WorkerPool,
    normalize_node_type,
    normalize_node_types,
    normalize_worker_pool,
    parse_node_type,
    parse_node_types,
    parse_worker_count,
    parse_worker_counts,
    worker_pools,
)

# Node-type strings that Toil and we both accept.
AGREED_NODE_TYPES = [
    None,
    "",
    "t2.large",
    "c5.4xlarge/c5a.4xlarge:0.42,t2.large",  # the reference's example
    "c5a.4xlarge/c5.4xlarge",
    "t2.large/t2.large",
    "t2.large:0.5,t2.large",
    "m5.large:1,m5.large:2",
    "t2.large:1e-3",
    "t2.large: 0.5",  # float() ignores blanks
    "t2.large:1_0",  # ... and reads underscores
    "u-6tb1.metal,mac2-m2.metal,c7gn.16xlarge,p4de.24xlarge",
]
# Node-type strings that Toil and we both refuse.
AGREED_BAD_NODE_TYPES = [
    "t2.large:0.5:0.6",
    "t2.large:",
    "t2.large:abc",
    "t2.large,",
    ",t2.large",
    ",",
    "t2.large//m5.large",
    "/t2.large",
    "t2.large/",
    ":0.5",
    "t2.large,,m5.large",
]
# Bids Toil accepts and we refuse: a bid is a positive, finite price.
BAD_BIDS = ["0", "0.0", "-1", "-0.5", "inf", "-inf", "nan", "Infinity"]
# Instance-type names Toil's parser accepts (check_valid_node_types refuses them later).
BAD_INSTANCE_TYPES = [" t2.large", "t2.large ", "T2.LARGE", "t2large", "t2.", ".large", "t2.large\n", "t2..large", "t2.large.x"]


def _types(parsed):
    return [(node_type.instance_types, node_type.spot_bid) for node_type in parsed]


# --- parse_node_types ------------------------------------------------------------------------


@pytest.mark.parametrize("specs", [None, ""])
def test_no_node_types(specs):
    assert parse_node_types(specs) == []


def test_parse_node_types_reference_example():
    parsed = parse_node_types("c5.4xlarge/c5a.4xlarge:0.42,t2.large")
    assert _types(parsed) == [(("c5.4xlarge", "c5a.4xlarge"), 0.42), (("t2.large",), None)]
    assert [node_type.preemptible for node_type in parsed] == [True, False]


@pytest.mark.parametrize(
    ("spec", "instance_types"),
    [
        ("c5a.4xlarge/c5.4xlarge", ("c5a.4xlarge", "c5.4xlarge")),  # written order kept
        ("b.x/a.x/c.x", ("b.x", "a.x", "c.x")),
        ("t2.large/t2.large", ("t2.large",)),  # duplicates dropped
        ("m5.large/t2.large/m5.large", ("m5.large", "t2.large")),
    ],
)
def test_instance_types_keep_their_order_without_duplicates(spec, instance_types):
    assert parse_node_type(spec).instance_types == instance_types


@pytest.mark.parametrize(("bid", "value"), [("0.42", 0.42), ("1", 1.0), ("1e-3", 0.001), (" 2.5 ", 2.5)])
def test_spot_bids(bid, value):
    assert parse_node_type(f"t2.large:{bid}").spot_bid == value


@pytest.mark.parametrize("instance_type", ["m5.large", "c7gn.16xlarge", "u-6tb1.metal", "mac2-m2.metal", "x2iedn.metal", "t4g.nano"])
def test_real_instance_type_names(instance_type):
    assert parse_node_type(instance_type).instance_types == (instance_type,)


@pytest.mark.parametrize("spec", ["t2.large:0.5:0.6", "a.b:1:2:3", "::"])
def test_more_than_one_bid(spec):
    with pytest.raises(ToilInputError, match=f'Could not parse node type "{spec}": multiple bids'):
        parse_node_types(spec)


@pytest.mark.parametrize(
    ("specs", "spec"),
    [
        ("t2.large,", ""),
        (",t2.large", ""),
        ("t2.large//m5.large", "t2.large//m5.large"),
        ("/t2.large", "/t2.large"),
        ("t2.large/", "t2.large/"),
        (":0.5", ":0.5"),
        ("t2.large,,m5.large", ""),
    ],
)
def test_empty_instance_type(specs, spec):
    with pytest.raises(ToilInputError, match=f'Could not parse node type "{spec}": empty instance type'):
        parse_node_types(specs)


@pytest.mark.parametrize("bid", ["", "abc", "0.5.1", "$1"])
def test_bid_that_is_not_a_number_message(bid):
    with pytest.raises(ToilInputError, match=re.escape(f"the spot bid '{bid}' is not a number")):
        parse_node_type(f"t2.large:{bid}")


@pytest.mark.parametrize("bid", BAD_BIDS)
def test_bid_must_be_positive_and_finite(bid):
    with pytest.raises(ToilInputError, match=f"the spot bid must be a positive number of dollars per hour, got '{bid}'"):
        parse_node_types(f"t2.large:{bid}")


@pytest.mark.parametrize("instance_type", BAD_INSTANCE_TYPES)
def test_malformed_instance_type(instance_type):
    with pytest.raises(ToilInputError, match=r"(?s)'.*' is not an EC2 instance type name \(like 'm5.large'\)"):
        parse_node_types(f"m5.large/{instance_type}:0.5")


@pytest.mark.parametrize("specs", [["t2.large"], 5, {"t2.large": 1}])
def test_parse_node_types_needs_a_string(specs):
    with pytest.raises(ToilInputError, match="Node types must be a string like 'c5.4xlarge:0.42,t3.large'"):
        parse_node_types(specs)


def test_parse_node_type_is_a_single_node_type():
    with pytest.raises(ToilInputError, match='Could not parse node type "a.b,c.d": a single node type was expected; use a list for several'):
        parse_node_type("a.b,c.d")
    with pytest.raises(ToilInputError, match="A node type must be a string like 'c5.4xlarge/c5a.4xlarge:0.42', not None"):
        parse_node_type(None)


@pytest.mark.parametrize("spec", ["t2.large", "c5.4xlarge/c5a.4xlarge:0.42", "m5.large:1e-05", "a.b/c.d:3"])
def test_spec_round_trips(spec):
    node_type = parse_node_type(spec)
    assert parse_node_type(node_type.spec) == node_type
    assert node_type.as_dict() == {
        "instance_types": list(node_type.instance_types),
        "spot_bid": node_type.spot_bid,
        "preemptible": node_type.spot_bid is not None,
        "spec": node_type.spec,
    }


# --- normalize_node_type(s): the forms a playbook may write ----------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "c5.4xlarge/c5a.4xlarge:0.42",
        {"instance_types": ["c5.4xlarge", "c5a.4xlarge"], "spot_bid": 0.42},
        {"instance_types": "c5.4xlarge/c5a.4xlarge", "spot_bid": "0.42"},
        {"instance_types": ("c5.4xlarge", "c5a.4xlarge", "c5.4xlarge"), "spot_bid": 0.42},
        NodeType(("c5.4xlarge", "c5a.4xlarge"), 0.42),
    ],
)
def test_normalize_node_type_forms_agree(value):
    assert normalize_node_type(value) == NodeType(("c5.4xlarge", "c5a.4xlarge"), 0.42)


@pytest.mark.parametrize(
    "value", [["t2.large", "m5.large"], {"instance_types": ["t2.large", "m5.large"]}, {"instance_types": ["t2.large", "m5.large"], "spot_bid": None}]
)
def test_normalize_node_type_without_bid_is_on_demand(value):
    assert normalize_node_type(value) == NodeType(("t2.large", "m5.large"), None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "A node type must be a string, a list of instance types or a mapping, not 5"),
        (None, "A node type must be a string, a list of instance types or a mapping, not None"),
        ({"instance_types": ["t2.large"], "bid": 1}, r"Unknown key\(s\) bid in node type .*: expected instance_types \(or requirements\) and spot_bid"),
        ({"types": ["t2.large"], "count": 1}, r"Unknown key\(s\) count, types in node type"),
        ({}, "needs a non-empty list of instance_types"),
        ({"instance_types": []}, "needs a non-empty list of instance_types"),
        ([], "needs a non-empty list of instance_types"),
        ({"instance_types": 5}, "needs a non-empty list of instance_types"),
        ({"instance_types": ["t2.large", 5]}, "'5' is not an EC2 instance type name"),
        ({"instance_types": ["T2.large"]}, "'T2.large' is not an EC2 instance type name"),
        ({"instance_types": "t2.large//m5.large"}, "'' is not an EC2 instance type name"),
        ({"instance_types": ["t2.large"], "spot_bid": True}, 'Could not parse node type "t2.large": the spot bid must be a number, not True'),
        ({"instance_types": ["t2.large"], "spot_bid": "x"}, "the spot bid 'x' is not a number"),
        ({"instance_types": ["t2.large"], "spot_bid": [1]}, r"the spot bid '\[1\]' is not a number"),
        ({"instance_types": ["t2.large"], "spot_bid": 0}, "must be a positive number of dollars per hour, got '0'"),
        ({"instance_types": ["t2.large"], "spot_bid": float("inf")}, "must be a positive number of dollars per hour, got 'inf'"),
        ("t2.large:0", "must be a positive number"),
    ],
)
def test_normalize_node_type_errors(value, message):
    with pytest.raises(ToilInputError, match=message):
        normalize_node_type(value)


def test_normalize_node_types():
    assert normalize_node_types(None) == []
    assert normalize_node_types("") == []
    assert normalize_node_types([]) == []
    assert normalize_node_types("t2.large,m5.large:1") == [NodeType(("t2.large",)), NodeType(("m5.large",), 1.0)]
    assert normalize_node_types(["t2.large", ["m5.large"], {"instance_types": ["c5.large"], "spot_bid": 2}]) == [
        NodeType(("t2.large",)),
        NodeType(("m5.large",)),
        NodeType(("c5.large",), 2.0),
    ]
    with pytest.raises(ToilInputError, match="Node types must be a string or a list, not"):
        normalize_node_types({"instance_types": ["t2.large"]})


# --- worker counts (-w) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("3", (3, 3, True)),
        (3, (3, 3, True)),
        ("0", (0, 0, True)),
        (0, (0, 0, True)),
        (" 2 ", (2, 2, True)),  # int(), as Toil: blanks are fine
        ("+2", (2, 2, True)),
        ("1-3", (1, 3, False)),
        ("3-1", (1, 3, False)),  # reversed ends are swapped, as Toil does
        ("0-0", (0, 0, False)),
        ("0-5", (0, 5, False)),
        (" 1 - 3 ", (1, 3, False)),
        ("4-4", (4, 4, False)),
    ],
)
def test_parse_worker_count(spec, parsed):
    assert parse_worker_count(spec) == parsed


@pytest.mark.parametrize("spec", ["1-2-3", "1--2", "--", "0-1-"])
def test_a_range_has_two_ends(spec):
    with pytest.raises(ToilInputError, match=f"^Unacceptable range: {spec}$"):
        parse_worker_count(spec)


@pytest.mark.parametrize("spec", ["", "x", "1.5", "-1", "1-", "-", "1-x", "one", "1e2", "3 4"])
def test_worker_count_that_is_not_a_number(spec):
    with pytest.raises(ToilInputError, match=rf"Worker count '{spec}' is not a number of nodes \('N'\) or a range \('min-max'\)"):
        parse_worker_count(spec)


def test_negative_worker_count():
    with pytest.raises(ToilInputError, match="Worker count '-2' is negative"):
        parse_worker_count(-2)


@pytest.mark.parametrize("spec", [True, False, None, 1.0, [1], {"min": 1}])
def test_worker_count_type(spec):
    with pytest.raises(ToilInputError, match=r"Worker count .* must be 'N' or 'min-max'"):
        parse_worker_count(spec)


@pytest.mark.parametrize(
    ("specs", "parsed"),
    [
        (None, []),
        ("", []),
        ([], []),
        (2, [(2, 2, True)]),
        ("0-2,5,1-3", [(0, 2, False), (5, 5, True), (1, 3, False)]),
        (["3-1", 0, "4"], [(1, 3, False), (0, 0, True), (4, 4, True)]),
    ],
)
def test_parse_worker_counts(specs, parsed):
    assert parse_worker_counts(specs) == parsed


def test_parse_worker_counts_errors():
    with pytest.raises(ToilInputError, match="Worker count '' is not a number"):
        parse_worker_counts("1,,2")
    with pytest.raises(ToilInputError, match="Unacceptable range: 1-2-3"):
        parse_worker_counts("2,1-2-3")
    for specs in ({"a": 1}, True, 1.5):
        with pytest.raises(ToilInputError, match="Worker counts must be a string like '0-4,2' or a list, not"):
            parse_worker_counts(specs)


# --- worker_pools: --nodeTypes paired with -w ------------------------------------------------


def _pools(pools):
    return [(pool.node_type.instance_types, pool.node_type.spot_bid, pool.min_size, pool.max_size, pool.static) for pool in pools]


def test_worker_pools_pair_node_types_with_counts():
    pools = worker_pools("c5.4xlarge/c5a.4xlarge:0.42,t2.large,m5.large", "3-1,2,0-4")
    assert _pools(pools) == [
        (("c5.4xlarge", "c5a.4xlarge"), 0.42, 1, 3, False),
        (("t2.large",), None, 2, 2, True),
        (("m5.large",), None, 0, 4, False),
    ]
    assert [pool.name for pool in pools] == ["c5-4xlarge-spot", "t2-large", "m5-large"]


@pytest.mark.parametrize("counts", ["0,1", "0-0,1", " 0,1", "0 - 0,1"])
def test_empty_pools_are_skipped(counts):
    assert _pools(worker_pools("t2.large,m5.large", counts)) == [(("m5.large",), None, 1, 1, True)]


def test_no_pools():
    assert worker_pools(None, None) == []
    assert worker_pools("", "") == []
    assert worker_pools("t2.large", "0") == []


@pytest.mark.parametrize(("node_types", "counts"), [("t2.large", None), ("t2.large", ""), (None, "1"), ("", "0-3"), ([], [1])])
def test_node_types_and_worker_counts_go_together(node_types, counts):
    with pytest.raises(ToilInputError, match="Node types require worker counts, and vice versa"):
        worker_pools(node_types, counts)


@pytest.mark.parametrize(
    ("node_types", "counts", "numbers"),
    [("t2.large,m5.large", "1", "1 worker counts for 2 node types"), ("t2.large", "1,0", "2 worker counts for 1 node types")],
)
def test_one_worker_count_per_node_type(node_types, counts, numbers):
    with pytest.raises(ToilInputError, match=rf"List of worker count ranges must be the same length as the list of node types \({numbers}\)"):
        worker_pools(node_types, counts)


def test_pools_need_distinct_names():
    with pytest.raises(ToilInputError, match="Two worker pools would both be named t2-large: give each node type a distinct first instance type"):
        worker_pools("t2.large,t2.large/m5.large", "1,1-3")
    # spot and on-demand pools of one type are told apart, and skipped pools do not count
    assert [pool.name for pool in worker_pools("t2.large,t2.large:0.5", "1,1")] == ["t2-large", "t2-large-spot"]
    assert len(worker_pools("t2.large,t2.large", "1,0")) == 1


def test_pool_as_dict():
    static, ranged = worker_pools("t2.large,m5.large:0.5", "2,0-3")
    assert static.as_dict() == {
        "name": "t2-large",
        "node_type": NodeType(("t2.large",)).as_dict(),
        "static": True,
        "count": 2,
        "summary": "t2.large x 2 (on-demand, static)",
    }
    assert ranged.as_dict() == {
        "name": "m5-large-spot",
        "node_type": NodeType(("m5.large",), 0.5).as_dict(),
        "static": False,
        "min_size": 0,
        "max_size": 3,
        "summary": "m5.large:0.5 x 0-3 (spot, ranged)",
    }


# --- normalize_worker_pool: a pool as a mapping ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "pool"),
    [
        ({"node_types": "t2.large", "count": 2}, WorkerPool(NodeType(("t2.large",)), 2, 2, True)),
        ({"node_types": "t2.large", "count": "2"}, WorkerPool(NodeType(("t2.large",)), 2, 2, True)),
        ({"node_types": "t2.large", "count": 0}, WorkerPool(NodeType(("t2.large",)), 0, 0, True)),
        ({"node_types": ["c5.large", "c5a.large"], "min_size": 0, "max_size": 4}, WorkerPool(NodeType(("c5.large", "c5a.large")), 0, 4, False)),
        ({"node_types": "m5.large:0.5", "min_size": 2, "max_size": 2, "name": "p1"}, WorkerPool(NodeType(("m5.large",), 0.5), 2, 2, False, "p1")),
        ({"node_types": "t2.large", "count": 1, "name": "a" * 63}, WorkerPool(NodeType(("t2.large",)), 1, 1, True, "a" * 63)),
    ],
)
def test_normalize_worker_pool(value, pool):
    assert normalize_worker_pool(value) == pool


def test_a_given_pool_name_is_used():
    assert normalize_worker_pool({"node_types": "t2.large", "count": 1, "name": "web"}).name == "web"
    assert normalize_worker_pool({"node_types": "t2.large", "count": 1}).name == "t2-large"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("t2.large", "A worker pool must be a mapping, not 't2.large'"),
        ({"node_types": "t2.large", "count": 1, "size": 2}, r"Unknown key\(s\) size in worker pool"),
        ({"count": 1}, "needs node_types"),
        ({"node_types": "t2.large"}, r"Worker pool t2.large needs either count \(static\) or min_size and max_size \(ranged\)"),
        ({"node_types": "t2.large", "count": 1, "min_size": 0, "max_size": 2}, "needs either count"),
        ({"node_types": "t2.large", "min_size": 1}, "Worker pool t2.large needs both min_size and max_size"),
        ({"node_types": "t2.large", "max_size": 1}, "needs both min_size and max_size"),
        ({"node_types": "t2.large", "min_size": 3, "max_size": 1}, "Worker pool t2.large: min_size 3 is larger than max_size 1"),
        ({"node_types": "t2.large", "count": "1-3"}, "Worker pool t2.large: count must be a number; use min_size and max_size for a range"),
        ({"node_types": "t2.large", "min_size": "0-5", "max_size": 9}, "Worker pool t2.large: min_size and max_size must each be a number, not a range"),
        ({"node_types": "t2.large", "min_size": 0, "max_size": "0-5"}, "min_size and max_size must each be a number, not a range"),
        ({"node_types": "t2.large", "count": -1}, "Worker count '-1' is negative"),
        ({"node_types": "t2.large", "min_size": "x", "max_size": 1}, "Worker count 'x' is not a number"),
        ({"node_types": "t2.large:0", "count": 1}, "must be a positive number"),
        ({"node_types": "t2.large", "count": 1, "name": "Web_1"}, r"Worker pool name 'Web_1' must be lowercase letters, digits and '-' \(at most 63\)"),
        ({"node_types": "t2.large", "count": 1, "name": "a" * 64}, "must be lowercase letters, digits and '-'"),
        ({"node_types": "t2.large", "count": 1, "name": "-web"}, "must be lowercase letters, digits and '-'"),
        ({"node_types": "t2.large", "count": 1, "name": "web\n"}, "must be lowercase letters, digits and '-'"),
        ({"node_types": "t2.large", "count": 1, "name": 5}, "Worker pool name 5 must be"),
    ],
)
def test_normalize_worker_pool_errors(value, message):
    with pytest.raises(ToilInputError, match=message):
        normalize_worker_pool(value)


# --- differential: the real Toil -------------------------------------------------------------


def _as_toil(parsed):
    """Ours as Toil answers: the instance types as a (sorted) set, and the bid."""
    return [{"instance_types": sorted(node_type.instance_types), "bid": node_type.spot_bid} for node_type in parsed]


@pytest.mark.toil("parse_node_types", param="specs")
@pytest.mark.parametrize("specs", AGREED_NODE_TYPES)
def test_node_types_agree_with_toil(specs, toil):
    assert _as_toil(parse_node_types(specs)) == toil("parse_node_types", specs)["value"]


@pytest.mark.toil("parse_node_types", param="specs")
@pytest.mark.parametrize("specs", AGREED_BAD_NODE_TYPES)
def test_node_types_toil_refuses_are_refused(specs, toil):
    assert toil("parse_node_types", specs)["error"] == "ValueError"
    with pytest.raises(ToilInputError, match='Could not parse node type "[^"]*": '):
        parse_node_types(specs)


@pytest.mark.toil("parse_node_types", arg="c5a.4xlarge/c5.4xlarge/m5.large")
def test_difference_instance_types_keep_their_order(toil):
    """Deliberate difference: Toil keeps a node type's instance types in a set; ours keeps
    the order written, so a pool tries the first one first. As sets they agree.
    """
    theirs = toil("parse_node_types", "c5a.4xlarge/c5.4xlarge/m5.large")["value"]
    (ours,) = parse_node_types("c5a.4xlarge/c5.4xlarge/m5.large")
    assert set(ours.instance_types) == set(theirs[0]["instance_types"])
    assert ours.instance_types == ("c5a.4xlarge", "c5.4xlarge", "m5.large")


@pytest.mark.toil("parse_node_types", param="spec")
@pytest.mark.toil("check_valid_node_types", param="check")
@pytest.mark.parametrize(
    ("spec", "check"),
    [(f"t2.large:{bid}", {"spec": f"t2.large:{bid}", "zone": "us-west-2a"}) for bid in BAD_BIDS],
)
def test_difference_bids_must_be_positive_and_finite(spec, check, toil):
    """Deliberate difference: Toil takes any float as a bid, and launch-cluster's checks let
    ``0``, ``-1``, ``inf`` and ``nan`` through to the spot request; ours refuses them.
    """
    (theirs,) = toil("parse_node_types", spec)["value"]
    bid = theirs["bid"]
    assert math.isnan(bid) or bid <= 0 or math.isinf(bid)
    assert toil("check_valid_node_types", check) == {"value": True}
    with pytest.raises(ToilInputError, match="the spot bid must be a positive number"):
        parse_node_types(spec)


@pytest.mark.toil("parse_node_types", param="spec")
@pytest.mark.toil("check_valid_node_types", param="check")
@pytest.mark.parametrize(
    ("spec", "check"),
    [(instance_type, {"spec": instance_type, "zone": "us-west-2a"}) for instance_type in BAD_INSTANCE_TYPES],
)
def test_difference_malformed_instance_types_are_refused_while_parsing(spec, check, toil):
    """Deliberate difference: Toil's parser accepts these and only ``check_valid_node_types``
    refuses them afterwards; ours refuses them at once.
    """
    assert toil("parse_node_types", spec)["value"] == [{"instance_types": [spec], "bid": None}]
    assert toil("check_valid_node_types", check)["error"] == "RuntimeError"
    with pytest.raises(ToilInputError, match="is not an EC2 instance type name"):
        parse_node_types(spec)


def _launch(node_types=None, workers=None):
    argv = ["c", "--leaderNodeType", "t2.medium", "--keyPairName", "k", "-z", "us-west-2a", "-T", "kubernetes"]
    if node_types is not None:
        argv += ["--nodeTypes", node_types]
    if workers is not None:
        argv += ["-w", workers]
    return {"argv": argv, "env": {}}


AGREED_LAUNCHES = [
    _launch(),
    _launch("t2.large", "2"),
    _launch("t2.large", " 2"),
    _launch("t2.large:0.5,m5.large", "3-1,0"),
    _launch("t2.large,m5.large", "0-0,1-4"),
    _launch("t2.large,m5.large/m5a.large:0.25", "0-2,4-4"),
    _launch("c5.4xlarge/c5a.4xlarge:0.42,t2.large,m5.large", "5-2,3,0"),
    _launch("t2.large", "0"),
]
BAD_LAUNCHES = [
    _launch("t2.large", "1-2-3"),
    _launch("t2.large,m5.large", "1"),
    _launch("t2.large", "1,2"),
    _launch("t2.large"),
    _launch(workers="2"),
    _launch("t2.large", "x"),
    _launch("t2.large", "1.5"),
    _launch("t2.large", "-1"),
    _launch("t2.large", "1-"),
    _launch("t2.large,m5.large", "1,"),
]


def _our_pools(launch):
    argv = launch["argv"]
    node_types = argv[argv.index("--nodeTypes") + 1] if "--nodeTypes" in argv else None
    workers = argv[argv.index("-w") + 1] if "-w" in argv else None
    return worker_pools(node_types, workers)


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize("launch", AGREED_LAUNCHES)
def test_worker_pools_agree_with_launch_cluster(launch, toil):
    """Toil's ``-w`` loop is inline in launch-cluster's main: run the real one, recorded."""
    theirs = toil("launch_cluster", launch)["value"]["pools"]
    ours = [
        {
            "instance_types": sorted(pool.node_type.instance_types),
            "bid": pool.node_type.spot_bid,
            "min": pool.min_size,
            "max": pool.max_size,
            "static": pool.static,
        }
        for pool in _our_pools(launch)
    ]
    assert ours == theirs


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize("launch", BAD_LAUNCHES)
def test_worker_counts_launch_cluster_refuses_are_refused(launch, toil):
    assert toil("launch_cluster", launch)["error"] in ("RuntimeError", "ValueError")
    with pytest.raises(ToilInputError):
        _our_pools(launch)
