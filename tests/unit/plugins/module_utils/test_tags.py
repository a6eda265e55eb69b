# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Tags and owner (reference section 1, ``--owner`` and ``-t``; section 2, "Tags")."""

from __future__ import annotations

import json

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.tags import (
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    boto3_tag_list,
    cluster_tags,
    env_tags,
    membership_tags,
    node_tags,
    parse_tag_args,
    resolve_owner,
    tag_dict,
    validate_tags,
)

CLUSTER = "my-cluster"
KEY = "my-key"
K8S_TAG = "kubernetes.io/cluster/my-cluster"

# --- parse_tag_args: Toil's create_tags_dict -------------------------------------------------

TAG_ARGS = [
    [],
    ["Project=genomics"],
    ["a=1", "b=2"],
    ["a=1", "a=2"],  # the last one wins
    ["k="],  # empty value
    ["=v"],  # empty key: parsed here, refused by validate_tags
    ["a b=c d"],
    ["k=ü"],
]
BAD_TAG_ARGS = [["novalue"], ["a=b=c"], ["ok=1", "=="], [""]]


@pytest.mark.parametrize(
    ("tag_args", "expected"),
    [
        (None, {}),
        ([], {}),
        (["Project=genomics", "Team=x"], {"Project": "genomics", "Team": "x"}),
        (["a=1", "a=2"], {"a": "2"}),
        (["k="], {"k": ""}),
        (["=v"], {"": "v"}),
    ],
)
def test_parse_tag_args(tag_args, expected):
    assert parse_tag_args(tag_args) == expected


@pytest.mark.parametrize("tag_args", [*BAD_TAG_ARGS, [5], [None]])
def test_parse_tag_args_needs_exactly_one_equals_sign(tag_args):
    with pytest.raises(ToilInputError, match="must contain exactly one '=', like 'Project=genomics'"):
        parse_tag_args(tag_args)


# --- env_tags: Toil's build_tag_dict_from_env ------------------------------------------------

ENVIRONMENTS = [
    {},
    {"TOIL_OWNER_TAG": "bob"},
    {"TOIL_OWNER_TAG": ""},
    {"TOIL_AWS_TAGS": ""},
    {"TOIL_AWS_TAGS": "{}"},
    {"TOIL_AWS_TAGS": '{"Project": "x", "Team": "y"}'},
    {"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Project": "x"}'},
    {"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Owner": "carol"}'},  # the JSON wins
    {"TOIL_AWS_TAGS": ' {"a": "b"} '},
    {"UNRELATED": "1", "OWNER": "x"},
]
BAD_ENVIRONMENTS = [
    {"TOIL_AWS_TAGS": "not json"},
    {"TOIL_AWS_TAGS": "[1, 2]"},
    {"TOIL_AWS_TAGS": '"a string"'},
    {"TOIL_AWS_TAGS": "3"},
    {"TOIL_AWS_TAGS": "null"},
    {"TOIL_AWS_TAGS": "{'single': 'quotes'}"},
    {"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": "{"},
]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {}),
        ({"TOIL_OWNER_TAG": "bob"}, {"Owner": "bob"}),
        ({"TOIL_OWNER_TAG": ""}, {}),
        ({"TOIL_AWS_TAGS": '{"Project": "x"}'}, {"Project": "x"}),
        ({"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Project": "x"}'}, {"Owner": "bob", "Project": "x"}),
        ({"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Owner": "carol"}'}, {"Owner": "carol"}),
        ({"TOIL_AWS_TAGS": '{"n": 3, "f": 0.5, "t": true, "no": false}'}, {"n": "3", "f": "0.5", "t": "true", "no": "false"}),
    ],
)
def test_env_tags(environ, expected):
    assert env_tags(environ) == expected


def test_env_tags_leave_out_toil_owner_tag_when_the_owner_is_explicit():
    environ = {"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Project": "x"}'}
    assert env_tags(environ, explicit_owner="alice") == {"Project": "x"}
    # ... but an Owner in TOIL_AWS_TAGS is a user tag like any other
    assert env_tags({"TOIL_AWS_TAGS": '{"Owner": "carol"}'}, explicit_owner="alice") == {"Owner": "carol"}


