# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Cluster names and the AWS names Toil derives from them (reference section 2, "Names")."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.names import (
    CLUSTER_NAME_MAX,
    IAM_ROLE_NAME_MAX,
    S3_BUCKET_NAME_MAX,
    cluster_from_iam_name,
    derived_names,
    iam_name,
    internal_bucket_name,
    kubernetes_cluster_tag_key,
    owns_iam_name,
    validate_cluster_name,
)

VALID_NAMES = ["a", "7", "my-cluster", "a-b-c", "a--b", "toil-2024-prod", "x" * CLUSTER_NAME_MAX]


# --- iam_name: Toil's _namespace_name("toil") ---------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ("my-cluster", "my_cluster_toil"),  # the reference's example
        ("a", "a_toil"),
        ("a-b-c", "a_b_c_toil"),
        ("a--b", "a__b_toil"),  # "/a//b/" -> "a__b_toil"
    ],
)
def test_iam_name_replaces_dashes_and_appends_toil(cluster, expected):
    assert iam_name(cluster) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("role", "c_role"),
        ("a_b", "c_a__b"),  # '_' in the suffix is doubled, as Toil escapes it
        ("x/y", "c_x_y"),  # '/' becomes '_'
        ("a-b", "c_a-b"),  # only the cluster part turns '-' into '/'
    ],
)
def test_iam_name_encodes_the_suffix_like_toil(name, expected):
    assert iam_name("c", name) == expected


@pytest.mark.parametrize("cluster", VALID_NAMES)
@pytest.mark.parametrize("name", ["toil", "a_b", "x/y", "a-b"])
def test_cluster_from_iam_name_inverts_iam_name(cluster, name):
    assert cluster_from_iam_name(iam_name(cluster, name), name) == cluster


@pytest.mark.parametrize(
    "role",
    [
        "toil",  # no cluster part
        "_toil",  # empty cluster part
        "my_cluster_role",  # another suffix
        "my_cluster_toil_x",
        "My_toil",  # uppercase is never a Toil cluster
        "_my_toil",  # would be cluster "-my"
        "my__toil",  # would be cluster "my-"
        "my_cluster_Toil",
        "",
    ],
)
def test_cluster_from_iam_name_refuses_names_toil_never_derives(role):
    assert cluster_from_iam_name(role) is None


def test_cluster_from_iam_name_reads_the_whole_cluster_name_not_a_prefix():
    # The role of "my-cluster" belongs to "my-cluster", never to "my".
    assert cluster_from_iam_name("my_cluster_toil") == "my-cluster"


@pytest.mark.parametrize(
    ("cluster", "role", "owned"),
    [
        ("my-cluster", "my_cluster_toil", True),
        ("my", "my_toil", True),
        ("my", "my_cluster_toil", False),  # Toil's prefix match says True; see test below
        ("my", "my_other_app_role", False),
        ("my-cluster", "my_toil", False),
        ("my", "myx_toil", False),
        ("my", "MY_toil", False),
        ("my", "my_toil ", False),
    ],
)
def test_owns_iam_name_is_an_exact_match(cluster, role, owned):
    assert owns_iam_name(cluster, role) is owned


# --- other derived names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "bucket"),
    [
        ("my-cluster", "my-cluster--internal"),
        ("a" * 53, "a" * 53 + "--internal"),
        ("a" * 53 + "bcdef", "a" * 53 + "--internal"),  # Toil truncates to C[:53]
    ],
)
def test_internal_bucket_is_the_name_truncated_to_53(cluster, bucket):
    assert internal_bucket_name(cluster) == bucket
    assert len(bucket) <= S3_BUCKET_NAME_MAX


def test_derived_names_of_a_cluster():
    assert derived_names("my-cluster") == {
        "security_group": "my-cluster",
        "iam_role": "my_cluster_toil",
        "instance_profile": "my_cluster_toil",
        "internal_bucket": "my-cluster--internal",
        "kubernetes_cluster_tag": "kubernetes.io/cluster/my-cluster",
    }
    assert kubernetes_cluster_tag_key("c") == "kubernetes.io/cluster/c"


def test_cluster_name_max_is_set_by_the_iam_role_limit():
    # "<name>_toil" must fit IAM's 64 characters: the tightest of the derived-name limits.
    assert IAM_ROLE_NAME_MAX - len("_toil") == CLUSTER_NAME_MAX
    assert len(iam_name("a" * CLUSTER_NAME_MAX)) == IAM_ROLE_NAME_MAX
    validate_cluster_name("a" * CLUSTER_NAME_MAX)  # every other derived name fits too


# --- validate_cluster_name -------------------------------------------------------------------


@pytest.mark.parametrize("cluster", VALID_NAMES)
def test_valid_cluster_names_are_returned(cluster):
    assert validate_cluster_name(cluster) == cluster


@pytest.mark.parametrize("cluster", [None, "", 5, ["my-cluster"]])
def test_cluster_name_must_be_a_non_empty_string(cluster):
    with pytest.raises(ToilInputError, match="must be a non-empty string"):
        validate_cluster_name(cluster)


@pytest.mark.parametrize("cluster", ["MyCluster", "A", "my_cluster", "_", "my-Cluster-1"])
def test_cluster_name_follows_toils_lowercase_no_underscore_rule(cluster):
    with pytest.raises(ToilInputError, match=r"must be lowercase and cannot contain '_' \(Toil's rule\)"):
        validate_cluster_name(cluster)


