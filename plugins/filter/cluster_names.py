# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: cluster_names
short_description: Validate a Toil cluster name and derive its AWS names
version_added: 0.1.0
description:
  - Checks a cluster name against Toil's rules (lowercase, no C(_)) and AWS's limits, so that every name
    derived from it fits (IAM role names 64 characters, S3 bucket names 63), and returns those names.
  - The IAM role and instance profile are named as Toil names them, C(my-cluster) -> C(my_cluster_toil).
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The cluster name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Derived names
  ansible.builtin.debug:
    msg: "{{ 'my-cluster' | toil.cluster.cluster_names }}"
  # {security_group: my-cluster, iam_role: my_cluster_toil, instance_profile: my_cluster_toil,
  #  internal_bucket: my-cluster--internal, kubernetes_cluster_tag: kubernetes.io/cluster/my-cluster}
"""

RETURN = r"""
_value:
  description: The derived names.
  type: dict
  contains:
    security_group: {description: The security group name (the cluster name)., type: str}
    iam_role: {description: The IAM role name., type: str}
    instance_profile: {description: The instance profile name., type: str}
    internal_bucket: {description: The bucket Toil uses for oversized boot configurations., type: str}
    kubernetes_cluster_tag: {description: The tag key that puts nodes in the Kubernetes cluster., type: str}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.names import derived_names, validate_cluster_name


def cluster_names(value):
    try:
        return derived_names(validate_cluster_name(value))
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"cluster_names": cluster_names}