@pytest.mark.parametrize("environ", BAD_ENVIRONMENTS)
def test_env_tags_need_a_json_object(environ):
    with pytest.raises(ToilInputError, match=r'TOIL_AWS_TAGS must be a JSON object like \{"key": "value", \.\.\.\}, got: '):
        env_tags(environ)


@pytest.mark.parametrize(("value", "kind"), [("null", "NoneType"), ("[1]", "list"), ('{"a": 1}', "dict")])
def test_env_tag_values_must_be_strings_or_numbers(value, kind):
    with pytest.raises(ToilInputError, match=f"TOIL_AWS_TAGS: the value of tag 'x' must be a string or a number, not {kind}"):
        env_tags({"TOIL_AWS_TAGS": f'{{"x": {value}}}'})


def test_env_tags_read_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("TOIL_OWNER_TAG", "bob")
    monkeypatch.setenv("TOIL_AWS_TAGS", '{"Project": "x"}')
    assert env_tags() == {"Owner": "bob", "Project": "x"}


# --- resolve_owner ---------------------------------------------------------------------------

OWNER_CASES = [
    # (--owner, environment, --keyPairName, expected)
    ("alice", {"TOIL_OWNER_TAG": "bob"}, KEY, "alice"),
    (None, {"TOIL_OWNER_TAG": "bob"}, KEY, "bob"),
    (None, {}, KEY, KEY),
    (None, {"TOIL_OWNER_TAG": ""}, KEY, KEY),
    ("", {}, KEY, KEY),
    (None, {}, None, "toil"),
    (None, {}, "", "toil"),
]


@pytest.mark.parametrize(("owner", "environ", "key_pair_name", "expected"), OWNER_CASES)
def test_resolve_owner_precedence(owner, environ, key_pair_name, expected):
    assert resolve_owner(owner, key_pair_name, environ) == expected


def test_resolve_owner_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("TOIL_OWNER_TAG", "bob")
    assert resolve_owner(None, KEY) == "bob"
    monkeypatch.delenv("TOIL_OWNER_TAG")
    assert resolve_owner(None, KEY) == KEY


# --- validate_tags ---------------------------------------------------------------------------


def test_validate_tags_returns_strings():
    assert validate_tags(None) == {}
    assert validate_tags({"a": "b", "n": 3, "f": 1.5, "t": True, "none": None}) == {"a": "b", "n": "3", "f": "1.5", "t": "true", "none": ""}


def test_validate_tags_accepts_the_aws_limits_exactly():
    tags = {"k" * MAX_TAG_KEY: "v" * MAX_TAG_VALUE}
    assert validate_tags(tags) == tags


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["a=b"], "my tags must be a mapping of tag keys to values"),
        ("a=b", "my tags must be a mapping"),
        ({"": "v"}, "my tags: tag keys must be non-empty strings, got ''"),
        ({1: "v"}, "my tags: tag keys must be non-empty strings, got 1"),
        ({"aws:cloudformation:x": "v"}, "my tags: tag key 'aws:cloudformation:x' uses the prefix 'aws:', which AWS reserves"),
        ({"AWS:x": "v"}, "uses the prefix 'aws:'"),
        ({"k" * (MAX_TAG_KEY + 1): "v"}, "my tags: tag key 'k{40}...' is longer than 128 characters"),
        ({"k": "v" * (MAX_TAG_VALUE + 1)}, "my tags: the value of tag 'k' is longer than 256 characters"),
        ({"k": ["v"]}, "my tags: the value of tag 'k' must be a string or a number, not list"),
        ({"k": {"a": 1}}, "must be a string or a number, not dict"),
    ],
)
def test_validate_tags_refuses_what_aws_refuses(tags, message):
    with pytest.raises(ToilInputError, match=message):
        validate_tags(tags, "my tags")


# --- cluster_tags and node_tags --------------------------------------------------------------


