# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The ssh configuration of the ssh_config playbook (issue #16, point 2): no tag or variable adds a directive."""

from __future__ import annotations

import os
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.filter.ssh_config import ssh_config as ssh_config_filter
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.ssh_config import SSH_OPTIONS, check_settings, quote, render, ssh_config

INJECTIONS = [
    "\nHost *\n  ProxyCommand touch /tmp/pwned",
    "\rHost *\r  ProxyCommand touch /tmp/pwned",
    "\r\nProxyCommand x",
    "\x00",
    "\x85Host *",
    "\u2028Host *",
]


def cluster(pool="t3-large", instance_type="t3.large", **worker):
    return {
        "leader": {"instance_id": "i-0123456789abcdef0", "public_ip": "54.1.2.3", "private_ip": "10.0.0.1", "state": "running"},
        "workers": [
            {
                "instance_id": "i-0123456789abcdef1",
                "private_ip": "10.0.0.2",
                "state": "running",
                "pool": pool,
                "preemptible": False,
                "instance_type": instance_type,
                **worker,
            },
            {"instance_id": "i-0123456789abcdef2", "private_ip": "10.0.0.3", "state": "terminated", "pool": "gone"},
            {"instance_id": "i-0123456789abcdef3", "private_ip": None, "state": "pending", "pool": "no-ip-yet"},
        ],
    }


def ssh_g(tmp_path, text, host):
    path = tmp_path / "config"
    path.write_text(text)
    out = subprocess.run(["ssh", "-G", "-F", str(path), host], capture_output=True, text=True, check=True).stdout
    return [line.split(" ", 1) for line in out.splitlines()]


