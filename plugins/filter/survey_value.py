# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: survey_value
short_description: A list or mapping variable, also when given as a string (an AWX survey, -e name=value)
version_added: 0.1.0
description:
  - Every playbook of this collection reads its list and mapping variables through this filter, so that a job
    template's survey (which gives strings) and C(-e name=value) work as well as YAML or JSON extra vars.
  - >-
    A list is returned as it is; a string is a JSON list when it starts with C([), else shell words split as a POSIX
    shell would (C(--retryCount 2 'a b') -> C(["--retryCount", "2", "a b"])).
  - >-
    With O(kind=lines) (items that hold spaces, like authorized keys or ssh options), a string that is not a JSON
    list gives one item per non-empty line.
  - >-
    A mapping is returned as it is; a string is a JSON object when it starts with C({), else shell words of
    C(key=value) (C(team=x "cost center=42") -> C({"team": "x", "cost center": "42"})).
  - An empty string is an empty list or mapping. Anything else fails with a message naming the variable.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The variable's value.
    type: raw
    required: true
  kind:
    description: What the variable must be.
    type: str
    choices: [list, lines, mapping]
    required: true
  name:
    description: The variable's name, for the error message.
    type: str
    default: value
"""

EXAMPLES = r"""
- name: Workflow arguments from a survey's text field
  ansible.builtin.debug:
    msg: "{{ workflow_args | toil.cluster.survey_value('list', 'workflow_args') }}"
  # "--numLines 1000" -> ["--numLines", "1000"]; ["--numLines", "1000"] stays as it is
"""

RETURN = r"""
_value:
  description: The list or mapping.
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.survey_values import survey_value as read_survey_value


def survey_value(value, kind, name="value"):
    try:
        return read_survey_value(value, kind, name)
    except ToilInputError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"survey_value": survey_value}