def test_cluster_tags_base_set():
    assert cluster_tags(CLUSTER, key_pair_name=KEY, environ={}, kubernetes=False) == {"Name": CLUSTER, "Owner": KEY, "clusterName": CLUSTER}
    assert cluster_tags(CLUSTER, owner="alice", environ={}) == {"Name": CLUSTER, "Owner": "alice", "clusterName": CLUSTER, K8S_TAG: ""}


def test_user_tags_come_after_the_base_and_may_set_owner():
    tags = cluster_tags(CLUSTER, owner="alice", tags={"Project": "x", "Owner": "team"}, environ={}, kubernetes=False)
    assert tags == {"Name": CLUSTER, "Owner": "team", "clusterName": CLUSTER, "Project": "x"}
    assert list(tags)[:3] == ["Name", "Owner", "clusterName"]


def test_tag_args_win_over_the_tags_mapping():
    tags = cluster_tags(CLUSTER, tags={"a": "1", "b": "1"}, tag_args=["a=2"], environ={}, kubernetes=False)
    assert (tags["a"], tags["b"]) == ("2", "1")


@pytest.mark.parametrize("user", [{"tags": {"Project": "x"}}, {"tag_args": ["Project=x"]}])
def test_environment_tags_are_ignored_when_user_tags_are_given(user):
    environ = {"TOIL_AWS_TAGS": '{"FromEnv": "1"}', "TOIL_OWNER_TAG": "bob"}
    tags = cluster_tags(CLUSTER, key_pair_name=KEY, environ=environ, kubernetes=False, **user)
    assert "FromEnv" not in tags
    assert tags["Project"] == "x"
    assert tags["Owner"] == "bob"  # the owner still comes from TOIL_OWNER_TAG


def test_environment_tags_are_used_when_there_are_no_user_tags():
    environ = {"TOIL_AWS_TAGS": '{"FromEnv": "1"}', "TOIL_OWNER_TAG": "bob"}
    assert cluster_tags(CLUSTER, key_pair_name=KEY, environ=environ, kubernetes=False) == {
        "Name": CLUSTER,
        "Owner": "bob",
        "clusterName": CLUSTER,
        "FromEnv": "1",
    }


def test_cluster_tags_refuse_bad_environment_tags():
    with pytest.raises(ToilInputError, match="TOIL_AWS_TAGS must be a JSON object"):
        cluster_tags(CLUSTER, environ={"TOIL_AWS_TAGS": "[]"})
    with pytest.raises(ToilInputError, match="TOIL_AWS_TAGS: tag key 'aws:x' uses the prefix 'aws:'"):
        cluster_tags(CLUSTER, environ={"TOIL_AWS_TAGS": '{"aws:x": "1"}'})


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"tags": {"": "v"}}, "tags: tag keys must be non-empty strings"),
        ({"tag_args": ["=v"]}, "tag arguments: tag keys must be non-empty strings"),
        ({"tag_args": ["aws:x=1"]}, "tag arguments: tag key 'aws:x' uses the prefix 'aws:'"),
        ({"tag_args": ["novalue"]}, "must contain exactly one '='"),
        ({"tags": "Project=x"}, "tags must be a mapping"),
    ],
)
def test_cluster_tags_validate_user_tags(user, message):
    with pytest.raises(ToilInputError, match=message):
        cluster_tags(CLUSTER, environ={}, **user)


@pytest.mark.parametrize(
    "tag",
    [
        "Name=other",
        "clusterName=other",
        "ToilNodeType=worker",
        "ToilNodeType=leader",
        "sshKeyName=other-key",
        f"{K8S_TAG}=owned",
    ],
)
@pytest.mark.parametrize("source", ["tag_args", "tags", "environ"])
def test_membership_tags_cannot_be_overridden(tag, source):
    key, value = tag.split("=")
    user = {
        "tag_args": {"tag_args": [tag], "environ": {}},
        "tags": {"tags": {key: value}, "environ": {}},
        "environ": {"environ": {"TOIL_AWS_TAGS": json.dumps({key: value})}},
    }[source]
    with pytest.raises(
        ToilInputError, match=f"Tag '{key}' is set by toil.cluster to mark cluster membership and cannot be overridden \\(got '{key}={value}'\\)"
    ):
        cluster_tags(CLUSTER, key_pair_name=KEY, **user)


