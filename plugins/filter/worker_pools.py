# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: worker_pools
short_description: Pair Toil node types with worker counts (C(--nodeTypes) with C(-w))
version_added: 0.1.0
description:
  - Pairs node types with worker counts one-to-one, as C(toil launch-cluster --nodeTypes ... -w ...) does.
    C(N) is a static pool of N nodes; C(a-b) a ranged pool (ends swapped if reversed); C(0) and C(0-0) are skipped.
  - Fails when only one of the two is given or when the lists differ in length.
  - Without O(workers), the input is a list of pool mappings, each with C(node_types) and either C(count)
    or C(min_size) and C(max_size), and an optional C(name).
  - With O(scaler=true), the pools come as the O(toil.cluster.toil_scaler#module:pools) option of
    M(toil.cluster.toil_scaler) takes them, a static pool of N as C(min_size = max_size = N).
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: Node types (a Toil string or a list, see P(toil.cluster.node_types#filter)), or a list of pool mappings.
    type: raw
    required: true
  workers:
    description:
      - Worker counts, a Toil string like C(0-4,2) or a list; in ASCII digits, at most 5000 nodes a pool (the largest
        cluster Kubernetes supports).
    type: raw
  scaler:
    description: Give each pool as M(toil.cluster.toil_scaler) takes it (C(name), C(node_types), C(min_size), C(max_size)).
    type: bool
    default: false
  node_storage:
    description: With O(scaler=true), each pool's C(node_storage) (GiB, 8 to 16384); omitted when not given.
    type: int
"""

EXAMPLES = r"""
- name: Toil's syntax
  ansible.builtin.debug:
    msg: "{{ 'c5.4xlarge/c5a.4xlarge:0.42,t3.large' | toil.cluster.worker_pools('0-4,2') }}"
  # [{name: c5-4xlarge-spot, static: false, min_size: 0, max_size: 4, node_type: {...}},
  #  {name: t3-large, static: true, count: 2, node_type: {...}}]

- name: Structured pools
  ansible.builtin.debug:
    msg: "{{ [{'name': 'align', 'node_types': 'r5.2xlarge:0.2', 'min_size': 0, 'max_size': 10}] | toil.cluster.worker_pools }}"

- name: The scaler's pools
  ansible.builtin.debug:
    msg: "{{ 'c5.4xlarge:0.42,t3.large' | toil.cluster.worker_pools('0-4,2', scaler=true, node_storage=50) }}"
  # [{name: c5-4xlarge-spot, node_types: "c5.4xlarge:0.42", min_size: 0, max_size: 4, node_storage: 50},
  #  {name: t3-large, node_types: t3.large, min_size: 2, max_size: 2, node_storage: 50}]
"""

RETURN = r"""
_value:
  description: One mapping per pool of non-zero size; with O(scaler=true), the keys of M(toil.cluster.toil_scaler)'s pools instead.
  type: list
  elements: dict
  contains:
    name: {description: "The pool name (given, or derived from the first instance type and the market).", type: str}
    static: {description: Whether the pool has a fixed size., type: bool}
    count: {description: The size of a static pool., type: int}
    min_size: {description: The lower bound of a ranged pool., type: int}
    max_size: {description: The upper bound of a ranged pool., type: int}
    node_type: {description: "The node type, as returned by P(toil.cluster.node_types#filter).", type: dict}
    summary: {description: "One line for people, like C(t3.large x 2 (on-demand, static)).", type: str}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.limits import MAX_VOLUME_GIB, MIN_VOLUME_GIB, ascii_int, check_range
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import normalize_worker_pool
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import worker_pools as pair_worker_pools


def scaler_pool(pool, node_storage=None):
    """A pool as toil_scaler's ``pools`` option takes it; a static pool keeps its size (min = max)."""
    spec = {"name": pool.name, "node_types": pool.node_type.spec, "min_size": pool.min_size, "max_size": pool.max_size}
    if node_storage is not None:
        # not int(): it reads "٥٠" as 50; the bounds are an EBS gp3 root volume's
        spec["node_storage"] = check_range(ascii_int(node_storage, "node_storage"), "node_storage", MIN_VOLUME_GIB, MAX_VOLUME_GIB, "GiB")
    return spec


def worker_pools(value, workers=None, scaler=False, node_storage=None):
    try:
        if workers is None and isinstance(value, list) and all(isinstance(item, dict) and "node_types" in item for item in value):
            pools = [normalize_worker_pool(item) for item in value]
        else:
            pools = pair_worker_pools(value, workers)
        return [scaler_pool(pool, node_storage) if scaler else pool.as_dict() for pool in pools]
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"worker_pools": worker_pools}
