# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: local_path
short_description: A path on the controller, relative to where ansible-playbook was run
version_added: 0.1.0
description:
  - The absolute form of a path given on the command line or in a survey, with C(~) expanded and a relative path
    taken from the directory ansible-playbook runs in (the user's shell's, or the project directory in AWX), as
    C(toil rsync-cluster) and C(python sort.py) would take it.
  - Without it, Ansible's modules and action plugins look for a relative path next to the playbook (the collection's
    C(playbooks/) directory), not where the user is.
  - A trailing slash is kept (rsync reads it as "the directory's contents"). An empty string stays empty.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  _input:
    description: The path.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: The workflow the user named, wherever the playbook lives
  ansible.builtin.stat:
    path: "{{ workflow | toil.cluster.local_path }}"
  # ./sort.py -> /home/me/work/sort.py when run from /home/me/work
"""

RETURN = r"""
_value:
  description: The absolute path (or an empty string).
  type: str
"""

import os

from ansible.errors import AnsibleFilterError


def local_path(value):
    if not isinstance(value, str):
        raise AnsibleFilterError(f"a local path must be a string, got a {type(value).__name__}")
    if not value:
        return ""
    # ansible-playbook keeps the directory it was started in as its working directory (only the pipe lookup and
    # modules' searches use the playbook's directory), so this is the user's or AWX's project directory.
    absolute = os.path.normpath(os.path.join(os.getcwd(), os.path.expanduser(value)))
    return absolute + "/" if value.endswith("/") and absolute != "/" else absolute


class FilterModule:
    def filters(self):
        return {"local_path": local_path}
