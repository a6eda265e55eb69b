# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: ssh_jump_args
short_description: ssh arguments reaching a private worker through its leader, with the key and host-key options
version_added: 0.1.0
description:
  - Returns C(-o ProxyCommand="ssh -W [%h]:%p ... leader") for C(ansible_ssh_common_args). Unlike C(ProxyJump), the
    leader hop gets the private key and the host-key settings of the run.
  - The C(toil.cluster.toil_ec2) inventory (O(toil.cluster.toil_ec2#inventory:leader_as_bastion)) and C(configure_cluster) use it for workers reached on a
    private address; their C(toil_jump) variable is its input.
  - Every value is checked (the host an IP address, the user a login name, the instance ID an instance ID, paths
    without control characters), shell-quoted, and its C(%) escaped from ssh's tokens; a bad one fails the filter.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The jump, C({host, user, instance_id}) - the leader's address, login and instance ID.
    type: dict
    required: true
  private_key_file:
    description:
      - The private key for the leader hop (C(-i)).
      - When empty, the key of the run, as Ansible's ssh connection takes it - C(--private-key), else
        C(ANSIBLE_PRIVATE_KEY_FILE) or C(private_key_file) in C(ansible.cfg); without any, ssh's defaults and the agent.
    type: str
    default: ""
  host_key_checking:
    description: Whether the leader's host key is checked (else C(StrictHostKeyChecking=no)).
    type: bool
    default: true
  known_hosts_file:
    description:
      - A known_hosts file with the leader's key pinned by instance ID (C(HostKeyAlias)), as C(configure_cluster) writes;
        empty for ssh's own known_hosts.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Reach a worker through its leader with this key
  ansible.builtin.set_fact:
    ansible_ssh_common_args: "{{ toil_jump | toil.cluster.ssh_jump_args(private_key_file='~/.ssh/toil') }}"
"""

RETURN = r"""
_value:
  description: One C(-o ProxyCommand=...) option, quoted for Ansible's shell-style split of C(ansible_ssh_common_args).
  type: str
"""

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.ssh_jump import jump_args


def run_private_key_file():
    """The key given to this run (--private-key, else the configured default): a connection variable template cannot
    see the command line's key (Ansible templates connection variables before its play context adds it)."""
    return context.CLIARGS.get("private_key_file") or C.config.get_config_value("DEFAULT_PRIVATE_KEY_FILE") or ""


def ssh_jump_args(jump, private_key_file="", host_key_checking=True, known_hosts_file=""):
    private_key_file = private_key_file or run_private_key_file()
    try:
        checking = boolean(host_key_checking, strict=True)
    except TypeError:
        raise AnsibleFilterError(f"ssh_jump_args: host_key_checking must be true or false, got {host_key_checking!r}.") from None
    try:
        return jump_args(jump, private_key_file or "", checking, known_hosts_file or "")
    except ToilInputError as error:
        raise AnsibleFilterError(f"ssh_jump_args: {error}") from None


class FilterModule:
    def filters(self):
        return {"ssh_jump_args": ssh_jump_args}
