"""Values that come from AWS (tags, tag keys, names) are data on every supported ansible-core: never code.

Anyone who may tag an instance may write Jinja into a tag. ansible-core before 2.19 templates every string
variable that is not marked unsafe wherever it is used, so a tag value ``{{ lookup('pipe', 'CMD') }}`` reaching a
play as plain text runs CMD on the controller. Here a cluster's nodes carry such tags (Name, Owner, the pool, the
labels, a tag of the user's, a tag key), and each supported core (harness.ansible_cores: 2.17, the oldest, and the
current one) runs ``ansible-inventory`` with compose, keyed and conditional groups, plays that use every host
variable, and the collection's playbooks that read host variables or module results (status, a whole autoscale
cycle and configure_cluster's choice of nodes, from a ``toil_ec2`` inventory and from AWS with ``add_host``;
rsync_cluster and run_workflow up to their first ssh; destroy_cluster in check mode). No
marker file may appear, and the text arrives as it was written. AWS only: nothing connects to an instance
(configure_cluster's, rsync_cluster's and run_workflow's later plays ssh to 127.0.0.1, port 1).
"""

from __future__ import annotations

import json

import pytest

from harness.ansible_cores import CORES, OLDEST
from harness.paths import REPO
from harness.playbooks import unwrap_unsafe
from harness.toil_shapes import make_group, make_iam, run_nodes

ZONE = "us-west-2a"
CLUSTER = "unsafe-tags"
POOL_TAG = "toil.cluster/pool"
LABELS_TAG = "toil.cluster/labels"
CLUSTER_VARS = {"cluster_name": CLUSTER, "zone": ZONE}
# configure_cluster's later plays ssh to 127.0.0.1:1 (refused at once), never to an address the endpoint hands out.
NO_SSH = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ssh_timeout": 1}


def _evil(markers, label):
    """Text that, templated, creates markers/<label> on the controller: by an expression and by a statement."""
    command = f"touch {markers}/{label}"
    return f"{{{{ lookup('pipe', '{command}') }}}}{{% set _x = lookup('pipe', '{command}-stmt') %}}"


@pytest.fixture(params=CORES, ids=lambda core: f"core-{core.name}")
def core(request):
    """Each supported ansible-core; the oldest is really 2.17 (the attack below works there, not on 2.19)."""
    if request.param is OLDEST:
        assert OLDEST.version().startswith("2.17."), OLDEST.version()
    return request.param


@pytest.fixture
def hostile_cluster(aws, tmp_path):
    """A Toil-shaped cluster (leader, a worker of pool m5-large, a worker of a hostile pool) whose tags hold Jinja:
    (markers directory, {instance id: tags as written})."""
    markers = tmp_path / "markers"
    markers.mkdir()
    make_iam(aws, CLUSTER)
    group = make_group(aws, CLUSTER)
    base = {"clusterName": CLUSTER, "Owner": _evil(markers, "owner")}
    nodes = [
        ("t3.large", {**base, "Name": _evil(markers, "name"), "ToilNodeType": "leader", "Project": _evil(markers, "project")}),
        ("m5.large", {**base, "Name": CLUSTER, "ToilNodeType": "worker", POOL_TAG: "m5-large", LABELS_TAG: "team=" + _evil(markers, "label")[:200]}),
        ("t3.large", {**base, "Name": CLUSTER, "ToilNodeType": "worker", POOL_TAG: _evil(markers, "pool"), _evil(markers, "key")[:120]: "v"}),
    ]
    written = {}
    for instance_type, tags in nodes:
        (instance,) = run_nodes(aws, 1, group_id=group, tags=tags, instance_type=instance_type)
        written[instance] = tags
    return markers, written


def _assert_no_marker(markers, where):
    created = sorted(path.name for path in markers.iterdir())
    assert created == [], f"{where}: AWS tag values ran as code on the controller and created {created}"


def _inventory_config(aws, tmp_path):
    """A toil_ec2 source whose compose, keyed_groups and groups read the tags."""
    config = tmp_path / "hostile.toil_ec2.yml"
    config.write_text(
        json.dumps(
            {
                "plugin": "toil.cluster.toil_ec2",
                "regions": [aws.region],
                "compose": {"tag_name": "ec2_tags.Name", "tag_owner": "ec2_tags['Owner'] ~ ''", "pool": "toil_pool"},
                "keyed_groups": [{"key": "ec2_tags.Owner", "prefix": "owner"}, {"key": "toil_pool", "prefix": "pool"}],
                "groups": {"named": "'lookup' in ec2_tags.Name"},
            }
        )
    )
    return config


