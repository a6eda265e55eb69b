"""toil_cluster_info's host_keys against the embedded endpoint (issue #16, point 5): SSH host keys read from each
node's console output (GetConsoleOutput, base64 on the wire) the way cloud-init writes them."""

from __future__ import annotations

from harness.toil_shapes import make_toil_cluster

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIENpJImWzurQzbbt75Qa1yumPZZbv39uKjLqtv/pY1n5"
ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI0wBXibIUIZK2Ob45TL0PJH4EY6qT5S7ndCIqHKeWGfJ2TTeDhUWPTaYrUcYgXU6+Xv+h/CoUGzZLOqffX1TRo="  # noqa: E501
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQ+KAPuXjBmle5F7U8E11f73/pWwMicP/E9RcU6vo6T"


def console(*keys):
    lines = [
        "[    2.1] Linux version 6.1.0",
        "-----BEGIN SSH HOST KEY KEYS-----",
        *(f"{k} root@ip-10-0-0-1" for k in keys),
        "-----END SSH HOST KEY KEYS-----",
        "",
    ]
    return "\r\n".join(lines)


def info_play(**options):
    task = {"name": "info", "toil.cluster.toil_cluster_info": options, "register": "info"}
    return {"hosts": "localhost", "gather_facts": False, "tasks": [task]}


def test_host_keys_come_from_the_console_and_nodes_without_them_are_named(aws, run_playbook):
    shaped = make_toil_cluster(aws, "hk-one", workers=3)
    good, bare, forged = shaped.worker_ids
    aws.endpoint.set_console_output(shaped.leader_id, console(ED25519, ECDSA))
    aws.endpoint.set_console_output(good, console(OTHER) + "ec2: " + console(OTHER).replace("\r\n", "\r\nec2: "))
    aws.endpoint.set_console_output(bare, "")  # nothing written yet: GetConsoleOutput has no Output
    # A key block inside quoted text (e.g. echoed user data) is not cloud-init's.
    aws.endpoint.set_console_output(forged, console(OTHER).replace("-----BEGIN", "# -----BEGIN").replace("-----END", "# -----END"))
    cluster = run_playbook(info_play(name="hk-one", zone="us-west-2a", host_keys=True), check=True).task("info")["clusters"][0]
    assert cluster["host_keys"] == {shaped.leader_id: [ED25519, ECDSA], good: [OTHER]}
    assert sorted(cluster["host_keys_missing"]) == sorted([bare, forged])
    assert "no SSH host keys in its console output after 0 s" in cluster["host_keys_missing"][bare]
    expected = {shaped.leader_id: [ED25519, ECDSA], good: [OTHER]}  # by instance ID, each node's keys as written
    assert cluster["known_hosts"] == "".join(f"{i} {k}\n" for i in sorted(expected) for k in expected[i])
    # Only the nodes asked for are read; the others are not in the result.
    only = run_playbook(info_play(name="hk-one", zone="us-west-2a", host_keys=True, host_keys_instances=[good])).task("info")["clusters"][0]
    assert only["host_keys"] == {good: [OTHER]} and only["host_keys_missing"] == {}


def test_only_the_clusters_own_nodes_are_read(aws, run_playbook):
    make_toil_cluster(aws, "hk-two", workers=0)
    stranger = make_toil_cluster(aws, "hk-other", workers=0).leader_id
    result = run_playbook(info_play(name="hk-two", zone="us-west-2a", host_keys=True, host_keys_instances=[stranger]), expect_rc=2).task("info")
    assert f"host_keys_instances: {stranger} not a live node of cluster hk-two." in result["msg"]
    assert "Traceback" not in result.get("module_stderr", "") + result.get("exception", "")
