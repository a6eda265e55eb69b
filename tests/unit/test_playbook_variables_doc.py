"""docs/playbook-variables.md is generated from the playbooks (tools/render_playbook_vars.py) and kept current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location("render_playbook_vars", ROOT / "tools" / "render_playbook_vars.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_the_page_is_current():
    tool = load_tool()
    assert (ROOT / "docs" / "playbook-variables.md").read_text(encoding="utf-8") == tool.render(), "run `make docs`"


def test_what_a_playbook_takes_and_what_it_keeps_to_itself(tmp_path):
    playbook = tmp_path / "example.yml"
    playbook.write_text(
        """---
- name: Provision
  hosts: localhost
  vars:
    cluster_name: ""
    zone: "{{ lookup('ansible.builtin.env', 'TOIL_AWS_ZONE') }}"
    workers: 2
    _example_inputs: "{{ cluster_name }}"
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Read what is passed on only when given
      ansible.builtin.debug:
        msg: "{{ demand | default(omit) }} {{ item.content is defined }} {{ x | string | default(omit) }}"
- name: Configure
  hosts: nodes
  vars:
    kubernetes_cluster_name: "{{ cluster_name }}"
    pool_labels: {}
  roles:
    - toil.cluster.kubernetes
"""
    )
    assert load_tool().user_variables(playbook) == {
        "cluster_name": '`""`',
        "zone": "`$TOIL_AWS_ZONE`",
        "workers": "`2`",
        "pool_labels": "`{}`",
        "demand": "(optional, no default)",
    }


def test_every_playbook_variable_the_readme_uses_is_on_the_page():
    page = (ROOT / "docs" / "playbook-variables.md").read_text(encoding="utf-8")
    for name in ("cluster_name", "zone", "leader_node_type", "key_pair_name", "node_types", "workers", "metrics", "plan_only", "toil_options", "tags"):
        assert f"| `{name}` |" in page