@pytest.mark.parametrize("tag", ["Name=my-cluster", "clusterName=my-cluster", f"{K8S_TAG}="])
def test_membership_tags_may_be_repeated_with_their_own_value(tag):
    key, value = tag.split("=")
    assert cluster_tags(CLUSTER, tag_args=[tag], environ={})[key] == value


@pytest.mark.parametrize("kubernetes", [True, False])
def test_tags_of_another_kubernetes_cluster_are_refused(kubernetes):
    with pytest.raises(ToilInputError, match="Tag 'kubernetes.io/cluster/other' would put the nodes in another Kubernetes cluster"):
        cluster_tags(CLUSTER, tag_args=["kubernetes.io/cluster/other=owned"], environ={}, kubernetes=kubernetes)


def test_membership_tags():
    assert membership_tags(CLUSTER) == {"Name": CLUSTER, "clusterName": CLUSTER, K8S_TAG: ""}
    assert membership_tags(CLUSTER, kubernetes=False) == {"Name": CLUSTER, "clusterName": CLUSTER}


@pytest.mark.parametrize("kubernetes", [True, False])
def test_cluster_tags_leave_room_for_the_leaders_own_tags(kubernetes):
    base = len(membership_tags(CLUSTER, kubernetes)) + 1  # + Owner
    fits = {f"t{i}": "v" for i in range(MAX_TAGS - 2 - base)}
    leader = node_tags(cluster_tags(CLUSTER, tags=fits, environ={}, kubernetes=kubernetes), "leader", KEY)
    assert len(leader) == MAX_TAGS
    with pytest.raises(ToilInputError, match=f"Too many tags: {MAX_TAGS - 1} cluster tags leave no room under AWS's 50 per resource"):
        cluster_tags(CLUSTER, tags={**fits, "one-more": "v"}, environ={}, kubernetes=kubernetes)


def test_node_tags_of_a_worker_and_of_the_leader():
    base = cluster_tags(CLUSTER, key_pair_name=KEY, environ={})
    worker = node_tags(base, "worker")
    leader = node_tags(base, "leader", KEY)
    assert worker == {**base, "ToilNodeType": "worker"}
    assert leader == {**base, "ToilNodeType": "leader", "sshKeyName": KEY}
    assert "ToilNodeType" not in base  # not modified in place


def test_node_tags_extra_tags_cannot_change_the_node_type():
    tags = node_tags({"Name": CLUSTER}, "worker", extra={"Pool": "p1", "ToilNodeType": "leader"})
    assert tags == {"Name": CLUSTER, "Pool": "p1", "ToilNodeType": "worker"}


@pytest.mark.parametrize("key_pair_name", [None, ""])
def test_leader_tags_need_the_key_pair_name(key_pair_name):
    with pytest.raises(ToilInputError, match=r"The leader's tags need the key pair name \(sshKeyName\)"):
        node_tags({}, "leader", key_pair_name)


@pytest.mark.parametrize("node_type", ["Leader", "workers", "", None])
def test_node_type_is_leader_or_worker(node_type):
    with pytest.raises(ToilInputError, match="Node type must be 'leader' or 'worker', not"):
        node_tags({}, node_type, KEY)


def test_boto3_tag_lists_round_trip():
    tags = {"b": "2", "a": "1", "empty": ""}
    assert boto3_tag_list(tags) == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "empty", "Value": ""}]
    assert tag_dict(boto3_tag_list(tags)) == tags
    assert tag_dict([{"Key": "k"}]) == {"k": ""}
    assert tag_dict(None) == {}


# --- differential: the real Toil -------------------------------------------------------------


@pytest.mark.toil("create_tags_dict", param="tag_args")
@pytest.mark.parametrize("tag_args", TAG_ARGS + BAD_TAG_ARGS)
def test_parse_tag_args_agrees_with_toil(tag_args, toil):
    theirs = toil("create_tags_dict", tag_args)
    if "error" in theirs:
        assert theirs["error"] == "ValueError"
        with pytest.raises(ToilInputError):
            parse_tag_args(tag_args)
    else:
        assert parse_tag_args(tag_args) == theirs["value"]


