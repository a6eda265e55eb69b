# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: provider_id
short_description: A Kubernetes node's providerID on EC2, aws:///<zone>/<instance-id>, from checked values
version_added: 0.1.0
description:
  - With O(zone), the providerID of the instance O(_input) in that zone, as the AWS cloud provider writes it
    (C(aws:///us-west-2a/i-0123456789abcdef0)). The kubelet puts it in the Node's C(spec.providerID) only when given
    C(--provider-id); no cloud controller runs on these clusters, so the C(kubernetes) role gives it.
  - An O(_input) starting with C(aws:) is a whole providerID, checked and returned unchanged.
  - An empty O(_input) gives an empty string (a host the inventory did not describe), and so does an instance id
    without a zone (the id is still checked).
  - Anything else is refused with a clear error; the instance id must be C(i-) and 8 or 17 lowercase hex digits,
    the zone an EC2 zone name.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The instance id, or a whole providerID, or an empty string.
    type: str
    required: true
  zone:
    description: The instance's availability zone.
    type: str
"""

EXAMPLES = r"""
- name: The providerID of an inventory host
  ansible.builtin.debug:
    msg: "{{ toil_instance_id | toil.cluster.provider_id(toil_zone) }}"
  # aws:///us-west-2a/i-0123456789abcdef0
"""

RETURN = r"""
_value:
  description: The providerID, or an empty string.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.provider_id import provider_id as _provider_id
from ansible_collections.toil.cluster.plugins.module_utils.provider_id import validate_instance_id, validate_provider_id


def provider_id(value, zone=None):
    try:
        if value in (None, ""):
            return ""
        if isinstance(value, str) and value.startswith("aws:"):
            return validate_provider_id(value)
        if zone in (None, ""):  # an instance id without its zone: checked, but no providerID can be written
            validate_instance_id(value)
            return ""
        return _provider_id(value, zone)
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"provider_id": provider_id}
