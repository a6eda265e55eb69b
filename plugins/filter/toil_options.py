# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: toil_options
short_description: Check a workflow's extra Toil options against those the collection sets
version_added: 0.1.0
description:
  - Returns the list unchanged when none of its options sets one that the playbook C(toil.cluster.run_workflow)
    sets itself (C(--batchSystem), C(--jobStore) or C(--jobstore), C(--restart)) or one that cannot work on its
    clusters, else fails.
  - C(--metrics) is refused; Toil's leader would start its own mtail, Prometheus and Grafana Docker containers,
    and the leader runs no Docker. The dashboard comes from C(metrics=true) at launch (the C(toil.cluster.dashboard)
    role) instead.
  - Toil's argument parser accepts any unambiguous prefix of a long option (C(--batchSys) is C(--batchSystem))
    and the last occurrence wins, so every prefix of a managed option is refused too.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The extra options, as a list of strings (C(["--retryCount", "2"])).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse options that would replace the playbook's own
  ansible.builtin.set_fact:
    checked_options: "{{ toil_options | toil.cluster.toil_options }}"
"""

RETURN = r"""
_value:
  description: The options, unchanged.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.toil_options import check_toil_options


def toil_options(value):
    try:
        return check_toil_options(value)
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"toil_options": toil_options}
