# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The Toil options ``run_workflow`` sets itself, and the check that a user's ``toil_options`` leave them be.

Toil parses its command line with argparse, which accepts any unambiguous prefix of a long option
(``--batchSys slurm`` is ``--batchSystem slurm``) and lets the last occurrence win, so a user option after
the playbook's own would replace it. Every prefix of a managed option is refused, not only the full name.
"""

from __future__ import annotations

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

# The options run_workflow.yml puts on Toil's command line (--jobstore is --jobStore's other spelling).
MANAGED_TOIL_OPTIONS = ("--batchSystem", "--jobStore", "--jobstore", "--restart")
_WHAT_INSTEAD = {
    "--batchSystem": "use batch_system",
    "--jobStore": "use job_store",
    "--jobstore": "use job_store",
    "--restart": "use restart",
}


def managed_option(option):
    """The managed option ``option`` would set on Toil's command line (itself or an abbreviation), or None."""
    if not isinstance(option, str) or not option.startswith("--") or option == "--":
        return None
    name = option.split("=", 1)[0]
    for managed in MANAGED_TOIL_OPTIONS:
        if len(name) > 2 and managed.startswith(name):
            return managed
    return None


def check_toil_options(options):
    """``options`` (a list of strings) if none of them sets a managed option, else a clear error."""
    if not isinstance(options, (list, tuple)) or not all(isinstance(option, str) for option in options):
        raise ToilInputError(f"toil_options must be a list of strings, not {options!r}.")
    for option in options:
        managed = managed_option(option)
        if managed:
            raise ToilInputError(
                f"toil_options may not set {managed} ('{option}' is {managed} to Toil, which accepts abbreviations): {_WHAT_INSTEAD[managed]}."
            )
    return list(options)
