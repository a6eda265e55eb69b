# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Cluster names and every AWS name Toil derives from them.

Toil (src/toil/provisioners/aws/awsProvisioner.py) names the security group after the
cluster, and the IAM role and instance profile with ``_namespace_name("toil")``:
``my-cluster`` -> ``my_cluster_toil``. Toil recognises its own IAM names by *prefix*
(``_is_our_namespaced_name``), so destroying ``my`` deletes ``my_cluster_toil`` too;
here ownership is an exact match, always.
"""

from __future__ import annotations

import re

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

# What Toil itself forbids (_toNameSpace), checked first so its users see its rule.
_TOIL_FORBIDDEN = re.compile(r"[A-Z_]")
# What AWS and Kubernetes need of every derived name: DNS-label characters.
_CLUSTER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

IAM_NAME_SUFFIX = "toil"
IAM_ROLE_NAME_MAX = 64  # IAM role names; instance profiles allow 128
INSTANCE_PROFILE_NAME_MAX = 128
S3_BUCKET_NAME_MAX = 63
SECURITY_GROUP_NAME_MAX = 255
TAG_KEY_MAX = 128
# The tag Kubernetes' AWS integrations look for, and Toil puts on every node.
KUBERNETES_CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
# Toil truncates the cluster name to 53 characters for its internal bucket.
_INTERNAL_BUCKET_PREFIX_MAX = 53
# Toil's cluster-autoscaler discovers groups by the tag k8s.io/cluster-autoscaler/<C>,
# next to k8s.io/cluster-autoscaler/enabled; a cluster named "enabled" collides.
_RESERVED_CLUSTER_NAMES = ("enabled",)


def iam_name(cluster_name, name=IAM_NAME_SUFFIX):
    """Toil's ``_namespace_name``: the IAM role and instance profile name of a cluster."""
    namespace = "/" + cluster_name + "/"
    namespace = namespace.replace("-", "/")
    return (namespace + name)[1:].replace("_", "__").replace("/", "_")


def cluster_from_iam_name(role_name, name=IAM_NAME_SUFFIX):
    """The cluster whose Toil IAM name is exactly ``role_name``, or None.

    The inverse of :func:`iam_name`, checked by re-deriving the name, so a role is
    never attributed to a cluster whose name is merely a prefix of it.
    """
    suffix = iam_name("", name)  # "_" + name, encoded as iam_name encodes it
    if not role_name.endswith(suffix):
        return None
    candidate = role_name[: -len(suffix)].replace("_", "-")
    if not _CLUSTER_NAME.fullmatch(candidate) or iam_name(candidate, name) != role_name:
        return None
    return candidate


def owns_iam_name(cluster_name, role_name, name=IAM_NAME_SUFFIX):
    """True only when ``role_name`` is exactly this cluster's Toil IAM name."""
    return role_name == iam_name(cluster_name, name)


def internal_bucket_name(cluster_name):
    """Toil's bucket for oversized boot configs: ``C[:53]--internal``."""
    return cluster_name[:_INTERNAL_BUCKET_PREFIX_MAX] + "--internal"


def kubernetes_cluster_tag_key(cluster_name):
    return KUBERNETES_CLUSTER_TAG_PREFIX + cluster_name


def derived_names(cluster_name):
    """Every AWS name Toil derives from a cluster name, keyed by what it names."""
    return {
        "security_group": cluster_name,
        "iam_role": iam_name(cluster_name),
        "instance_profile": iam_name(cluster_name),
        "internal_bucket": internal_bucket_name(cluster_name),
        "kubernetes_cluster_tag": kubernetes_cluster_tag_key(cluster_name),
    }


_DERIVED_NAME_LIMITS = (
    ("security_group", "security group name", SECURITY_GROUP_NAME_MAX),
    ("iam_role", "IAM role name", IAM_ROLE_NAME_MAX),
    ("instance_profile", "IAM instance profile name", INSTANCE_PROFILE_NAME_MAX),
    ("internal_bucket", "S3 bucket name", S3_BUCKET_NAME_MAX),
    ("kubernetes_cluster_tag", "tag key", TAG_KEY_MAX),
)


def _longest_cluster_name():
    """The longest cluster name for which every derived name fits its AWS limit."""
    longest = 1
    while all(len(derived_names("a" * (longest + 1))[key]) <= limit for key, _label, limit in _DERIVED_NAME_LIMITS):
        longest += 1
    return longest


CLUSTER_NAME_MAX = _longest_cluster_name()  # 59: the IAM role name "<name>_toil" must fit 64


def validate_cluster_name(cluster_name):
    """Return ``cluster_name`` if Toil and AWS accept it everywhere it is used, else raise."""
    if not isinstance(cluster_name, str) or not cluster_name:
        raise ToilInputError("The cluster name must be a non-empty string.")
    if _TOIL_FORBIDDEN.search(cluster_name):
        raise ToilInputError(f"Invalid cluster name '{cluster_name}': it must be lowercase and cannot contain '_' (Toil's rule).")
    if not _CLUSTER_NAME.fullmatch(cluster_name):
        raise ToilInputError(f"Invalid cluster name '{cluster_name}': use only lowercase letters, digits and '-', starting and ending with a letter or digit.")
    if cluster_name in _RESERVED_CLUSTER_NAMES:
        raise ToilInputError(f"Invalid cluster name '{cluster_name}': it collides with the cluster-autoscaler discovery tag k8s.io/cluster-autoscaler/enabled.")
    names = derived_names(cluster_name)
    for key, label, limit in _DERIVED_NAME_LIMITS:
        if len(names[key]) > limit:
            raise ToilInputError(
                f"Cluster name '{cluster_name}' is too long ({len(cluster_name)} characters, at most "
                f"{CLUSTER_NAME_MAX}): the {label} '{names[key]}' would exceed AWS's {limit}."
            )
    return cluster_name


# A login name as useradd and sshd take it (POSIX portable characters, not starting with '-', at most 32): it
# goes into ansible_user, ssh command lines and ProxyJump, where a space or an option would change their meaning.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")


def validate_user_name(user, what="ssh_user"):
    """``user`` if it is a POSIX login name, else a clear error."""
    if not isinstance(user, str) or not _USER_NAME.fullmatch(user):
        raise ToilInputError(f"{what}: {user!r} is not a login name (ASCII letters, digits, '.', '_' and '-', at most 32, starting with a letter or '_').")
    return user
