# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What a pod says about removing its node, as cluster-autoscaler reads it.

DaemonSet and mirror (static) pods die with their node and finished pods hold nothing, so none
of them keeps a node busy or needs evicting; a pod annotated ``safe-to-evict: "false"`` (every
Toil job's pod) keeps its node. The demand (idle nodes, ``safe_to_evict``) and the drain (what to
evict, what to refuse) decide by the same rules, here. Reads only attributes of the kubernetes
client's model objects (``V1Pod``), so any object with the same attribute names works.
"""

from __future__ import annotations

SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_name(pod):
    """``namespace/name``."""
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def _annotations(obj):
    return obj.metadata.annotations or {}


def is_daemonset_pod(pod):
    return any(ref.kind == "DaemonSet" for ref in pod.metadata.owner_references or ())


def is_mirror_pod(pod):
    return MIRROR_ANNOTATION in _annotations(pod)


def is_terminal(pod):
    return getattr(pod.status, "phase", None) in TERMINAL_PHASES


def blocks_eviction(pod):
    """Annotated ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`` (as cluster-autoscaler reads it)."""
    return str(_annotations(pod).get(SAFE_TO_EVICT, "")).lower() == "false"