# Every way a play commonly reads host variables: all of hostvars, one host's, extract, set_fact, a template, when,
# the collection's node_facts filter, and each node's own variables in its own context (connection local: no ssh).
HOSTVARS_PLAYS = [
    {
        "name": "Read every node's variables from the controller",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "all hostvars", "ansible.builtin.debug": {"var": "hostvars"}},
            {"name": "one host", "ansible.builtin.debug": {"msg": "{{ hostvars[item] }}"}, "loop": "{{ groups['toil_nodes'] }}"},
            {
                "name": "extract",
                "ansible.builtin.set_fact": {
                    "tags_by_host": "{{ dict(groups['toil_nodes'] | zip(groups['toil_nodes'] | map('extract', hostvars, 'ec2_tags'))) }}"
                },
            },
            {"name": "the fact again", "ansible.builtin.debug": {"msg": "{{ tags_by_host }}"}},
            {
                "name": "a template",
                "ansible.builtin.copy": {
                    "dest": "{{ out_dir }}/rendered.json",
                    "content": "{{ groups['toil_nodes'] | map('extract', hostvars, 'ec2_tags') | list | to_json }}",
                    "mode": "0600",
                },
            },
            {
                "name": "when",
                "ansible.builtin.debug": {"msg": "{{ hostvars[item].tag_name }}"},
                "loop": "{{ groups['toil_nodes'] }}",
                "when": "hostvars[item].ec2_tags.Name | length > 0 and hostvars[item].toil_pool is not none",
            },
            {
                "name": "node facts",
                "ansible.builtin.debug": {"msg": "{{ hostvars[item].ec2_tags | toil.cluster.node_facts(pool=hostvars[item].toil_pool, labels={}) }}"},
                "loop": "{{ groups['toil_nodes'] }}",
            },
        ],
    },
    {
        "name": "Each node's own variables",
        "hosts": "toil_nodes",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "own variables", "ansible.builtin.debug": {"msg": "{{ ec2_tags }} {{ toil_pool }} {{ tag_name }} {{ tag_owner }} {{ pool }}"}},
            {"name": "own fact", "ansible.builtin.set_fact": {"own_tags": "{{ ec2_tags }}", "own_name": "{{ tag_name }}"}},
            {"name": "own fact again", "ansible.builtin.debug": {"msg": "{{ own_tags }} {{ own_name }}"}},
        ],
    },
    # toil_cluster_info's result (tags, pools) shown by a command playbook.
    {"import_playbook": str(REPO / "playbooks" / "status.yml")},
]


def test_inventory_plays_and_status_read_host_variables_as_text(aws, core, hostile_cluster, tmp_path):
    markers, written = hostile_cluster
    config = _inventory_config(aws, tmp_path)
    proc = core.inventory_list(config, aws.env, tmp_path / "inventory")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "DEPRECATION" not in proc.stderr, proc.stderr[-4000:]  # marking unsafe costs nothing on the current core
    _assert_no_marker(markers, f"ansible-inventory --list (ansible-core {core.name})")
    data = unwrap_unsafe(json.loads(proc.stdout))
    hostvars = data["_meta"]["hostvars"]
    by_id = {v["toil_instance_id"]: v for v in hostvars.values()}
    assert set(by_id) == set(written)
    for instance, tags in written.items():
        assert by_id[instance]["ec2_tags"] == tags
        assert (by_id[instance]["tag_name"], by_id[instance]["tag_owner"], by_id[instance]["pool"]) == (tags["Name"], tags["Owner"], tags.get(POOL_TAG))
    # Conditional and keyed groups read the text as text; group names keep only letters, digits and _.
    named = sorted(hostvars[name]["toil_instance_id"] for name in data.get("named", {}).get("hosts", []))
    assert named == sorted(i for i, tags in written.items() if "lookup" in tags["Name"])
    assert any(group.startswith("owner_") for group in data) and not any("{" in group for group in data), sorted(data)

    extra_vars = {**CLUSTER_VARS, "out_dir": str(tmp_path)}
    result = core.run_playbook(HOSTVARS_PLAYS, aws.env, tmp_path / "play", inventory=str(config), extra_vars=extra_vars)
    _assert_no_marker(markers, f"plays reading host variables, and status (ansible-core {core.name})")
    assert sorted(result.task("extract")["ansible_facts"]["tags_by_host"].values(), key=json.dumps) == sorted(written.values(), key=json.dumps)
    assert sorted(json.loads((tmp_path / "rendered.json").read_text()), key=json.dumps) == sorted(written.values(), key=json.dumps)
    own = [r["ansible_facts"]["own_tags"] for entry in result.tasks("own fact") for r in entry["hosts"].values()]
    assert sorted(own, key=json.dumps) == sorted(written.values(), key=json.dumps)
    pools = {tags[POOL_TAG] for tags in written.values() if POOL_TAG in tags}
    assert set(result.task("Show the cluster's status")["msg"]["status"]["pools"]) == pools


