# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: zone_region
short_description: The AWS region of an availability zone, as Toil derives it
version_added: 0.1.0
description:
  - The region of an availability zone, C(us-west-2a) -> C(us-west-2), with Toil's rule (a region, then one letter);
    without a zone, O(region); without either, an empty string. A zone wins over O(region), as in every module of
    this collection.
  - Anything but an availability zone is refused, as Toil refuses it; with O(strict=false) it gives an empty string
    instead, for an assertion with a message of its own.
  - The environment is not read; playbooks default their zone to C(TOIL_AWS_ZONE) themselves.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The availability zone, or an empty string.
    type: str
    required: true
  region:
    description: The region to give when there is no zone.
    type: str
  strict:
    description: Whether a zone that is not an availability zone is an error (else it gives an empty string).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: The region to search
  ansible.builtin.debug:
    msg: "{{ zone | toil.cluster.zone_region(region) }}"
  # us-west-2 for zone=us-west-2a; region when zone is empty

- name: Refuse anything but an availability zone, with a message of one's own
  ansible.builtin.assert:
    that: zone | toil.cluster.zone_region(strict=false) | length > 0
    fail_msg: "zone must be an availability zone like us-west-2a, got {{ zone }}."
"""

RETURN = r"""
_value:
  description: The region, or an empty string.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.zones import resolve_region


def zone_region(value, region=None, strict=True):
    try:
        return resolve_region(value or None, region or None, environ={}) or ""
    except ToilInputError as error:
        if not strict:
            return ""
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"zone_region": zone_region}