@pytest.mark.toil("build_tag_dict_from_env", param="environ")
@pytest.mark.parametrize("environ", ENVIRONMENTS + BAD_ENVIRONMENTS)
def test_env_tags_agree_with_toil(environ, toil):
    theirs = toil("build_tag_dict_from_env", environ)
    if "error" in theirs:
        assert theirs == {"error": "SystemExit", "message": "exit(1)"}
        with pytest.raises(ToilInputError, match="TOIL_AWS_TAGS must be a JSON object"):
            env_tags(environ)
    else:
        assert env_tags(environ) == theirs["value"]


@pytest.mark.toil("build_tag_dict_from_env", arg={"TOIL_AWS_TAGS": '{"n": 3, "t": true}'})
@pytest.mark.toil("build_tag_dict_from_env", arg={"TOIL_AWS_TAGS": '{"x": null}'})
@pytest.mark.toil("build_tag_dict_from_env", arg={"TOIL_AWS_TAGS": '{"x": [1]}'})
def test_difference_environment_tag_values_become_strings(toil):
    """Deliberate difference: Toil passes JSON values through as they are, and boto3 then
    refuses the non-strings; ours turns numbers and booleans into strings and refuses the rest.
    """
    assert toil("build_tag_dict_from_env", {"TOIL_AWS_TAGS": '{"n": 3, "t": true}'}) == {"value": {"n": 3, "t": True}}
    assert env_tags({"TOIL_AWS_TAGS": '{"n": 3, "t": true}'}) == {"n": "3", "t": "true"}
    for value in ("null", "[1]"):
        environ = {"TOIL_AWS_TAGS": f'{{"x": {value}}}'}
        assert toil("build_tag_dict_from_env", environ) == {"value": {"x": json.loads(value)}}
        with pytest.raises(ToilInputError, match="must be a string or a number"):
            env_tags(environ)


def _launch(owner=None, tag_args=(), env=None, kubernetes=True):
    """A launch-cluster invocation, for Toil (``argv``, ``env``) and for us (``ours``)."""
    argv = [CLUSTER, "--leaderNodeType", "t2.medium", "--keyPairName", KEY, "-z", "us-west-2a"]
    if owner:
        argv += ["--owner", owner]
    for tag in tag_args:
        argv += ["-t", tag]
    if kubernetes:
        argv += ["-T", "kubernetes"]
    return {"argv": argv, "env": env or {}, "ours": {"owner": owner, "tag_args": list(tag_args), "kubernetes": kubernetes}}


def _our_launch_tags(launch):
    ours = launch["ours"]
    base = cluster_tags(CLUSTER, ours["owner"], KEY, tag_args=ours["tag_args"], environ=launch["env"], kubernetes=ours["kubernetes"])
    return base, node_tags(base, "leader", KEY)