def _first_play_ok(result):
    """configure_cluster's first play (localhost) ran to its end without a failure; later plays may fail on ssh."""
    (first,) = [play for play in result.json["plays"] if play["play"]["name"] == "Choose the nodes to configure"]
    failed = [(t["task"]["name"], r.get("msg")) for t in first["tasks"] for r in t["hosts"].values() if r.get("failed")]
    assert failed == [], f"{failed}\n{result.describe()}"
    names = [t["task"]["name"] for t in first["tasks"]]
    assert "Put the workers to configure into the play (with configure_new_only, those not joined yet)" in names, result.describe()


def test_autoscale_and_configure_cluster_read_them_as_text(aws, core, hostile_cluster, tmp_path):
    """A whole autoscale cycle (the scaler, then configure_cluster's choice of nodes from a toil_ec2
    inventory's host variables), and configure_cluster adding every node from toil_cluster_info with add_host."""
    markers, written = hostile_cluster
    config = _inventory_config(aws, tmp_path)
    run = core.run_playbook
    leader = [i for i, tags in written.items() if tags["ToilNodeType"] == "leader"]
    workers = sorted(i for i, tags in written.items() if tags["ToilNodeType"] == "worker")

    # The static pool m5.large x 1 has its node: the cycle changes nothing on AWS; then configure_cluster picks the
    # workers not joined yet from the inventory's host variables (configure_new_only), as the autoscaler's timer does.
    scale_vars = {**CLUSTER_VARS, **NO_SSH, "node_types": "m5.large", "workers": "1", "demand": {"pods": [], "nodes": []}, "plan_only": False}
    scaled = run("playbooks/autoscale.yml", aws.env, tmp_path / "autoscale", inventory=str(config), extra_vars=scale_vars, expect_rc=None)
    _assert_no_marker(markers, f"autoscale (ansible-core {core.name})")
    assert scaled.task("Run the cycle (new nodes accept authorized_keys; scale-down drains first; state and metrics kept)")["changed"] is False
    _first_play_ok(scaled)
    chosen = scaled.task("Find the cluster's hosts in the inventory")["ansible_facts"]
    assert ([chosen["__configure_leader"]], sorted(chosen["__configure_workers"])) == (leader, workers)

    # Without a toil_ec2 source every node comes from toil_cluster_info's result, through add_host.
    configured = run("playbooks/configure_cluster.yml", aws.env, tmp_path / "configure", extra_vars={**CLUSTER_VARS, **NO_SSH}, expect_rc=None)
    _assert_no_marker(markers, f"configure_cluster (ansible-core {core.name})")
    _first_play_ok(configured)
    added = {}
    for entry in configured.tasks("Add the nodes the inventory does not know yet, as toil_ec2 would name and group them"):
        for item in entry["hosts"]["localhost"]["results"]:
            added[item["add_host"]["host_vars"]["toil_instance_id"]] = item["add_host"]["host_vars"]["ec2_tags"]
    assert added == written


def test_rsync_run_workflow_and_destroy_read_them_as_text(aws, core, hostile_cluster, tmp_path):
    """The other playbooks that read host variables or module results: rsync_cluster and run_workflow find the
    leader through the inventory's host variables (tasks/find_leader.yml) and stop at their first ssh (127.0.0.1,
    port 1); destroy_cluster (check mode) reads and reports the cluster's description."""
    markers, written = hostile_cluster
    config = _inventory_config(aws, tmp_path)
    workflow = tmp_path / "sort.py"
    workflow.write_text("print('sorted')\n")
    commands = {
        "rsync_cluster": {"src": str(workflow), "dest": "/home/admin/"},
        "run_workflow": {"workflow": str(workflow), "clean_job_store": False},
    }
    for name, command_vars in commands.items():
        for source in (str(config), "localhost,"):
            result = core.run_playbook(
                f"playbooks/{name}.yml",
                aws.env,
                tmp_path / f"{name}-{source[-4:]}",
                inventory=source,
                extra_vars={**CLUSTER_VARS, **NO_SSH, **command_vars},
                expect_rc=None,
            )
            _assert_no_marker(markers, f"{name} with inventory {source} (ansible-core {core.name})")
            found = result.task("Use the inventory's host for the leader, else its address on AWS")
            assert found.get("failed") is not True, result.describe()
            assert found["add_host"]["host_vars"]["toil_region"] == "us-west-2", result.describe()
    # In check mode: it reads and reports the whole cluster (the fixture's clean-up removes it).
    destroyed = core.run_playbook("playbooks/destroy_cluster.yml", aws.env, tmp_path / "destroy", extra_vars=CLUSTER_VARS, args=["--check"])
    _assert_no_marker(markers, f"destroy_cluster (ansible-core {core.name})")
    assert destroyed.rc == 0, destroyed.describe()
