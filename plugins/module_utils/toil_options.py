# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The Toil options ``run_workflow`` sets itself, and the check that a user's ``toil_options`` leave them be and
set none that cannot work on this collection's clusters.

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
# Options Toil accepts that cannot work here. --metrics (toil/options/common.py, a BOOL) makes Toil's leader run its
# own mtail, Prometheus and Grafana Docker images (toil/common.py ToilMetrics); the leader has no Docker, and the
# dashboard is launch_cluster's `metrics: true` (roles/dashboard) instead. Each with its shortest unambiguous prefix
# in Toil 9's parser ("--me" is also --mesos*, --memoryIsProduct).
UNSUPPORTED_TOIL_OPTIONS = {"--metrics": "--met"}
_WHAT_INSTEAD["--metrics"] = "Toil's --metrics starts Docker containers the leader does not run; launch the cluster with metrics: true for the dashboard"


def managed_option(option):
    """The managed or unsupported option ``option`` would set on Toil's command line (itself or an abbreviation),
    or None."""
    if not isinstance(option, str) or not option.startswith("--") or option == "--":
        return None
    name = option.split("=", 1)[0]
    for managed in MANAGED_TOIL_OPTIONS:
        if len(name) > 2 and managed.startswith(name):
            return managed
    for unsupported, shortest in UNSUPPORTED_TOIL_OPTIONS.items():
        if name.startswith(shortest) and unsupported.startswith(name):
            return unsupported
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
