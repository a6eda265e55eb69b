# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Removing a Kubernetes node before its instance goes: cordon, evict through the Eviction API, wait, delete.

The scaler terminates an idle node's instance only once its Node is gone, so no pod is killed
without its PodDisruptionBudget's consent; a node that cannot be drained in time is uncordoned
and kept, and the next run decides afresh. A node running a pod no controller would recreate,
or one marked not safe to evict (every Toil job's pod), is refused before anything changes.
"""

from __future__ import annotations

import json
import re
import time

from ansible_collections.toil.cluster.plugins.module_utils.kube_client import HAS_KUBERNETES, ApiException, KubeError, api_message, k8s_client, list_all
from ansible_collections.toil.cluster.plugins.module_utils.kube_pods import (
    SAFE_TO_EVICT,
    blocks_eviction,
    is_daemonset_pod,
    is_mirror_pod,
    is_terminal,
    pod_name,
)

_PDB_IN_MESSAGE = re.compile(r"[Tt]he disruption budget (\S+?)(?:\s|$)")


class DrainError(KubeError):
    """A node could not be drained: ``node`` and the ``pods`` (``ns/name``) that stayed."""

    def __init__(self, message, node=None, pods=()):
        super().__init__(message)
        self.node = node
        self.pods = list(pods)


class DrainRefusedError(DrainError):
    """The node runs a pod annotated ``safe-to-evict: "false"`` (every Toil job's pod) or one without a controller: never drained."""


def _pods_on(core_v1, node_name):
    return list_all(core_v1.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node_name}")


def _selector_matches(selector, labels):
    """A policy/v1 LabelSelector against pod labels (an empty selector matches every pod, a null one none)."""
    if selector is None:
        return False
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.match_expressions or ():
        present = expression.key in labels
        value = labels.get(expression.key)
        operator = expression.operator
        if (
            (operator == "In" and value not in (expression.values or ()))
            or (operator == "NotIn" and present and value in (expression.values or ()))
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _pdb_of(error, pod, policy_v1):
    """The PodDisruptionBudget (``ns/name``) behind a 429, and the API's reason: from the answer, else by selector."""
    namespace = pod.metadata.namespace
    try:
        status = json.loads(error.body) if error.body else {}
    except (TypeError, ValueError):
        status = {}
    causes = ((status.get("details") or {}).get("causes")) or []
    reason = "; ".join(c.get("message", "") for c in causes if c.get("reason") == "DisruptionBudget") or status.get("message") or ""
    match = _PDB_IN_MESSAGE.search(reason)
    if match:
        return f"{namespace}/{match.group(1)}", reason
    if policy_v1 is not None:
        try:
            budgets = policy_v1.list_namespaced_pod_disruption_budget(namespace).items or ()
        except ApiException:
            budgets = ()
        labels = pod.metadata.labels or {}
        names = [b.metadata.name for b in budgets if _selector_matches(b.spec.selector, labels)]
        if names:
            return ", ".join(f"{namespace}/{n}" for n in names), reason
    return None, reason


def _eviction(pod):
    metadata = {"name": pod.metadata.name, "namespace": pod.metadata.namespace}
    if HAS_KUBERNETES:
        return k8s_client.V1Eviction(metadata=k8s_client.V1ObjectMeta(**metadata))
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": metadata}


def _cordon(core_v1, node_name, unschedulable):
    core_v1.patch_node(node_name, {"spec": {"unschedulable": unschedulable}})


def drain_node(core_v1, node_name, timeout, sleep=time.sleep, *, policy_v1=None, clock=time.monotonic, poll_interval=5.0):
    """Cordon a node, evict its pods through the Eviction API (PodDisruptionBudgets hold), wait for them to go, delete the Node.

    DaemonSet and mirror (static) pods are left (they die with the node), as are finished
    pods (the pod garbage collector removes them). An eviction answered 429 (a PDB allows no
    disruption now) is retried every ``poll_interval`` seconds; ``timeout`` bounds the whole
    drain. Refuses (``DrainRefusedError``, before any change) a node running a pod annotated
    ``safe-to-evict: "false"`` or a pod no controller would recreate. On failure
    (``DrainError``, naming the pods and PDBs) a node this call cordoned is uncordoned, so the
    next run decides afresh. ``policy_v1``, when given, names the PDB of a 429 that did not.

    Returns ``{"node", "cordoned" (this call cordoned it), "evicted": ["ns/pod"], "skipped":
    ["ns/pod"] (DaemonSet, mirror, finished), "eviction_retries", "deleted", "absent"}``.
    """
    deadline = clock() + timeout
    result = {"node": node_name, "cordoned": False, "evicted": [], "skipped": [], "eviction_retries": 0, "deleted": False, "absent": False}
    try:
        node = core_v1.read_node(node_name)
        _refuse_if_unsafe(node_name, _triage(_pods_on(core_v1, node_name))[1])
        if not node.spec.unschedulable:
            _cordon(core_v1, node_name, True)
            result["cordoned"] = True
    except ApiException as error:
        if error.status == 404:
            result["absent"] = True
            return result
        raise _api_drain_error(node_name, error) from None
    failure = None
    try:
        skipped, unsafe, victims = _triage(_pods_on(core_v1, node_name))  # again: a pod may have landed before the cordon
        _refuse_if_unsafe(node_name, unsafe)
        result["skipped"] = skipped
        _evict_all(core_v1, policy_v1, node_name, victims, deadline, timeout, sleep, clock, poll_interval, result)
        _wait_gone(core_v1, node_name, victims, deadline, timeout, sleep, clock, poll_interval)
        core_v1.delete_node(node_name)
    except DrainError as error:
        failure = error
    except ApiException as error:
        if error.status != 404:  # only delete_node can answer 404 here: the Node is gone already
            failure = _api_drain_error(node_name, error)
    if failure is not None:
        if result["cordoned"]:
            try:
                _cordon(core_v1, node_name, False)
                failure.args = (f"{failure.args[0]} Node {node_name} was uncordoned.",)
            except ApiException as error:
                failure.args = (f"{failure.args[0]} Uncordoning node {node_name} failed too: {api_message(error)}",)
        raise failure
    result["deleted"] = True
    return result


def _api_drain_error(node_name, error):
    return DrainError(f"Draining node {node_name}: the Kubernetes API answered {api_message(error)}.", node=node_name)


def _triage(pods):
    """A drain's view of a node's pods: ``(skipped, unsafe, victims)``. DaemonSet, mirror (static) and finished pods
    are skipped (they die with the node, or the pod garbage collector removes them); a pod annotated not safe to
    evict, or one no controller would recreate, is unsafe (``{"ns/pod": why}``, as cluster-autoscaler judges); the
    rest are evicted."""
    skipped, unsafe, victims = [], {}, []
    for pod in pods:
        if is_terminal(pod) or is_daemonset_pod(pod) or is_mirror_pod(pod):
            skipped.append(pod_name(pod))
        elif blocks_eviction(pod):
            unsafe[pod_name(pod)] = f'is annotated {SAFE_TO_EVICT}: "false" (Toil jobs are)'
        elif not any(ref.controller for ref in pod.metadata.owner_references or ()):
            unsafe[pod_name(pod)] = "has no controller to recreate it"
        else:
            victims.append(pod)
    return skipped, unsafe, victims


def _refuse_if_unsafe(node_name, unsafe):
    """Refuse, as cluster-autoscaler does, a node running a pod marked not safe to evict or one no controller would
    recreate (``unsafe``, from _triage)."""
    if unsafe:
        raise DrainRefusedError(
            f"Refusing to drain node {node_name}: " + "; ".join(f"pod {name} {reason}" for name, reason in unsafe.items()) + ".",
            node=node_name,
            pods=list(unsafe),
        )


def _evict_all(core_v1, policy_v1, node_name, victims, deadline, timeout, sleep, clock, poll_interval, result):
    waiting = list(victims)
    blocked = {}
    while waiting:
        still = []
        for pod in waiting:
            try:
                core_v1.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, _eviction(pod))
            except ApiException as error:
                if error.status == 404:  # already gone
                    continue
                if error.status != 429:
                    raise
                blocked[pod_name(pod)] = _pdb_of(error, pod, policy_v1)
                still.append(pod)
                continue
            blocked.pop(pod_name(pod), None)
            result["evicted"].append(pod_name(pod))
        waiting = still
        if not waiting:
            return
        remaining = deadline - clock()
        if remaining <= 0:
            details = []
            for pod in waiting:
                pdb, reason = blocked.get(pod_name(pod), (None, ""))
                budget = f"PodDisruptionBudget {pdb}" if pdb else "an unnamed PodDisruptionBudget or API rate limit"
                details.append(f"{pod_name(pod)} (blocked by {budget}: {reason or 'HTTP 429'})")
            raise DrainError(
                f"Could not drain node {node_name} within {timeout} s: the Eviction API kept refusing {'; '.join(details)}.",
                node=node_name,
                pods=[pod_name(p) for p in waiting],
            )
        result["eviction_retries"] += len(waiting)
        sleep(min(poll_interval, remaining))


def _wait_gone(core_v1, node_name, victims, deadline, timeout, sleep, clock, poll_interval):
    uids = {pod.metadata.uid: pod_name(pod) for pod in victims}
    while uids:
        present = {pod.metadata.uid for pod in _pods_on(core_v1, node_name)}
        uids = {uid: name for uid, name in uids.items() if uid in present}
        if not uids:
            return
        remaining = deadline - clock()
        if remaining <= 0:
            names = sorted(uids.values())
            raise DrainError(
                f"Could not drain node {node_name} within {timeout} s: evicted pod(s) {', '.join(names)} are still terminating.",
                node=node_name,
                pods=names,
            )
        sleep(min(poll_interval, remaining))


def drain_nodes(core_v1, policy_v1, victims, timeout, warn):
    """Drain each of ``victims`` (nodes with ``name`` and ``instance_id``); returns the instance ids whose
    Node is gone, the only ones that may be terminated. A node that could not be drained stays, with a warning."""
    drained = set()
    for node in victims:
        try:
            drain_node(core_v1, node.name, timeout, policy_v1=policy_v1)
            drained.add(node.instance_id)
        except DrainError as error:
            warn(f"Node {node.name} ({node.instance_id}) was not removed: {error}")
    return drained


def drain_for_repair(core_v1, node_name, timeout, *, ready=False, policy_v1=None, sleep=time.sleep, clock=time.monotonic, poll_interval=5.0):
    """Drain what can be drained of a broken node, whose instance is terminated next whatever is left.

    Cordons the node and evicts, through the Eviction API, the pods a drain would (a 429 is retried until
    ``timeout``); the pods a drain refuses (annotated ``safe-to-evict: "false"``, as Toil's are, or without a
    controller) and those still refused at the deadline are left, to die with the instance (once the Node is
    deleted, the pod garbage collector deletes them and their controllers recreate them elsewhere). Only when the
    node is ``ready`` (its instance impaired but its kubelet alive) does it wait, within the same ``timeout``, for
    the evicted pods to go: a NotReady kubelet never confirms a pod's end. Never uncordons and never raises for a
    pod; an API error other than 404 is raised as ``DrainError``.

    Returns ``{"node", "cordoned", "evicted", "skipped", "left": ["ns/pod"], "absent"}``.
    """
    deadline = clock() + timeout
    result = {"node": node_name, "cordoned": False, "evicted": [], "skipped": [], "left": [], "eviction_retries": 0, "absent": False}
    try:
        node = core_v1.read_node(node_name)
        if not node.spec.unschedulable:
            _cordon(core_v1, node_name, True)
            result["cordoned"] = True
        skipped, unsafe, victims = _triage(_pods_on(core_v1, node_name))
        result["skipped"], result["left"] = skipped, list(unsafe)
        try:
            _evict_all(core_v1, policy_v1, node_name, victims, deadline, timeout, sleep, clock, poll_interval, result)
        except DrainError as error:
            result["left"].extend(error.pods)
        if ready:
            evicted = [pod for pod in victims if pod_name(pod) in result["evicted"]]
            try:
                _wait_gone(core_v1, node_name, evicted, deadline, timeout, sleep, clock, poll_interval)
            except DrainError as error:
                result["left"].extend(error.pods)
    except ApiException as error:
        if error.status == 404:
            result["absent"] = True
            return result
        raise _api_drain_error(node_name, error) from None
    return result


def delete_node(core_v1, node_name, why, warn):
    """Delete a Node object (one already gone is fine): True when it is gone. A failure is warned about, the node
    named with ``why`` it was to go ("whose instance is gone"), and False returned."""
    try:
        core_v1.delete_node(node_name)
    except ApiException as error:
        if error.status != 404:
            warn(f"Node {node_name}, {why}, could not be deleted: {api_message(error)}")
            return False
    return True
