# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: tag_key
short_description: The EC2 tag key behind one of a node's facts
version_added: 0.1.0
description:
  - The key of the tag that P(toil.cluster.node_facts#filter) reads a fact from, for a playbook that writes the tag
    or a configuration that filters nodes by it (Prometheus's EC2 discovery).
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The fact.
    type: str
    required: true
    choices: [cluster, node_type, pool, preemptible, labels, joined]
"""

EXAMPLES = r"""
- name: Mark a node as joined
  amazon.aws.ec2_tag:
    resource: "{{ toil_instance_id }}"
    tags: "{{ {'joined' | toil.cluster.tag_key: 'true'} }}"
  # tags: {toil.cluster/joined: "true"}
"""

RETURN = r"""
_value:
  description: "The tag key: C(clusterName), C(ToilNodeType), C(toil.cluster/pool), C(toil.cluster/preemptible),
    C(toil.cluster/labels) or C(toil.cluster/joined)."
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.tags import NODE_FACT_TAGS


def tag_key(value):
    try:
        return NODE_FACT_TAGS[value]
    except (KeyError, TypeError):
        raise AnsibleFilterError(f"'{value}' is not a fact with a tag: expected one of {', '.join(NODE_FACT_TAGS)}.") from None


class FilterModule:
    def filters(self):
        return {"tag_key": tag_key}
