# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Host keys from console output (issue #16, point 5): cloud-init's block, and every way it can be spoiled."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.host_keys import (
    HostKeysError,
    cluster_host_keys,
    known_hosts,
    parse_console_host_keys,
    wait_for_host_keys,
)

ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI0wBXibIUIZK2Ob45TL0PJH4EY6qT5S7ndCIqHKeWGfJ2TTeDhUWPTaYrUcYgXU6+Xv+h/CoUGzZLOqffX1TRo="  # noqa: E501
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIENpJImWzurQzbbt75Qa1yumPZZbv39uKjLqtv/pY1n5"
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDOkVdCn9/7fH1zwvS5bLTXnLbJcoYC+MzqOzJCPx6SlExnVs8sNcZ4k9rto1FZ5N6lD91srVaAJETuXSSeh9yZQqIj+B8Xgl3bgab9nWOk5ROH1ybZfjg6LUPv+OiC5Vdvz75AuDFJw6ii8T3iSb5pXN2mC4eFc7flLttXRnOE7Q=="  # noqa: E501
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQ+KAPuXjBmle5F7U8E11f73/pWwMicP/E9RcU6vo6T"
HOST = " root@ip-10-0-0-1"


def cloud_init_output(keys, prefix=""):
    """What cloud-init's keys_to_console writes (tools/write-ssh-key-fingerprints), amid boot messages."""
    return "\n".join(
        [
            "[    0.000000] Linux version 6.1.0-27-cloud-amd64",
            "ec2: ",
            "ec2: #############################################################",
            "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
            "ec2: 256 SHA256:Bp6f2cN6Tq6J0Ck8bm3m3o2XoG0Yk2zZ0Pq7qB1Rj2E root@ip-10-0-0-1 (ED25519)",
            "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
            "ec2: #############################################################",
            f"{prefix}-----BEGIN SSH HOST KEY KEYS-----",
            *(prefix + key + HOST for key in keys),
            f"{prefix}-----END SSH HOST KEY KEYS-----",
            "Cloud-init v. 22.4.2 finished at Thu, 03 Dec 2026 15:00:00 +0000. Up 21.30 seconds",
            "",
        ]
    )


def test_every_key_type_in_the_order_written():
    assert parse_console_host_keys(cloud_init_output([ECDSA, ED25519, RSA])) == [ECDSA, ED25519, RSA]


def test_the_logger_copy_and_carriage_returns():
    text = cloud_init_output([ED25519, ECDSA], prefix="ec2: ").replace("\n", "\r\n")
    assert parse_console_host_keys(text) == [ED25519, ECDSA]


def test_both_copies_agree():
    text = cloud_init_output([ED25519], prefix="ec2: ") + cloud_init_output([ED25519])
    assert parse_console_host_keys(text) == [ED25519]


def test_junk_lines_in_the_block_are_skipped_never_trusted():
    junk = ["", "not a key", "ssh-ed25519 AAAA", "ssh-dss AAAAB3NzaC1kc3M=", "sk-ssh-ed25519@openssh.com AAAA x", 'command="x" ' + OTHER]
    text = cloud_init_output([ED25519, *junk])
    assert parse_console_host_keys(text) == [ED25519]


def test_no_block_or_an_empty_one_gives_no_keys():
    assert parse_console_host_keys("") == []
    assert parse_console_host_keys(None) == []
    assert parse_console_host_keys("Linux version 6.1\nlogin: ") == []
    assert parse_console_host_keys(cloud_init_output([])) == []


def test_a_truncated_block_is_ignored():
    text = cloud_init_output([ED25519, ECDSA])
    assert parse_console_host_keys(text[: text.index("-----END SSH HOST KEY KEYS")]) == []
    # A block cut short by a new one: only the complete one counts.
    cut = "-----BEGIN SSH HOST KEY KEYS-----\n" + OTHER + "\n"
    assert parse_console_host_keys(cut + cloud_init_output([ED25519])) == [ED25519]


