# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ssh arguments that reach a private worker through its cluster's leader, carrying the key and host-key options.

``ProxyJump`` (``ssh -J``) starts the jump hop's ssh with only ``-l``, ``-p``, ``-F`` and ``-v`` (OpenSSH ssh.c, where
ProxyJump becomes ``ssh -l user -p port -F file -W '[%h]:%p' host``): the ``-i`` and ``-o StrictHostKeyChecking``/
``UserKnownHostsFile`` Ansible gives the worker's connection never reach the leader hop. A ``ProxyCommand`` names them
itself. ssh runs it through the shell after expanding its ``%`` tokens, so every value is checked, each word
shell-quoted and each ``%`` doubled; Ansible splits ``ansible_ssh_common_args`` shell-style, so the option is quoted once more.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.ssh_config import check_identity_file, check_user, quote

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")

# What the toil_ec2 inventory sets as a worker's ansible_ssh_common_args (a template of constant text, trusted): the
# jump (data from AWS, never templated) goes through the filter with the key and host-key settings of this run.
JUMP_ARGS_TEMPLATE = (
    "{{ toil_jump | toil.cluster.ssh_jump_args("
    "private_key_file=ansible_ssh_private_key_file | default(ansible_private_key_file | default('')), "
    "host_key_checking=ansible_ssh_host_key_checking | default(ansible_host_key_checking"
    " | default(lookup('ansible.builtin.config', 'HOST_KEY_CHECKING'))), "
    "known_hosts_file=toil_known_hosts_file | default('')) }}"
)


def _literal(text):
    """A value ssh's token expansion of the ProxyCommand gives back unchanged."""
    return text.replace("%", "%%")


def check_jump(jump):
    """``{"host": leader IP address, "user": login name, "instance_id": leader's ID}``, each checked."""
    if not isinstance(jump, dict):
        raise ToilInputError(f"toil_jump must be a mapping with host, user and instance_id, got {ascii(jump)[:80]}.")
    try:
        host = str(ipaddress.ip_address(jump.get("host")))
    except ValueError:
        raise ToilInputError(f"toil_jump: host must be the leader's IP address, got {ascii(jump.get('host'))[:80]}.") from None
    instance_id = jump.get("instance_id")
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        raise ToilInputError(f"toil_jump: instance_id must be an EC2 instance ID, got {ascii(instance_id)[:80]}.")
    return {"host": host, "user": check_user(jump.get("user")), "instance_id": instance_id}


def proxy_command(jump, private_key_file="", host_key_checking=True, known_hosts_file=""):
    """The ProxyCommand (shell text, tokens escaped) that opens ssh to the leader and forwards to ``%h:%p``."""
    jump = check_jump(jump)
    if not isinstance(host_key_checking, bool):
        raise ToilInputError(f"host_key_checking must be true or false, got {ascii(host_key_checking)[:80]}.")
    key = check_identity_file(private_key_file)
    known_hosts = check_identity_file(known_hosts_file)
    words = ["-q", "-l", jump["user"]]
    if key:
        words += ["-i", key, "-o", "IdentitiesOnly=yes"]
    if not host_key_checking:
        words += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    elif known_hosts:
        # The leader's pinned key, by instance ID as configure_cluster pins it (docs/host-keys.md).
        words += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={quote(known_hosts)}"]
        words += ["-o", f"HostKeyAlias={jump['instance_id']}", "-o", "CheckHostIP=no"]
    words += ["--", jump["host"]]
    return "ssh -W '[%h]:%p' " + " ".join(shlex.quote(_literal(word)) for word in words)


def jump_args(jump, private_key_file="", host_key_checking=True, known_hosts_file=""):
    """``-o ProxyCommand=...`` as one word of ``ansible_ssh_common_args``."""
    return "-o " + shlex.quote("ProxyCommand=" + proxy_command(jump, private_key_file, host_key_checking, known_hosts_file))
