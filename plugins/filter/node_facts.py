# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: node_facts
short_description: What a node's EC2 tags say about it (cluster, pool, spot, Kubernetes labels, joined)
version_added: 0.1.0
description:
  - Reads a node's tags, Toil's (C(clusterName), C(ToilNodeType)) and this collection's (C(toil.cluster/pool),
    C(toil.cluster/preemptible), C(toil.cluster/labels), C(toil.cluster/joined)), so that roles and playbooks never
    name a tag key themselves.
  - What the inventory already knows wins over the tags; give the C(toil.cluster.toil_ec2) inventory's host variables
    as O(cluster), O(pool) and O(preemptible).
  - P(toil.cluster.tag_key#filter) gives the key of one of these tags, where a playbook must write it.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The node's EC2 tags, a mapping (the inventory's C(ec2_tags)).
    type: dict
    required: true
  cluster:
    description: The node's cluster (the inventory's C(toil_cluster)); when empty, the tag C(clusterName).
    type: str
  pool:
    description: The node's worker pool (the inventory's C(toil_pool)); when empty, the tag C(toil.cluster/pool).
    type: str
  preemptible:
    description:
      - Whether the node is a spot instance (the inventory's C(toil_preemptible)); when null, the tag
        C(toil.cluster/preemptible).
    type: bool
  labels:
    description:
      - Kubernetes labels that stand for the pool's (the pool label and the tag C(toil.cluster/labels)); the spot label
        is still added on a preemptible node.
    type: dict
"""

EXAMPLES = r"""
- name: What the inventory and the tags say about this node
  ansible.builtin.debug:
    msg: >-
      {{ ec2_tags | toil.cluster.node_facts(cluster=toil_cluster | default(none), pool=toil_pool | default(none),
         preemptible=toil_preemptible | default(none)) }}
  # {cluster: my-cluster, node_type: worker, pool: c5-large-spot, preemptible: true, joined: false,
  #  labels: {toil.cluster/pool: c5-large-spot, team: rna, eks.amazonaws.com/capacityType: SPOT}}

- name: Configure only the workers that have not joined Kubernetes yet
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} has not joined"
  when: not (ec2_tags | toil.cluster.node_facts).joined
"""

RETURN = r"""
_value:
  description: What the node is.
  type: dict
  contains:
    cluster: {description: "The cluster's name, empty when unknown.", type: str}
    node_type: {description: "C(leader) or C(worker) (the tag C(ToilNodeType)), empty when unknown.", type: str}
    pool: {description: "The worker pool, empty when the node belongs to none.", type: str}
    preemptible: {description: Whether the node is a spot instance., type: bool}
    joined: {description: "Whether the node has joined Kubernetes (the tag C(toil.cluster/joined) is C(true)).", type: bool}
    labels:
      description:
        - The node's Kubernetes labels, in this order - C(toil.cluster/pool=<pool>) on a node of a pool, the labels of
          the tag C(toil.cluster/labels) (C(k=v,k2=v2), as M(toil.cluster.toil_nodepool) writes it), or O(labels)
          instead of both, and C(eks.amazonaws.com/capacityType=SPOT) on a spot node.
      type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.tags import node_facts as read_node_facts


def node_facts(value, cluster=None, pool=None, preemptible=None, labels=None):
    try:
        return read_node_facts(value, cluster=cluster, pool=pool, preemptible=preemptible, labels=labels)
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"node_facts": node_facts}