@pytest.mark.parametrize(
    "begin",
    [
        "# -----BEGIN SSH HOST KEY KEYS-----",  # quoted, e.g. inside a comment of echoed user data
        "hostname: -----BEGIN SSH HOST KEY KEYS-----",  # text a network peer may put into a log line
        "[   12.3] cloud-init[512]: -----BEGIN SSH HOST KEY KEYS-----",
        "  -----BEGIN SSH HOST KEY KEYS-----",
        "-----BEGIN SSH HOST KEY KEYS----- x",
    ],
)
def test_markers_are_whole_lines(begin):
    text = f"{begin}\n{OTHER}\n{begin.replace('BEGIN', 'END')}\n"
    assert parse_console_host_keys(text) == []


def test_key_lines_must_carry_the_blocks_prefix():
    text = f"ec2: -----BEGIN SSH HOST KEY KEYS-----\n{OTHER}\nec2: {ED25519}\nec2: -----END SSH HOST KEY KEYS-----\n"
    assert parse_console_host_keys(text) == [ED25519]


def test_blocks_that_disagree_are_refused():
    text = cloud_init_output([ED25519]) + cloud_init_output([OTHER])
    with pytest.raises(HostKeysError, match="two SSH host key blocks"):
        parse_console_host_keys(text)


class Console:
    """GetConsoleOutput answers, one list per instance; the last answer repeats."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def get_console_output(self, InstanceId, Latest=False, aws_retry=False):  # noqa: N803 - boto3's names
        self.calls.append(InstanceId)
        answers = self.outputs[InstanceId]
        text = answers.pop(0) if len(answers) > 1 else answers[0]
        answer = {"InstanceId": InstanceId}
        if text is not None:
            answer["Output"] = text  # botocore has decoded the base64 already
        return answer


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_waits_until_the_keys_appear_then_gives_known_hosts():
    console = Console({"i-1": [None, "booting", cloud_init_output([ED25519, ECDSA])], "i-2": [cloud_init_output([RSA])]})
    clock = Clock()
    found, missing = wait_for_host_keys(console, ["i-1", "i-2"], timeout=60, delay=10, sleep=clock.sleep, clock=clock)
    assert found == {"i-1": [ED25519, ECDSA], "i-2": [RSA]} and missing == {}
    assert clock.now == 20 and console.calls.count("i-2") == 1
    assert known_hosts(found) == f"i-1 {ED25519}\ni-1 {ECDSA}\ni-2 {RSA}\n"


def test_the_wait_is_bounded_and_says_why():
    console = Console({"i-1": ["no keys yet"], "i-2": [cloud_init_output([ED25519]) + cloud_init_output([OTHER])]})
    clock = Clock()
    found, missing = wait_for_host_keys(console, ["i-1", "i-2"], timeout=30, delay=10, sleep=clock.sleep, clock=clock)
    assert found == {} and clock.now == 30
    assert "no SSH host keys in its console output after 30 s" in missing["i-1"]
    assert "different keys" in missing["i-2"]
    assert console.calls.count("i-2") == 1  # refused at once, not waited for


def test_only_the_clusters_live_nodes_are_read():
    cluster = {
        "name": "c1",
        "hosts": [{"vars": {"toil_instance_id": "i-1", "toil_state": "running"}}, {"vars": {"toil_instance_id": "i-2", "toil_state": "stopped"}}],
    }
    console = Console({"i-1": [cloud_init_output([ED25519])]})
    result = cluster_host_keys(console, cluster)
    assert result == {"host_keys": {"i-1": [ED25519]}, "host_keys_missing": {}, "known_hosts": f"i-1 {ED25519}\n"}
    with pytest.raises(ToilInputError, match="i-2, i-9 not a live node of cluster c1"):
        cluster_host_keys(console, cluster, instance_ids=["i-1", "i-2", "i-9"])
