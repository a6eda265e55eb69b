# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: cluster_tags
short_description: The tags Toil puts on a cluster's nodes, with Toil's precedence
version_added: 0.1.0
description:
  - Builds the base tags (C(Name), C(Owner), C(clusterName)), then the user's tags, then
    C(kubernetes.io/cluster/<name>), then C(ToilNodeType) and, on the leader, C(sshKeyName).
  - The owner is O(owner), else O(toil_owner_tag), else O(key_pair_name), else C(toil).
  - When O(tags) is empty, the user's tags come from O(toil_aws_tags) (a JSON object, like Toil's
    C(TOIL_AWS_TAGS)) and O(toil_owner_tag), as Toil takes them from its environment.
  - Tags that mark cluster membership cannot be overridden.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The cluster name.
    type: str
    required: true
  node_type:
    description: C(leader) or C(worker); omit for the cluster's base tags.
    type: str
  owner:
    description: The owner tag.
    type: str
  key_pair_name:
    description: The EC2 key pair name; required for the leader.
    type: str
  tags:
    description: User tags.
    type: dict
  toil_owner_tag:
    description: The value of Toil's C(TOIL_OWNER_TAG), for example C(lookup('env', 'TOIL_OWNER_TAG')).
    type: str
  toil_aws_tags:
    description: The value of Toil's C(TOIL_AWS_TAGS), for example C(lookup('env', 'TOIL_AWS_TAGS')).
    type: str
"""

EXAMPLES = r"""
- name: The leader's tags
  ansible.builtin.debug:
    msg: "{{ 'my-cluster' | toil.cluster.cluster_tags(node_type='leader', key_pair_name='me', tags={'Project': 'rna'}) }}"
  # {Name: my-cluster, Owner: me, clusterName: my-cluster, Project: rna, kubernetes.io/cluster/my-cluster: "",
  #  ToilNodeType: leader, sshKeyName: me}
"""

RETURN = r"""
_value:
  description: The tags, as a mapping.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name
from ansible_collections.toil.cluster.plugins.module_utils.tags import OWNER_ENV_VAR, TAGS_ENV_VAR, node_tags
from ansible_collections.toil.cluster.plugins.module_utils.tags import cluster_tags as build_cluster_tags


def cluster_tags(value, node_type=None, owner=None, key_pair_name=None, tags=None, toil_owner_tag=None, toil_aws_tags=None):
    environ = {key: val for key, val in ((OWNER_ENV_VAR, toil_owner_tag), (TAGS_ENV_VAR, toil_aws_tags)) if val}
    try:
        base = build_cluster_tags(validate_cluster_name(value), owner=owner, key_pair_name=key_pair_name, tags=tags, environ=environ)
        return node_tags(base, node_type, key_pair_name) if node_type else base
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"cluster_tags": cluster_tags}
