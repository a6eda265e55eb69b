# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The leader hop's ssh arguments (issue #19): the key and host-key options reach it, and no value reaches a shell.

Each test takes the arguments the way they are used: Ansible's ssh connection splits ``ansible_ssh_common_args`` with
``shlex.split``; ssh expands the ProxyCommand's tokens (``%%``, ``%h``, ``%p``: readconf.c/sshconnect.c's
percent_expand) and runs it with ``$SHELL -c "exec <command>"`` (sshconnect.c ssh_proxy_connect). Here a real
``/bin/sh`` runs it, with ``ssh`` replaced by a printer of its arguments.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.filter.ssh_jump_args import ssh_jump_args
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.ssh_config import quote
from ansible_collections.toil.cluster.plugins.module_utils.ssh_jump import jump_args

JUMP = {"host": "54.0.0.1", "user": "admin", "instance_id": "i-0123456789abcdef0"}


def expand_tokens(command, host="10.0.0.2", port="22"):
    """ssh's percent_expand of a ProxyCommand: ``%%`` -> ``%``, ``%h`` -> host, ``%p`` -> port; another token is an error."""
    out, i = [], 0
    while i < len(command):
        if command[i] != "%":
            out.append(command[i])
            i += 1
            continue
        token = command[i + 1]
        out.append({"%": "%", "h": host, "p": port}[token])
        i += 2
    return "".join(out)


def run_proxy_command(args, tmp_path):
    """The argv the leader hop's ssh would get: the ProxyCommand, as ssh runs it, through /bin/sh."""
    words = shlex.split(args)
    assert len(words) == 2 and words[0] == "-o" and words[1].startswith("ProxyCommand=")
    command = expand_tokens(words[1].removeprefix("ProxyCommand="))
    assert command.startswith("ssh ")
    printer = tmp_path / "ssh"
    printer.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    printer.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    result = subprocess.run(["/bin/sh", "-c", f"exec {command}"], capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    return json.loads(result.stdout)


def test_the_leader_hop_gets_the_key_and_the_host_key_options(tmp_path):
    argv = run_proxy_command(jump_args(JUMP, "/keys/toil key", True, "/run/known hosts"), tmp_path)
    assert argv == [
        "-W", "[10.0.0.2]:22", "-q", "-l", "admin",
        "-i", "/keys/toil key", "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", 'UserKnownHostsFile="/run/known hosts"',
        "-o", "HostKeyAlias=i-0123456789abcdef0", "-o", "CheckHostIP=no",
        "--", "54.0.0.1",
    ]  # fmt: skip
    assert run_proxy_command(jump_args(JUMP, "", False, ""), tmp_path) == [
        "-W", "[10.0.0.2]:22", "-q", "-l", "admin",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "--", "54.0.0.1",
    ]  # fmt: skip
    # Host key checking on, no pinned file: ssh's own known_hosts, as for the worker hop.
    assert run_proxy_command(jump_args(JUMP), tmp_path) == ["-W", "[10.0.0.2]:22", "-q", "-l", "admin", "--", "54.0.0.1"]


@pytest.mark.parametrize(
    "key",
    ["$(touch pwned)", "`touch pwned`", "k'; touch pwned; '", 'k"; touch pwned; "', "k && touch pwned", "%h%p%%", "-oProxyCommand=touch pwned"],
)
def test_hostile_key_paths_stay_one_argument(key, tmp_path):
    argv = run_proxy_command(jump_args(JUMP, key, True, key), tmp_path)
    assert argv[argv.index("-i") + 1] == key  # ssh's own token expansion of -i is what the worker hop's key gets too
    assert f"UserKnownHostsFile={quote(key)}" in argv  # one ssh_config word, as ssh's argv_split reads it
    assert not (tmp_path / "pwned").exists()
    assert argv[-2:] == ["--", "54.0.0.1"]


@pytest.mark.parametrize(
    ("jump", "message"),
    [
        (dict(JUMP, host="54.0.0.1; touch pwned"), "host must be the leader's IP address"),
        (dict(JUMP, host="evil.example.com"), "host must be the leader's IP address"),
        (dict(JUMP, host="-oProxyCommand=x"), "host must be the leader's IP address"),
        (dict(JUMP, user="-oProxyCommand=touch pwned"), "ssh_user must be a user name"),
        (dict(JUMP, user="admin touch"), "ssh_user must be a user name"),
        (dict(JUMP, instance_id="i-1 -oX"), "instance_id must be an EC2 instance ID"),
        ("54.0.0.1", "toil_jump must be a mapping"),
    ],
)
def test_hostile_aws_values_are_refused(jump, message):
    with pytest.raises(ToilInputError, match=message):
        jump_args(jump)


def test_line_breaks_in_paths_are_refused():
    with pytest.raises(ToilInputError, match="control characters"):
        jump_args(JUMP, "key\nProxyCommand touch pwned")


def test_filter_reads_ansible_booleans_and_fails_clearly():
    assert "StrictHostKeyChecking=no" in ssh_jump_args(JUMP, host_key_checking="False")
    assert "StrictHostKeyChecking" not in ssh_jump_args(JUMP, host_key_checking=True)
    with pytest.raises(AnsibleFilterError, match="host_key_checking must be true or false"):
        ssh_jump_args(JUMP, host_key_checking="maybe")
    with pytest.raises(AnsibleFilterError, match="ssh_jump_args: toil_jump: host"):
        ssh_jump_args(dict(JUMP, host="x"))


def test_filter_takes_the_run_key_when_none_is_given(monkeypatch):
    """Ansible templates connection variables before --private-key reaches them: the filter reads the run's key itself."""
    from ansible import context  # noqa: PLC0415
    from ansible.module_utils.common.collections import ImmutableDict  # noqa: PLC0415

    monkeypatch.setattr(context, "CLIARGS", ImmutableDict(private_key_file="/keys/from the command line"))
    assert "-i '/keys/from the command line'" in shlex.split(ssh_jump_args(JUMP))[1]
    assert "-i /keys/given" in shlex.split(ssh_jump_args(JUMP, private_key_file="/keys/given"))[1]
