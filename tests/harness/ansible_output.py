"""Reading Ansible's human output, as a user sees it: the debug results the default callback prints as YAML
(``ANSIBLE_CALLBACK_RESULT_FORMAT=yaml``) and ``ansible-inventory --graph``'s tree."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import yaml

# A task's header, at -vv its "task path:" line, then the host's result as indented YAML.
_RESULT = re.compile(r"^TASK \[(?P<task>[^\]]+)\] \*+\n(?:task path: .*\n)?(?:ok|changed): \[localhost\] => \n(?P<body>(?:    .*\n)+)", re.MULTILINE)


def results(text: str) -> dict[str, Any]:
    """The results on localhost in ``text``, by task name: the YAML the callback printed, parsed."""
    return {m["task"]: yaml.safe_load(textwrap.dedent(m["body"])) for m in _RESULT.finditer(text)}


def graph_groups(graph: str) -> dict[str, list[str]]:
    """`ansible-inventory --graph` output -> {group: hosts directly in it}. A line's depth is where its ``|--`` stands:
    a host belongs to the group one level up (a child group's hosts come before its parent's own)."""
    groups: dict[str, list[str]] = {}
    path: list[str] = []  # the groups enclosing the current line, outermost first
    for line in graph.splitlines():
        depth = line.find("|--") // 3
        if group := re.search(r"\|--@(\w+):$", line):
            del path[depth:]
            path.append(group[1])
            groups.setdefault(group[1], [])
        elif (host := re.search(r"\|--(i-\w+)$", line)) and 0 < depth <= len(path) and host[1] not in groups[path[depth - 1]]:
            groups[path[depth - 1]].append(host[1])  # a child group shown under two parents lists its hosts twice
    return groups
