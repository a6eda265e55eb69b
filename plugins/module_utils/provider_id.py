# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A Kubernetes node's ``spec.providerID`` on EC2: ``aws:///<zone>/<instance-id>``, written and read.

The kubelet sets ``spec.providerID`` when the Node is first registered, from ``--provider-id`` (or
``providerID`` in its KubeletConfiguration), and only then (pkg/kubelet/kubelet_node_status.go,
``initialNode``); otherwise only a cloud controller (``--cloud-provider=external`` and the AWS cloud
controller manager) would fill it in, and none runs on these clusters. So the ``kubernetes`` role
gives every node its ID, in the AWS cloud provider's format, from the inventory's instance id and
zone: both come from EC2 tags' neighbours in the inventory and are checked whole before use.
"""

from __future__ import annotations

import re

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

# EC2's instance ids: "i-" and 8 (before 2016) or 17 hex digits; fullmatch only ($ accepts a trailing newline).
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8}(?:[0-9a-f]{9})?")
# Availability zones (us-west-2a), Local Zones (us-west-2-lax-1a) and Wavelength Zones (us-east-1-wl1-bos-wlz-1).
ZONE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]+(?:[a-z]|(?:-[a-z0-9]+)+)")
# The AWS cloud provider's form: aws:///<zone>/<id>; its zone-less aws:////<id> is read too.
_PROVIDER_ID = re.compile(r"aws:///((?:" + ZONE.pattern + r")?)/(" + INSTANCE_ID.pattern + r")")
# What the AWS cloud provider reads (KubernetesInstanceID.MapToAWSInstanceID): aws://[host]/[zone/]<id>.
_READ_PROVIDER_ID = re.compile(r"aws://[a-z0-9-]*/+(?:[a-z0-9-]+/)?(" + INSTANCE_ID.pattern + r")")


def validate_instance_id(value, what="instance id"):
    if not isinstance(value, str) or not INSTANCE_ID.fullmatch(value):
        raise ToilInputError(f"{what} {value!r} is not an EC2 instance id (i- and 8 or 17 lowercase hex digits).")
    return value


def validate_zone(value, what="zone"):
    if not isinstance(value, str) or len(value) > 64 or not ZONE.fullmatch(value):
        raise ToilInputError(f"{what} {value!r} is not an EC2 availability zone (like us-west-2a).")
    return value


def provider_id(instance_id, zone):
    """``aws:///<zone>/<instance-id>`` from a checked instance id and zone."""
    return f"aws:///{validate_zone(zone)}/{validate_instance_id(instance_id)}"


def validate_provider_id(value):
    """A whole providerID in the AWS form, returned unchanged; anything else is refused."""
    if not isinstance(value, str) or not _PROVIDER_ID.fullmatch(value):
        raise ToilInputError(f"providerID {value!r} is not aws:///<zone>/<instance id> (like aws:///us-west-2a/i-0123456789abcdef0).")
    return value


def instance_of(value):
    """The instance id in a node's providerID, or None when it is missing or not an EC2 one (never an error:
    a node's spec is the API's, not ours)."""
    match = _READ_PROVIDER_ID.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None