def directives(text):
    return [line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_configuration_as_before(tmp_path):
    text = ssh_config(cluster(), "pb-c", region="us-west-2", identity_file="~/.ssh/toil", ssh_options=["ConnectTimeout=10"])
    assert "Host leader pb-c-leader i-0123456789abcdef0\n  HostName 54.1.2.3\n" in text
    assert "# t3-large, t3.large\nHost i-0123456789abcdef1 pb-c-i-0123456789abcdef1\n  HostName 10.0.0.2\n  ProxyJump leader\n" in text
    assert "abcdef2" not in text and "abcdef3" not in text  # gone, or without an address yet
    assert '  IdentityFile "~/.ssh/toil"\n  IdentitiesOnly yes\n' in text
    assert text.endswith("  ServerAliveInterval 60\n  ConnectTimeout 10\n")
    resolved = dict(ssh_g(tmp_path, text, "i-0123456789abcdef1"))
    assert resolved["hostname"] == "10.0.0.2" and resolved["proxyjump"] == "leader" and resolved["connecttimeout"] == "10"
    assert resolved["identityfile"].endswith("/.ssh/toil")


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize("field", ["pool", "instance_type"])
def test_tags_only_reach_comments(tmp_path, field, injection):
    text = ssh_config(cluster(**{field: f"t3-large{injection}"}), "pb-c", region="us-west-2")
    assert directives(text) == directives(ssh_config(cluster(), "pb-c", region="us-west-2"))
    assert all(" " <= ch <= "~" for ch in text.replace("\n", ""))
    for host in ("leader", "i-0123456789abcdef1", "anything"):
        assert "proxycommand" not in dict(ssh_g(tmp_path, text, host))


@pytest.mark.parametrize(
    "worker",
    [
        {"instance_id": "i-0123456789abcdef1\nHost *"},
        {"instance_id": "i-nope"},
        {"private_ip": "10.0.0.2\n  ProxyCommand x"},
        {"private_ip": "evil.example.com"},
    ],
)
def test_aws_values_that_are_not_ids_or_addresses_are_refused(worker):
    with pytest.raises(ToilInputError, match="AWS gave .* nothing was written"):
        ssh_config(cluster(**worker), "pb-c")


BAD_SETTINGS = [
    ({"cluster_name": "pb-c\nHost *"}, "cluster_name"),
    ({"cluster_name": "Bad_Name"}, "cluster_name"),
    ({"ssh_user": "admin\nProxyCommand touch /tmp/pwned"}, "ssh_user must be a user name"),
    ({"ssh_user": "admin\n"}, "ssh_user must be a user name"),
    ({"ssh_user": "-oProxyCommand=x"}, "ssh_user must be a user name"),
    ({"ssh_user": "ad min"}, "ssh_user must be a user name"),
    ({"identity_file": "~/.ssh/toil\nProxyCommand touch /tmp/pwned"}, "identity_file must be a path without control characters"),
    ({"identity_file": "~/.ssh/toil\rProxyCommand touch /tmp/pwned"}, "identity_file must be a path without control characters"),
    ({"identity_file": "~/.ssh/toil\u2028x"}, "identity_file must be a path without control characters"),
    ({"grafana_port": "http"}, "grafana_port must be a port number"),
    ({"grafana_port": 0}, "grafana_port must be a port number"),
    ({"prometheus_port": 65536}, "prometheus_port must be a port number"),
    ({"prometheus_port": "9090\nHost *"}, "prometheus_port must be a port number"),
    ({"prometheus_port": True}, "prometheus_port must be a port number"),
    ({"insecure": "yes"}, "insecure must be true or false"),
    ({"ssh_options": "ConnectTimeout 10"}, "ssh_options must be a list"),
    ({"ssh_options": ["ProxyCommand touch /tmp/pwned"]}, "ProxyCommand is not allowed"),
    ({"ssh_options": ["proxycommand=touch /tmp/pwned"]}, "proxycommand is not allowed"),
    ({"ssh_options": ["Match exec true"]}, "Match is not allowed"),
    ({"ssh_options": ["Include /tmp/x"]}, "Include is not allowed"),
    ({"ssh_options": ["Host *"]}, "Host is not allowed"),
    ({"ssh_options": ["LocalCommand touch /tmp/pwned"]}, "LocalCommand is not allowed"),
    ({"ssh_options": ["KnownHostsCommand /bin/true"]}, "KnownHostsCommand is not allowed"),
    ({"ssh_options": ["PKCS11Provider /tmp/evil.so"]}, "PKCS11Provider is not allowed"),
    ({"ssh_options": ["ProxyJump evil.example.com"]}, "ProxyJump is not allowed"),
    ({"ssh_options": ["ConnectTimeout 10\nHost *"]}, "not one 'Name value' line"),
    ({"ssh_options": ["ConnectTimeout 10\rProxyCommand x"]}, "not one 'Name value' line"),
    ({"ssh_options": ["ConnectTimeout"]}, "not a 'Name value' line"),
    ({"ssh_options": ['UserKnownHostsFile "/tmp/x" ProxyCommand']}, "the value of UserKnownHostsFile"),
    ({"ssh_options": ["ControlPath /tmp/%C # comment"]}, "the value of ControlPath"),
    ({"ssh_options": ["ControlPath ${HOME}/x"]}, "the value of ControlPath"),
]


@pytest.mark.parametrize(("override", "words"), BAD_SETTINGS)
def test_bad_variables_are_refused_with_a_clear_message(override, words):
    settings = {"cluster_name": "pb-c", **override}
    with pytest.raises(ToilInputError, match=words) as error:
        check_settings(**settings)
    assert "\n" not in str(error.value) and "\r" not in str(error.value)


def test_the_filter_fails_as_ansible_expects():
    with pytest.raises(AnsibleFilterError, match="ssh_user must be a user name"):
        ssh_config_filter(cluster(), "pb-c", ssh_user="x\ny")
    assert ssh_config_filter(cluster(), "pb-c", ssh_options=None).startswith("# Written by toil.cluster.ssh_config")


@pytest.mark.parametrize("path", ["/tmp/a b/key", '/tmp/with "quotes"', "/tmp/back\\slash", "/tmp/hash#key", "~/.ssh/it's", "C:\\keys\\k"])
def test_identity_files_are_quoted_as_ssh_reads_them(tmp_path, path):
    text = ssh_config(cluster(), "pb-c", identity_file=path)
    assert f"  IdentityFile {quote(path)}\n" in text
    resolved = ssh_g(tmp_path, text, "leader")
    assert ["identityfile", path] in resolved or ["identityfile", os.path.expanduser(path)] in resolved
    assert directives(text) == directives(ssh_config(cluster(), "pb-c", identity_file="/k"))


@pytest.mark.parametrize(
    "option", ["ConnectTimeout 10", "StrictHostKeyChecking=no", "LocalForward 8080 localhost:80", "ControlPath ~/.ssh/cm-%C", "Ciphers +aes128-cbc"]
)
def test_allowed_options_are_written_as_name_value(tmp_path, option):
    text = ssh_config(cluster(), "pb-c", ssh_options=[option])
    name = option.replace("=", " ").split()[0]
    assert name.lower() in SSH_OPTIONS
    assert text.splitlines()[-1] == "  " + option.replace("=", " ", 1)
    ssh_g(tmp_path, text, "leader")  # ssh accepts it


def test_ports_and_insecure():
    text = render(cluster(), check_settings("pb-c", grafana_port="3001", prometheus_port=9091, insecure=True))
    assert "LocalForward 3001 localhost:3000" in text and "LocalForward 9091 localhost:9090" in text
    assert "StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null" in text


def test_no_leader_is_an_error():
    with pytest.raises(ToilInputError, match="has no leader"):
        ssh_config({"leader": None, "workers": []}, "pb-c")
