# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The tags Toil puts on a cluster's resources, with Toil's precedence.

Toil (launchCluster in src/toil/provisioners/aws/awsProvisioner.py) builds, in order:
``Name=C``, ``Owner``, ``clusterName=C``; then the user's tags (``-t K=V``, or when no
``-t`` is given, ``Owner=$TOIL_OWNER_TAG`` plus the JSON object ``$TOIL_AWS_TAGS``); then
``kubernetes.io/cluster/C=""`` on Kubernetes clusters; then per node ``ToilNodeType``
and, on the leader, ``sshKeyName``.

Two deliberate differences, both documented in docs/toil-compatibility.md:
- an explicit ``owner`` wins over ``$TOIL_OWNER_TAG`` (Toil lets the variable override
  ``--owner`` whenever no ``-t`` is given);
- user tags may not change the tags that make a node part of the cluster (``Name``,
  ``clusterName``, ``ToilNodeType``, ``sshKeyName``, ``kubernetes.io/cluster/C``): Toil
  accepts them and then its own dashboard and our inventory lose the nodes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.names import kubernetes_cluster_tag_key

TAG_NAME = "Name"
TAG_OWNER = "Owner"
TAG_CLUSTER_NAME = "clusterName"
TAG_NODE_TYPE = "ToilNodeType"
TAG_SSH_KEY_NAME = "sshKeyName"

NODE_TYPE_LEADER = "leader"
NODE_TYPE_WORKER = "worker"

# This collection's own tags (Toil ignores them): every key starts with the prefix.
COLLECTION_TAG_PREFIX = "toil.cluster/"
POOL_TAG = COLLECTION_TAG_PREFIX + "pool"  # the worker pool a node belongs to
PREEMPTIBLE_TAG = COLLECTION_TAG_PREFIX + "preemptible"  # "true" on a spot pool's nodes, before EC2 reports spot
LABELS_TAG = COLLECTION_TAG_PREFIX + "labels"  # the pool's Kubernetes node labels, "k=v,k2=v2"
JOINED_TAG = COLLECTION_TAG_PREFIX + "joined"  # "true" once the kubernetes role has joined the node
TRUE_TAG_VALUE = "true"

# Kubernetes node labels. The pool label carries the pool tag's value (the kubernetes role sets it, the
# scaler's demand reads it back); the spot labels are what Toil's Kubernetes batch system looks for.
POOL_LABEL = POOL_TAG
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
GKE_PREEMPTIBLE_LABEL = "cloud.google.com/gke-preemptible"
SPOT_LABEL = {CAPACITY_TYPE_LABEL: "SPOT"}  # what this collection puts on spot nodes
SPOT_LABELS = {**SPOT_LABEL, GKE_PREEMPTIBLE_LABEL: "true"}  # what counts as a spot node when read

OWNER_ENV_VAR = "TOIL_OWNER_TAG"
TAGS_ENV_VAR = "TOIL_AWS_TAGS"
DEFAULT_OWNER = "toil"

# AWS limits for user-defined tags (EC2, IAM and S3 agree on these).
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256


def parse_tag_args(tag_args):
    """Toil's ``-t K=V`` list (``create_tags_dict``): exactly one ``=`` in each."""
    tags = {}
    for tag in tag_args or ():
        if not isinstance(tag, str) or tag.count("=") != 1:
            raise ToilInputError(f"Tag specification '{tag}' must contain exactly one '=', like 'Project=genomics'.")
        key, value = tag.split("=")
        tags[key] = value
    return tags


