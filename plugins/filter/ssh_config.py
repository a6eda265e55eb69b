# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: ssh_config
short_description: An OpenSSH client configuration for a Toil cluster, from checked values only
version_added: 0.1.0
description:
  - The configuration the C(toil.cluster.ssh_config) playbook writes, in place of C(toil ssh-cluster) - C(leader) (and
    C(<cluster>-leader), the leader's instance ID) with Grafana and Prometheus forwarded, and each pending or running
    worker by instance ID, through the leader (C(ProxyJump leader)).
  - No tag and no option can add a directive. Instance IDs must be instance IDs and addresses IP addresses (else the
    filter fails); the pool tag and the instance type only reach comments, reduced to letters, digits and C(._:/+-).
  - Each option is checked against what ssh_config(5) takes for its directive, and a bad one fails with a message
    naming it, before anything is written.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description:
      - The cluster, as M(toil.cluster.toil_cluster_info) returns it in C(clusters) (C(leader) and C(workers) with
        C(instance_id), C(state), C(public_ip), C(private_ip), C(pool), C(preemptible), C(instance_type)).
    type: dict
    required: true
  cluster_name:
    description: The cluster's name (Toil's rules), used in the host aliases C(<cluster>-leader) and C(<cluster>-<instance ID>).
    type: str
    required: true
  region:
    description: The cluster's region, for the file's first comment.
    type: str
    default: ""
  ssh_user:
    description: The user on every node (C(User)), a POSIX user name - letters, digits, C(_), C(.), C(-), not starting with C(-) or a digit.
    type: str
    default: admin
  identity_file:
    description:
      - The private key (C(IdentityFile), with C(IdentitiesOnly yes)); empty for none. Any path without control characters
        or line breaks, written in double quotes; ssh expands C(~), its C(%) tokens and C(${VAR}) in it.
    type: str
    default: ""
  grafana_port:
    description: The local port forwarded to Grafana on the leader (Toil's C(--grafana_port)), 1 to 65535.
    type: int
    default: 3000
  prometheus_port:
    description: The local port forwarded to Prometheus on the leader, 1 to 65535.
    type: int
    default: 9090
  insecure:
    description: Toil's C(--insecure) - no host key checking (else C(StrictHostKeyChecking accept-new)).
    type: bool
    default: false
  ssh_options:
    description:
      - Toil's C(--sshOption), as C(Name value) or C(Name=value) lines added to every host.
      - Only options about how to connect and authenticate are allowed (C(ConnectTimeout), C(ServerAliveInterval),
        C(StrictHostKeyChecking), C(UserKnownHostsFile), C(LocalForward), C(ForwardAgent), C(Ciphers), C(LogLevel), C(Port),
        C(ControlPath) and the like). Never C(Host), C(Match), C(Include), C(ProxyCommand), C(ProxyJump), C(LocalCommand),
        C(PermitLocalCommand), C(KnownHostsCommand), C(RemoteCommand), C(PKCS11Provider), C(SecurityKeyProvider), C(HostName),
        C(SetEnv) or C(SendEnv) - they run commands, load code, read other files or change the host reached.
      - A value is words of letters, digits and C(._,:@/~%+=*[]^!-) separated by single spaces (no quotes, C(#) or C($)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Write the configuration (ssh -G checks it before it replaces the old one)
  ansible.builtin.copy:
    dest: ~/.ssh/toil-my-cluster.config
    mode: "0600"
    validate: ssh -G -F %s leader
    content: >-
      {{ check_cluster_info.clusters[0] | toil.cluster.ssh_config(cluster_name='my-cluster', region='us-west-2',
         identity_file='~/.ssh/toil', ssh_options=['ConnectTimeout 10']) }}
"""

RETURN = r"""
_value:
  description: The configuration, one directive or comment per line, ending with a newline.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.ssh_config import ssh_config as render_ssh_config


def ssh_config(
    cluster,
    cluster_name,
    region="",
    ssh_user="admin",
    identity_file="",
    grafana_port=3000,
    prometheus_port=9090,
    insecure=False,
    ssh_options=None,
):
    try:
        return render_ssh_config(
            cluster,
            cluster_name,
            region=region or "",
            ssh_user=ssh_user,
            identity_file=identity_file,
            grafana_port=grafana_port,
            prometheus_port=prometheus_port,
            insecure=insecure,
            ssh_options=() if ssh_options is None else ssh_options,
        )
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"ssh_config": ssh_config}
