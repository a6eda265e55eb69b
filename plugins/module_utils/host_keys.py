# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A node's SSH host keys, from its console output (EC2 GetConsoleOutput), to pin before the first ssh.

cloud-init's ``keys_to_console`` module (cc_keys_to_console.py, script tools/write-ssh-key-fingerprints) writes the
host's public keys to the serial console at the end of the first boot, between two whole-line markers:

    -----BEGIN SSH HOST KEY KEYS-----
    ecdsa-sha2-nistp256 AAAA... root@ip-10-0-0-1
    ssh-ed25519 AAAA... root@ip-10-0-0-1
    -----END SSH HOST KEY KEYS-----

(the same lines may come again with logger's ``ec2: `` tag). Only the instance writes its console and AWS serves it
over the authenticated API, so a man in the middle of the ssh connection cannot forge it. docs/host-keys.md has the
details. The parser is strict on purpose: markers are whole lines (bare or ``ec2: ``), key lines in a block carry
the same prefix and must be valid OpenSSH public keys (ssh_keys.parse_public_key), a block without its end is
ignored, and two complete blocks that disagree are refused rather than chosen between.
"""

from __future__ import annotations

import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.ssh_keys import parse_public_key

BEGIN_KEYS = "-----BEGIN SSH HOST KEY KEYS-----"
END_KEYS = "-----END SSH HOST KEY KEYS-----"
# What may stand before a marker: nothing (cloud-init's own copy on the console) or logger's tag (-t ec2).
_PREFIXES = ("", "ec2: ")
# Host key types: user-key and security-key types are not host keys.
HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
DEFAULT_DELAY = 10


class HostKeysError(ToilInputError):
    """The console output names keys that cannot be trusted (two blocks that disagree)."""


def _marker(line, marker):
    """The prefix before ``marker`` when the line is exactly a prefix and the marker, else None."""
    for prefix in _PREFIXES:
        if line == prefix + marker:
            return prefix
    return None


def parse_console_host_keys(text):
    """The host keys of a console output, as ``type base64`` strings in the order written ([] when there are none).

    ``text`` is the decoded console output. Raises HostKeysError when two complete blocks name different keys.
    """
    blocks = []
    current = None  # (prefix, keys) of the open block
    for raw in (text or "").split("\n"):
        line = raw.rstrip("\r").rstrip(" \t")
        if current is None:
            prefix = _marker(line, BEGIN_KEYS)
            if prefix is not None:
                current = (prefix, [])
            continue
        prefix, keys = current
        if _marker(line, END_KEYS) == prefix:
            blocks.append(keys)
            current = None
            continue
        if _marker(line, BEGIN_KEYS) is not None:  # a new block before this one ended: this one was cut short
            current = (_marker(line, BEGIN_KEYS), [])
            continue
        if not line.startswith(prefix):
            continue
        key = _host_key(line[len(prefix) :])
        if key and key not in keys:
            keys.append(key)
    found = [keys for keys in blocks if keys]
    if not found:
        return []
    if any(set(keys) != set(found[0]) for keys in found[1:]):
        raise HostKeysError("the console output has two SSH host key blocks that name different keys")
    return found[-1]


def _host_key(line):
    """``type base64`` of a valid host key line, else None (junk in a block is skipped, never trusted)."""
    try:
        checked = parse_public_key(line, "host key")
    except ToilInputError:
        return None
    key_type, data = checked.split(" ")[:2]
    return f"{key_type} {data}" if key_type in HOST_KEY_TYPES else None


def console_text(answer):
    """GetConsoleOutput's ``Output``: base64 on the wire, decoded by botocore (its handler decode_console_output,
    invalid UTF-8 replaced); absent while the instance has written nothing yet."""
    output = answer.get("Output")
    return output if isinstance(output, str) else ""


def console_output(ec2, instance_id):
    """The instance's latest console output (``Latest``, Nitro only), else EC2's buffered copy."""
    try:
        return console_text(ec2.get_console_output(InstanceId=instance_id, Latest=True, aws_retry=True))
    except is_boto3_error_code(("UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination")):
        pass  # not a Nitro instance: only the buffered copy
    return console_text(ec2.get_console_output(InstanceId=instance_id, aws_retry=True))


def wait_for_host_keys(ec2, instance_ids, timeout=0, delay=DEFAULT_DELAY, sleep=time.sleep, clock=time.monotonic):
    """``({instance_id: [keys]}, {instance_id: why not})``: each instance's keys, read until they appear or
    ``timeout`` seconds pass (cloud-init writes them at the end of the first boot; EC2 may serve the output
    minutes later). An instance with two disagreeing blocks is not waited for."""
    deadline = clock() + max(0, int(timeout))
    found, refused = {}, {}
    pending = list(dict.fromkeys(instance_ids))
    while True:
        for instance_id in list(pending):
            try:
                keys = parse_console_host_keys(console_output(ec2, instance_id))
            except HostKeysError as error:
                refused[instance_id] = str(error)
                pending.remove(instance_id)
                continue
            if keys:
                found[instance_id] = keys
                pending.remove(instance_id)
        if not pending or clock() >= deadline:
            break
        sleep(min(delay, max(0.0, deadline - clock())))
    for instance_id in pending:
        refused[instance_id] = f"no SSH host keys in its console output after {int(timeout)} s (cloud-init's keys_to_console writes them at first boot)"
    return found, refused


def known_hosts(keys_by_instance):
    """known_hosts lines keyed by instance ID (ssh's ``HostKeyAlias``), sorted for a stable file."""
    return "".join(f"{instance_id} {key}\n" for instance_id in sorted(keys_by_instance) for key in keys_by_instance[instance_id])


def cluster_host_keys(ec2, cluster, instance_ids=None, timeout=0, delay=DEFAULT_DELAY, sleep=time.sleep):
    """What ``toil_cluster_info`` adds with ``host_keys``: ``host_keys``, ``host_keys_missing`` and ``known_hosts``.

    ``instance_ids`` (default: every live node of the cluster) must be the cluster's own nodes: nothing else is read.
    """
    live = [host["vars"]["toil_instance_id"] for host in cluster.get("hosts") or () if host["vars"].get("toil_state") in ("pending", "running")]
    if instance_ids is None:
        wanted = live
    else:
        strangers = sorted(set(instance_ids) - set(live))
        if strangers:
            raise ToilInputError(f"host_keys_instances: {', '.join(strangers)} not a live node of cluster {cluster['name']}.")
        wanted = list(instance_ids)
    found, missing = wait_for_host_keys(ec2, wanted, timeout, delay, sleep)
    return {"host_keys": found, "host_keys_missing": missing, "known_hosts": known_hosts(found)}