AGREED_LAUNCHES = [
    _launch(kubernetes=False),
    _launch(),
    _launch(env={"TOIL_OWNER_TAG": "bob"}),
    _launch(env={"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Project": "x", "Owner": "carol"}'}),
    _launch(tag_args=["Project=x", "Owner=dave"], env={"TOIL_OWNER_TAG": "bob", "TOIL_AWS_TAGS": '{"Ignored": "1"}'}),
    _launch(tag_args=["Project=x"], env={"TOIL_OWNER_TAG": "bob"}),
    _launch(owner="alice", tag_args=["Project=x"], env={"TOIL_OWNER_TAG": "bob"}),
    _launch(owner="alice"),
    _launch(owner="alice", kubernetes=False, env={"TOIL_AWS_TAGS": '{"a": "1", "b": "2"}'}),
    _launch(tag_args=["a=1", "a=2", "Empty="]),
    _launch(tag_args=[f"Name={CLUSTER}", f"clusterName={CLUSTER}", f"{K8S_TAG}="]),
    _launch(env={"TOIL_AWS_TAGS": ""}),
]


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize("launch", AGREED_LAUNCHES)
def test_cluster_and_leader_tags_agree_with_launch_cluster(launch, toil):
    theirs = toil("launch_cluster", launch)["value"]
    base, leader = _our_launch_tags(launch)
    assert base == theirs["cluster"]
    assert leader == theirs["leader"]
    assert resolve_owner(launch["ours"]["owner"], KEY, launch["env"]) == theirs["owner"]


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize(
    ("launch", "error"),
    [
        (_launch(tag_args=["novalue"]), "ValueError"),
        (_launch(tag_args=["a=b=c"]), "ValueError"),
        (_launch(env={"TOIL_AWS_TAGS": "[1]"}), "SystemExit"),
        (_launch(env={"TOIL_AWS_TAGS": "nope"}), "SystemExit"),
    ],
)
def test_bad_tags_are_refused_like_launch_cluster(launch, error, toil):
    assert toil("launch_cluster", launch)["error"] == error
    with pytest.raises(ToilInputError):
        _our_launch_tags(launch)


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize("launch", [_launch(owner="alice", env={"TOIL_OWNER_TAG": "bob"}, kubernetes=kubernetes) for kubernetes in (True, False)])
def test_difference_explicit_owner_wins_over_toil_owner_tag(launch, toil):
    """Deliberate difference: with ``--owner alice`` and ``TOIL_OWNER_TAG=bob`` and no ``-t``,
    Toil picks ``alice`` as the owner, then lets the environment's tags (``Owner=bob``)
    override it. Ours keeps the owner that was asked for.
    """
    theirs = toil("launch_cluster", launch)["value"]
    assert theirs["owner"] == "alice"
    assert theirs["leader"]["Owner"] == "bob"
    base, leader = _our_launch_tags(launch)
    assert base["Owner"] == leader["Owner"] == "alice"


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize(
    ("launch", "key", "value"),
    [
        (_launch(tag_args=["Name=other"]), "Name", "other"),
        (_launch(tag_args=["clusterName=other"]), "clusterName", "other"),
        (_launch(env={"TOIL_AWS_TAGS": '{"Name": "other"}'}), "Name", "other"),
        (_launch(tag_args=["ToilNodeType=worker"]), "ToilNodeType", "worker"),
        (_launch(tag_args=["sshKeyName=other-key"]), "sshKeyName", "other-key"),
        (_launch(tag_args=["kubernetes.io/cluster/other="]), "kubernetes.io/cluster/other", ""),
    ],
)
def test_difference_user_tags_cannot_override_membership_tags(launch, key, value, toil):
    """Deliberate difference: Toil lets user tags replace the tags that make a node part
    of the cluster (its dashboard and our inventory then lose the node, or every worker
    gets another key's name); ours refuses them.
    """
    theirs = toil("launch_cluster", launch)["value"]
    assert theirs["cluster"][key] == value  # Toil's base set, which every worker inherits
    with pytest.raises(ToilInputError, match=f"Tag '{key}'"):
        _our_launch_tags(launch)


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize("launch", [_launch(tag_args=[f"{K8S_TAG}=owned"])])
def test_difference_the_kubernetes_cluster_tag_is_refused_not_silently_reset(launch, toil):
    """Toil overwrites a user's ``kubernetes.io/cluster/C`` with ``""``; ours says so."""
    theirs = toil("launch_cluster", launch)["value"]
    assert theirs["leader"][K8S_TAG] == ""
    with pytest.raises(ToilInputError, match=f"Tag '{K8S_TAG}' is set by toil.cluster"):
        _our_launch_tags(launch)


@pytest.mark.toil("launch_cluster", param="launch")
@pytest.mark.parametrize("launch", [_launch(tag_args=["aws:x=1"]), _launch(tag_args=["=v"])])
def test_difference_tags_aws_refuses_are_refused_before_launch(launch, toil):
    """Toil accepts these tag arguments and launches; EC2 then refuses the tags."""
    assert "value" in toil("launch_cluster", launch)
    with pytest.raises(ToilInputError, match="tag arguments: tag key"):
        _our_launch_tags(launch)
