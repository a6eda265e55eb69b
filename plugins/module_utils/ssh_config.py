# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""An OpenSSH client configuration for a cluster (the ``ssh_config`` playbook), rendered from checked values.

Tags come from anyone who may tag an instance, variables from anyone who may set them: none of them may add a
directive. Every value is checked against what ssh_config(5) takes for its directive and written on its own
line; free text (a pool tag, an instance type) only reaches comments, reduced to a safe alphabet. ``ssh_options``
(Toil's ``--sshOption``) are limited to SSH_OPTIONS: none of them runs a command, loads code, reads another
configuration or changes which host is reached.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
# POSIX portable user names (what useradd takes), not starting with '-' so it is never an option.
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
# Control characters: C0, DEL, C1, and what some readers also take for a line break.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# One value token of an allowed option: no quote, backslash, '#' (comment), '$' or control character.
_OPTION_VALUE = re.compile(r"[A-Za-z0-9._,:@/~%+=*\[\]^!-]+( [A-Za-z0-9._,:@/~%+=*\[\]^!-]+)*")
_OPTION = re.compile(r"\s*([A-Za-z0-9]+)(\s*=\s*|\s+)(.*?)\s*")
_SAFE_TEXT = re.compile(r"[^A-Za-z0-9._:/+-]")
LIVE_STATES = ("pending", "running")

# Toil's --sshOption as ssh_config lines: options about how to connect and authenticate, never about what to run
# or where to go. Left out on purpose: Host, Match, Include (structure, other files), ProxyCommand, ProxyJump,
# ProxyUseFdpass, LocalCommand, PermitLocalCommand, KnownHostsCommand, RemoteCommand (commands),
# PKCS11Provider, SecurityKeyProvider (load a library), HostName, Tunnel, TunnelDevice, SetEnv, SendEnv.
SSH_OPTIONS = {
    name.lower(): name
    for name in (
        "AddKeysToAgent",
        "AddressFamily",
        "BatchMode",
        "CASignatureAlgorithms",
        "CertificateFile",
        "CheckHostIP",
        "Ciphers",
        "Compression",
        "ConnectionAttempts",
        "ConnectTimeout",
        "ControlMaster",
        "ControlPath",
        "ControlPersist",
        "DynamicForward",
        "ExitOnForwardFailure",
        "FingerprintHash",
        "ForwardAgent",
        "ForwardX11",
        "ForwardX11Timeout",
        "ForwardX11Trusted",
        "GatewayPorts",
        "GlobalKnownHostsFile",
        "HashKnownHosts",
        "HostKeyAlgorithms",
        "HostKeyAlias",
        "IdentitiesOnly",
        "IdentityAgent",
        "IdentityFile",
        "IPQoS",
        "KbdInteractiveAuthentication",
        "KexAlgorithms",
        "LocalForward",
        "LogLevel",
        "MACs",
        "NoHostAuthenticationForLocalhost",
        "NumberOfPasswordPrompts",
        "PasswordAuthentication",
        "Port",
        "PreferredAuthentications",
        "PubkeyAcceptedAlgorithms",
        "PubkeyAcceptedKeyTypes",
        "PubkeyAuthentication",
        "RekeyLimit",
        "RemoteForward",
        "RequestTTY",
        "ServerAliveCountMax",
        "ServerAliveInterval",
        "StreamLocalBindUnlink",
        "StrictHostKeyChecking",
        "TCPKeepAlive",
        "UpdateHostKeys",
        "UserKnownHostsFile",
        "VerifyHostKeyDNS",
        "VisualHostKey",
    )
}


def _shown(value):
    return ascii(value)[:80]


def check_port(value, what):
    """A TCP port, 1-65535, given as an integer or its digits."""
    if isinstance(value, bool):
        raise ToilInputError(f"{what} must be a port number (1-65535), got {_shown(value)}.")
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise ToilInputError(f"{what} must be a port number (1-65535), got {_shown(value)}.")
    return int(text)


def check_user(value):
    if not isinstance(value, str) or not _USER.fullmatch(value):
        raise ToilInputError(f"ssh_user must be a user name (letters, digits, '_', '.', '-'; at most 32), got {_shown(value)}.")
    return value


def quote(value):
    """An ssh_config argument in double quotes: spaces and '#' stay in it, '\\' and '"' are escaped (OpenSSH's argv_split)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_identity_file(value):
    """A local path, written quoted; ssh still expands '~', %-tokens and ${VAR} in it (all local, no command)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or _CONTROL.search(value) or len(value) > 4096:
        raise ToilInputError(f"identity_file must be a path without control characters or line breaks, got {_shown(value)}.")
    return value


def check_ssh_option(option):
    """``Name value`` or ``Name=value`` -> ``Name value`` with Name in SSH_OPTIONS and a plain value."""
    if not isinstance(option, str) or _CONTROL.search(option):
        raise ToilInputError(f"ssh_options: {_shown(option)} is not one 'Name value' line (no line breaks or control characters).")
    match = _OPTION.fullmatch(option)
    if not match:
        raise ToilInputError(f"ssh_options: {_shown(option)} is not a 'Name value' line.")
    name, _sep, value = match.groups()
    if name.lower() not in SSH_OPTIONS:
        raise ToilInputError(
            f"ssh_options: {name} is not allowed (only options about how to connect, never Host, Match, Include or a command: "
            f"{', '.join(sorted(SSH_OPTIONS.values()))})."
        )
    if not _OPTION_VALUE.fullmatch(value):
        raise ToilInputError(
            f"ssh_options: the value of {name} must be words of letters, digits and ._,:@/~%+=*[]^!- separated by single spaces, got {_shown(value)}."
        )
    return f"{SSH_OPTIONS[name.lower()]} {value}"


def check_settings(cluster_name, ssh_user="admin", identity_file="", grafana_port=3000, prometheus_port=9090, insecure=False, ssh_options=()):
    """Every variable of the playbook, checked; a dict of the values to write."""
    if not isinstance(cluster_name, str) or _CONTROL.search(cluster_name):
        raise ToilInputError(f"cluster_name: {_shown(cluster_name)} is not a Toil cluster name.")
    try:
        name = validate_cluster_name(cluster_name)
    except ToilInputError as error:
        raise ToilInputError(f"cluster_name: {error}") from None
    if ssh_options is None:
        ssh_options = ()
    if isinstance(ssh_options, (str, bytes)) or not isinstance(ssh_options, Sequence):
        raise ToilInputError('ssh_options must be a list of "Name value" lines.')
    if not isinstance(insecure, bool):
        raise ToilInputError(f"insecure must be true or false, got {_shown(insecure)}.")
    return {
        "cluster_name": name,
        "ssh_user": check_user(ssh_user),
        "identity_file": check_identity_file(identity_file),
        "grafana_port": check_port(grafana_port, "grafana_port"),
        "prometheus_port": check_port(prometheus_port, "prometheus_port"),
        "insecure": insecure,
        "ssh_options": [check_ssh_option(option) for option in ssh_options],
    }


def _instance_id(value):
    if not isinstance(value, str) or not _INSTANCE_ID.fullmatch(value):
        raise ToilInputError(f"AWS gave {_shown(value)} as an instance ID, which is not one; nothing was written.")
    return value


def _address(value, instance_id):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ToilInputError(f"AWS gave {_shown(value)} as the address of {instance_id}, which is not an IP address; nothing was written.") from None


def comment_text(value, default="?"):
    """Free text (a tag) for a comment: the safe alphabet only, so it can never end the comment's line."""
    text = _SAFE_TEXT.sub("?", str(value or ""))[:64]
    return text or default


def render(cluster, settings, region=""):
    """The configuration for ``cluster`` (toil_cluster_info's cluster: ``leader``, ``workers``) and checked settings."""
    leader = cluster.get("leader") if isinstance(cluster, dict) else None
    if not leader:
        raise ToilInputError(f"Cluster {settings['cluster_name']} has no leader.")
    name = settings["cluster_name"]
    leader_id = _instance_id(leader.get("instance_id"))
    leader_address = _address(leader.get("public_ip") or leader.get("private_ip"), leader_id)
    workers = [w for w in cluster.get("workers") or () if w.get("state") in LIVE_STATES and w.get("private_ip")]
    grafana, prometheus = settings["grafana_port"], settings["prometheus_port"]
    lines = [
        f"# Written by toil.cluster.ssh_config for Toil cluster {name} ({comment_text(region, 'no region')}).",
        f"# ssh -F <this file> leader: the leader, with Grafana on http://localhost:{grafana}",
        f"# and Prometheus on http://localhost:{prometheus}; workers by instance ID, through the leader.",
        f"Host leader {name}-leader {leader_id}",
        f"  HostName {leader_address}",
        f"  LocalForward {grafana} localhost:3000",
        f"  LocalForward {prometheus} localhost:9090",
        "  ExitOnForwardFailure no",
    ]
    ids = [leader_id]
    for worker in workers:
        worker_id = _instance_id(worker.get("instance_id"))
        ids.append(worker_id)
        spot = " (spot)" if worker.get("preemptible") is True else ""
        lines += [
            "",
            f"# {comment_text(worker.get('pool'), 'worker')}{spot}, {comment_text(worker.get('instance_type'))}",
            f"Host {worker_id} {name}-{worker_id}",
            f"  HostName {_address(worker.get('private_ip'), worker_id)}",
            "  ProxyJump leader",
        ]
    lines += ["", f"Host leader {name}-leader {' '.join(ids)}", f"  User {settings['ssh_user']}"]
    if settings["identity_file"]:
        lines += [f"  IdentityFile {quote(settings['identity_file'])}", "  IdentitiesOnly yes"]
    if settings["insecure"]:
        lines += ["  StrictHostKeyChecking no", "  UserKnownHostsFile /dev/null"]
    else:
        lines += ["  StrictHostKeyChecking accept-new"]
    lines += ["  ServerAliveInterval 60"] + [f"  {option}" for option in settings["ssh_options"]]
    text = "\n".join(lines) + "\n"
    # The invariant everything above keeps: one directive or comment per line, nothing that reads as a break.
    if _CONTROL.sub("", text.replace("\n", "")) != text.replace("\n", ""):
        raise ToilInputError("ssh_config: a value holds a control character; nothing was written.")
    return text


def ssh_config(cluster, cluster_name, region="", **settings):
    """Check every setting, then render: what the ``toil.cluster.ssh_config`` filter returns."""
    return render(cluster, check_settings(cluster_name, **settings), region=region)
