# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: node_types
short_description: Parse Toil node types (C(--nodeTypes)) into structured form
version_added: 0.1.0
description:
  - Parses node types exactly as C(toil launch-cluster --nodeTypes) does. A node type is one or more
    interchangeable instance types with an optional spot bid, C(c5.4xlarge/c5a.4xlarge:0.42); a bid means
    spot (preemptible) nodes. Several node types are comma-separated.
  - Also accepts a list whose items are Toil strings, lists of instance types, or mappings with
    C(instance_types) and C(spot_bid).
  - Instance types keep the order written (Toil keeps a set); pools try the first one first.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: Node types, as a Toil string or a list.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Toil's syntax
  ansible.builtin.debug:
    msg: "{{ 'c5.4xlarge/c5a.4xlarge:0.42,t3.large' | toil.cluster.node_types }}"
  # [{instance_types: [c5.4xlarge, c5a.4xlarge], spot_bid: 0.42, preemptible: true, spec: "c5.4xlarge/c5a.4xlarge:0.42"},
  #  {instance_types: [t3.large], spot_bid: null, preemptible: false, spec: t3.large}]

- name: Structured form
  ansible.builtin.debug:
    msg: "{{ [{'instance_types': ['m5.large', 'm5a.large'], 'spot_bid': 0.1}] | toil.cluster.node_types }}"
"""

RETURN = r"""
_value:
  description: One mapping per node type.
  type: list
  elements: dict
  contains:
    instance_types: {description: The instance types in order of preference., type: list, elements: str}
    spot_bid: {description: "The spot bid in dollars per hour, or null for on-demand.", type: float}
    preemptible: {description: Whether the nodes are spot instances., type: bool}
    spec: {description: The node type in Toil's syntax., type: str}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import normalize_node_types


def node_types(value):
    try:
        return [node_type.as_dict() for node_type in normalize_node_types(value)]
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"node_types": node_types}