@pytest.mark.parametrize(
    "cluster",
    ["-abc", "abc-", "-", "a.b", "a b", "a/b", "a:b", "é", "abc\n", " abc", "my-cluster\t"],
)
def test_cluster_name_must_be_dns_label_characters(cluster):
    with pytest.raises(ToilInputError, match="use only lowercase letters, digits and '-', starting and ending with a letter or digit"):
        validate_cluster_name(cluster)


def test_cluster_name_enabled_collides_with_the_autoscaler_tag():
    with pytest.raises(ToilInputError, match="collides with the cluster-autoscaler discovery tag k8s.io/cluster-autoscaler/enabled"):
        validate_cluster_name("enabled")
    assert validate_cluster_name("enabled-1") == "enabled-1"


@pytest.mark.parametrize(
    ("length", "limit"),
    [
        (CLUSTER_NAME_MAX + 1, "the IAM role name '.*' would exceed AWS's 64"),
        (100, "the IAM role name '.*' would exceed AWS's 64"),
        (256, "the security group name '.*' would exceed AWS's 255"),
    ],
)
def test_cluster_name_too_long_names_the_first_limit_it_breaks(length, limit):
    with pytest.raises(ToilInputError, match=rf"too long \({length} characters, at most {CLUSTER_NAME_MAX}\): {limit}"):
        validate_cluster_name("a" * length)


# --- differential: the real Toil -------------------------------------------------------------


@pytest.mark.toil("namespace_name", param="arg")
@pytest.mark.parametrize("arg", [{"cluster": cluster, "name": "toil"} for cluster in VALID_NAMES] + [{"cluster": "c", "name": "a_b"}])
def test_iam_name_agrees_with_toil(arg, toil):
    assert toil("namespace_name", arg) == {"value": iam_name(arg["cluster"], arg["name"])}


@pytest.mark.toil("namespace_name", param="arg")
@pytest.mark.parametrize("arg", [{"cluster": cluster, "name": "toil"} for cluster in ["MyCluster", "my_cluster", "A"]])
def test_names_toil_refuses_are_refused(arg, toil):
    assert toil("namespace_name", arg)["error"] == "RuntimeError"
    with pytest.raises(ToilInputError, match="must be lowercase"):
        validate_cluster_name(arg["cluster"])


@pytest.mark.toil("namespace_name", param="arg")
@pytest.mark.parametrize("arg", [{"cluster": cluster, "name": "toil"} for cluster in ["-abc", "abc-", "a.b", "abc\n", "enabled", "a" * 60]])
def test_difference_names_toil_accepts_but_aws_or_kubernetes_would_not(arg, toil):
    """Deliberate difference: Toil checks names lazily and only for uppercase and '_'.

    These derive a Toil IAM name without complaint; ours refuses them up front, before
    anything is created (AWS or Kubernetes would refuse them halfway through a launch).
    """
    assert "value" in toil("namespace_name", arg)
    with pytest.raises(ToilInputError):
        validate_cluster_name(arg["cluster"])


AGREED_OWNERSHIP = [
    ("my-cluster", "my_cluster_toil"),
    ("my", "my_toil"),
    ("my", "myx_toil"),
    ("my-cluster", "my_toil"),
    ("my-cluster", "other_toil"),
    ("b", "a_b_toil"),
]


@pytest.mark.toil("is_our_namespaced_name", param="arg")
@pytest.mark.parametrize("arg", [{"cluster": cluster, "name": role} for cluster, role in AGREED_OWNERSHIP])
def test_iam_ownership_agrees_with_toil_on_exact_and_unrelated_names(arg, toil):
    assert toil("is_our_namespaced_name", arg) == {"value": owns_iam_name(arg["cluster"], arg["name"])}


@pytest.mark.toil("is_our_namespaced_name", param="arg")
@pytest.mark.parametrize(
    "arg",
    [
        {"cluster": "my", "name": "my_cluster_toil"},  # the reference's quirk
        {"cluster": "a", "name": "a_b_c_toil"},
        {"cluster": "my", "name": "my_other_app_role"},  # not even a Toil role
    ],
)
def test_difference_iam_ownership_is_exact_where_toil_matches_a_prefix(arg, toil):
    """Deliberate difference: destroying cluster ``my`` must not delete ``my_cluster_toil``.

    Toil's ``_is_our_namespaced_name`` claims every name under the prefix ``my_``.
    """
    assert toil("is_our_namespaced_name", arg) == {"value": True}
    assert owns_iam_name(arg["cluster"], arg["name"]) is False
    assert cluster_from_iam_name(arg["name"]) != arg["cluster"]


@pytest.mark.toil("is_our_namespaced_name", arg={"cluster": "a--b", "name": "a__b_toil"})
@pytest.mark.toil("namespace_name", arg={"cluster": "a--b", "name": "toil"})
def test_difference_toil_does_not_recognise_its_own_iam_name_when_the_cluster_has_a_double_dash(toil):
    """Toil bug, not followed: for ``a--b`` it derives ``a__b_toil`` but then reads ``__``
    back as an escaped ``_`` (``/a_b/toil``), so destroy-cluster leaks that role and
    instance profile. Ours recognises exactly the name it derives.
    """
    assert toil("namespace_name", {"cluster": "a--b", "name": "toil"}) == {"value": "a__b_toil"}
    assert toil("is_our_namespaced_name", {"cluster": "a--b", "name": "a__b_toil"}) == {"value": False}
    assert owns_iam_name("a--b", "a__b_toil") is True
    assert cluster_from_iam_name("a__b_toil") == "a--b"