def _stringify(source, key, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ToilInputError(f"{source}: the value of tag '{key}' must be a string or a number, not {type(value).__name__}.")


def env_tags(environ=None, explicit_owner=None):
    """The tags Toil takes from the environment when no ``-t`` is given.

    ``Owner=$TOIL_OWNER_TAG`` (unless ``explicit_owner`` is set), then ``$TOIL_AWS_TAGS``,
    which must be a JSON object; Toil exits 1 on anything else, this raises.
    """
    environ = os.environ if environ is None else environ
    tags = {}
    owner_tag = environ.get(OWNER_ENV_VAR)
    if owner_tag and not explicit_owner:
        tags[TAG_OWNER] = owner_tag
    raw = environ.get(TAGS_ENV_VAR)
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ToilInputError(f'{TAGS_ENV_VAR} must be a JSON object like {{"key": "value", ...}}, got: {raw}')
        tags.update({key: _stringify(TAGS_ENV_VAR, key, value) for key, value in parsed.items()})
    return tags


def resolve_owner(owner=None, key_pair_name=None, environ=None):
    """Toil's owner: ``owner`` -> ``$TOIL_OWNER_TAG`` -> the key pair name -> ``toil``."""
    environ = os.environ if environ is None else environ
    return owner or environ.get(OWNER_ENV_VAR) or key_pair_name or DEFAULT_OWNER


def validate_tags(tags, source="tags"):
    """Check user tags against AWS's limits; returns them as a str->str dict."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ToilInputError(f"{source} must be a mapping of tag keys to values.")
    checked = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise ToilInputError(f"{source}: tag keys must be non-empty strings, got {key!r}.")
        if key.lower().startswith("aws:"):
            raise ToilInputError(f"{source}: tag key '{key}' uses the prefix 'aws:', which AWS reserves.")
        if len(key) > MAX_TAG_KEY:
            raise ToilInputError(f"{source}: tag key '{key[:40]}...' is longer than {MAX_TAG_KEY} characters.")
        text = "" if value is None else _stringify(source, key, value)
        if len(text) > MAX_TAG_VALUE:
            raise ToilInputError(f"{source}: the value of tag '{key}' is longer than {MAX_TAG_VALUE} characters.")
        checked[key] = text
    return checked


def membership_tags(cluster_name, kubernetes=True):
    """The tags that make a resource part of the cluster, which user tags may not change."""
    tags = {TAG_NAME: cluster_name, TAG_CLUSTER_NAME: cluster_name}
    if kubernetes:
        tags[kubernetes_cluster_tag_key(cluster_name)] = ""
    return tags


def cluster_tags(cluster_name, owner=None, key_pair_name=None, tags=None, tag_args=None, environ=None, kubernetes=True):
    """The base tag set of every resource of the cluster, with Toil's precedence.

    ``tags`` (a dict) and ``tag_args`` (Toil's ``K=V`` strings) are the user's tags; when
    neither is given, the environment's are used, as Toil does.
    """
    user_tags = validate_tags(tags)
    user_tags.update(validate_tags(parse_tag_args(tag_args), "tag arguments"))
    if not user_tags:
        user_tags = validate_tags(env_tags(environ, explicit_owner=owner), TAGS_ENV_VAR)
    protected = membership_tags(cluster_name, kubernetes)
    reserved = set(protected) | {TAG_NODE_TYPE, TAG_SSH_KEY_NAME}
    for key, value in user_tags.items():
        if key in reserved and protected.get(key) != value:
            raise ToilInputError(f"Tag '{key}' is set by toil.cluster to mark cluster membership and cannot be overridden (got '{key}={value}').")
        if key.startswith("kubernetes.io/cluster/") and key not in protected:
            raise ToilInputError(f"Tag '{key}' would put the nodes in another Kubernetes cluster.")
    result = {
        TAG_NAME: cluster_name,
        TAG_OWNER: resolve_owner(owner, key_pair_name, environ),
        TAG_CLUSTER_NAME: cluster_name,
    }
    result.update(user_tags)
    result.update(protected)
    if len(result) + 2 > MAX_TAGS:  # room for ToilNodeType and sshKeyName
        raise ToilInputError(f"Too many tags: {len(result)} cluster tags leave no room under AWS's {MAX_TAGS} per resource.")
    return result


def node_tags(base_tags, node_type, key_pair_name=None, extra=None):
    """Tags for one node: the cluster's, then ``ToilNodeType``, then ``sshKeyName`` on the leader."""
    if node_type not in (NODE_TYPE_LEADER, NODE_TYPE_WORKER):
        raise ToilInputError(f"Node type must be '{NODE_TYPE_LEADER}' or '{NODE_TYPE_WORKER}', not '{node_type}'.")
    tags = dict(base_tags)
    tags.update(extra or {})
    tags[TAG_NODE_TYPE] = node_type
    if node_type == NODE_TYPE_LEADER:
        if not key_pair_name:
            raise ToilInputError("The leader's tags need the key pair name (sshKeyName), as Toil reads it back.")
        tags[TAG_SSH_KEY_NAME] = key_pair_name
    return tags


def boto3_tag_list(tags):
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``, sorted for stable requests."""
    return [{"Key": key, "Value": tags[key]} for key in sorted(tags)]


def tag_dict(tag_list):
    """``[{"Key": "k", "Value": "v"}]`` (as AWS returns it) -> ``{"k": "v"}``."""
    return {tag["Key"]: tag.get("Value", "") for tag in tag_list or ()}


# What node_facts tells about a node, and the tag each fact is read from. Roles and playbooks name these tags by
# the fact (the filters toil.cluster.node_facts and toil.cluster.tag_key), never by their keys.
NODE_FACT_TAGS = {
    "cluster": TAG_CLUSTER_NAME,
    "node_type": TAG_NODE_TYPE,
    "pool": POOL_TAG,
    "preemptible": PREEMPTIBLE_TAG,
    "labels": LABELS_TAG,
    "joined": JOINED_TAG,
}


def node_facts(tags, cluster=None, pool=None, preemptible=None, labels=None):
    """What a node's tags say about it (the filter ``toil.cluster.node_facts``).

    ``tags`` are the node's EC2 tags, a mapping (the inventory's ``ec2_tags``). ``cluster``, ``pool`` and
    ``preemptible`` are what the inventory already knows (``toil_cluster``, ``toil_pool``, ``toil_preemptible``)
    and win over the tags: ``cluster`` and ``pool`` when not empty, ``preemptible`` when not None. ``labels``, when
    not None, stands for the pool's labels (the pool label and the labels tag).

    Returns ``cluster``, ``node_type`` and ``pool`` (strings, empty when unknown), ``preemptible`` and ``joined``
    (booleans), and ``labels``: the node's Kubernetes labels, that is the pool label (the pool's name), then the
    labels tag's ``k=v,k2=v2``, then on a preemptible node the spot label.
    """
    if tags is None:
        tags = {}
    if not isinstance(tags, Mapping):
        raise ToilInputError(f"A node's tags must be a mapping of keys to values, not {type(tags).__name__}.")
    pool = pool or tags.get(POOL_TAG, "")
    preemptible = boolean(tags.get(PREEMPTIBLE_TAG, "false") if preemptible is None else preemptible, strict=False)
    if labels is None:
        labels = {POOL_LABEL: pool} if pool else {}
        for item in tags.get(LABELS_TAG, "").split(","):
            key, sep, value = item.partition("=")
            if item and not sep:
                raise ToilInputError(f"The tag {LABELS_TAG} must read k=v,k2=v2; '{item}' has no '='.")
            if item:
                labels[key] = value
    elif isinstance(labels, Mapping):
        labels = dict(labels)
    else:
        raise ToilInputError(f"A node's labels must be a mapping of label keys to values, not {type(labels).__name__}.")
    if preemptible:
        labels.update(SPOT_LABEL)
    return {
        "cluster": cluster or tags.get(TAG_CLUSTER_NAME, ""),
        "node_type": tags.get(TAG_NODE_TYPE, ""),
        "pool": pool,
        "preemptible": preemptible,
        "joined": tags.get(JOINED_TAG) == TRUE_TAG_VALUE,
        "labels": labels,
    }
