# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The scaler's Kubernetes adapter: what the cluster waits for, what its nodes hold, and draining a node.

``demand_from_kubernetes`` turns the pods and nodes the API lists into the ``demand`` option of
``toil_scaler`` (the same format a user can give by hand); it is pure and reads only attributes
of the kubernetes client's model objects (``V1Pod``, ``V1Node``...), so any object with the same
attribute names works. ``load_clients``, ``read_cluster`` and ``drain_node`` are the thin API side.

How Toil 9.6's Kubernetes batch system writes its pods (``_create_pod_spec``, ``_launch_job``):
one Job per Toil job, whose pod has a single container ``runner-container`` (no init containers)
requesting, and limited to, ``cpu: str(cores)``, ``memory: memory + 512Mi`` and
``ephemeral-storage: disk + 512Mi`` as plain byte counts (plus ``<vendor>.com/gpu`` for GPUs);
every pod is annotated ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``. A preemptible
job *prefers* (two weight-1 terms) nodes labelled ``eks.amazonaws.com/capacityType In [SPOT]`` and
``cloud.google.com/gke-preemptible In [true]`` and tolerates the GKE taint; a non-preemptible job
*requires* one term ``NotIn [SPOT]`` and ``NotIn [true]`` on those labels.

A pod's ``preemptible`` here means "may run on a spot node" (``false``: must avoid spot). It is
false exactly when every required node-selector term (or ``nodeSelector``) rules out a node
carrying one of Toil's preemptible labels, true otherwise, so a pod with no affinity at all is
``true``: nothing keeps it off spot nodes, and the scaler packing it on an on-demand shape when
spot is preferred would waste money, never correctness. Tolerations are not read: the GKE taint
only exists on GKE nodes, never on this collection's spot nodes.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.quantities import byte_count, millicores

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError as error:  # ansible-test's import sanity test runs without extra packages
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = error
    k8s_client = k8s_config = None

    class ApiException(Exception):
        """Stands in for kubernetes.client.exceptions.ApiException: never raised without the client."""

        status = None
        body = None

    class ConfigException(Exception):
        pass

    class Urllib3HTTPError(Exception):
        pass

else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

# Toil's PREEMPTIBLE_SCHEMES labels: a node carrying one of these values is preemptible (spot).
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
GKE_PREEMPTIBLE_LABEL = "cloud.google.com/gke-preemptible"
SPOT_LABELS = {CAPACITY_TYPE_LABEL: "SPOT", GKE_PREEMPTIBLE_LABEL: "true"}
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
POOL_LABEL = "toil.cluster/pool"  # the node label the kubernetes role sets: nodes.POOL_TAG's value
# kubeadm >= 1.24 labels and taints control-plane; Toil's kubeadm 1.19 leader says master.
CONTROL_PLANE_KEYS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
TERMINAL_PHASES = ("Succeeded", "Failed")
# (Kubernetes resource name, demand key, parser to an integer of base units)
RESOURCES = (("cpu", "cpu", millicores), ("memory", "memory", byte_count), ("ephemeral-storage", "ephemeral_storage", byte_count))
_PROVIDER_ID = re.compile(r"^aws://.*?/(i-[0-9a-f]+)$")
_PDB_IN_MESSAGE = re.compile(r"[Tt]he disruption budget (\S+?)(?:\s|$)")
_BINARY_SUFFIXES = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
LIST_PAGE_SIZE = 500


class KubeError(ToilInputError):
    """A Kubernetes failure told as a plain message.

    A ToilInputError so that ``ToilAWSModule.input_errors()`` turns it into ``fail_json``
    without a traceback, like every other refusal of the collection.
    """


class DrainError(KubeError):
    """A node could not be drained: ``node`` and the ``pods`` (``ns/name``) that stayed."""

    def __init__(self, message, node=None, pods=()):
        super().__init__(message)
        self.node = node
        self.pods = list(pods)


class DrainRefusedError(DrainError):
    """The node runs a pod annotated ``safe-to-evict: "false"`` (every Toil job's pod) or one without a controller: never drained."""


# ----------------------------------------------------------------------------- quantities


def format_cpu(millis):
    """Millicores as a Kubernetes quantity: ``2``, ``500m``."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(count):
    """Bytes as a Kubernetes quantity, with the largest binary suffix that is exact: ``4Gi``, ``4608Mi``, ``1000``."""
    if count:
        for suffix, size in _BINARY_SUFFIXES:
            if count % size == 0:
                return f"{count // size}{suffix}"
    return str(count)


def _format(amounts):
    """(cpu millicores, memory bytes, ephemeral bytes) as the demand's resource mapping."""
    return {"cpu": format_cpu(amounts[0]), "memory": format_bytes(amounts[1]), "ephemeral_storage": format_bytes(amounts[2])}


ZERO = (0, 0, 0)


class _Parser:
    """Quantities to integers, memoised by value: 10,000 Toil pods repeat a handful of request triples.

    ``what`` (for error messages) may be a string or a function making one, called only when
    a new value has to be parsed.
    """

    def __init__(self):
        self._cache = {}

    def amounts(self, mapping, what):
        """A requests/limits/allocatable mapping -> (millicores, bytes, bytes); missing is 0."""
        if not mapping:
            return ZERO
        return self.triple(mapping.get("cpu"), mapping.get("memory"), mapping.get("ephemeral-storage"), what)

    def triple(self, cpu, memory, ephemeral, what):
        key = (cpu, memory, ephemeral)
        found = self._cache.get(key)
        if found is None:
            what = what() if callable(what) else what
            found = self._cache[key] = (
                0 if cpu is None else millicores(cpu, f"{what} cpu"),
                0 if memory is None else byte_count(memory, f"{what} memory"),
                0 if ephemeral is None else byte_count(ephemeral, f"{what} ephemeral-storage"),
            )
        return found


def _container_amounts(container, parser, pod):
    """A container's requests; a resource with a limit but no request requests its limit (API defaulting)."""
    resources = getattr(container, "resources", None)
    if resources is None:
        return ZERO
    requests = resources.requests or {}
    limits = resources.limits or {}
    cpu, memory, ephemeral = requests.get("cpu"), requests.get("memory"), requests.get("ephemeral-storage")
    if limits:
        cpu = limits.get("cpu") if cpu is None else cpu
        memory = limits.get("memory") if memory is None else memory
        ephemeral = limits.get("ephemeral-storage") if ephemeral is None else ephemeral
    return parser.triple(cpu, memory, ephemeral, lambda: f"pod {_pod_name(pod)} container {getattr(container, 'name', '?')}")


def _add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _max(a, b):
    return (max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]))


def pod_request(pod, parser=None):
    """A pod's effective request, as the scheduler counts it: ``(millicores, memory bytes, ephemeral bytes)``.

    max(sum of the containers + restartable init containers (sidecars), each init container
    + the sidecars started before it), then pod-level ``spec.resources`` requests (cpu, memory)
    when given, plus ``spec.overhead``. Missing requests count as 0 (a BestEffort pod requests
    nothing). Kubernetes' ``resourcehelper.PodRequests``.
    """
    parser = parser or _Parser()
    spec = pod.spec
    total = ZERO
    for container in spec.containers or ():
        total = _add(total, _container_amounts(container, parser, pod))
    init_containers = getattr(spec, "init_containers", None)
    if init_containers:
        sidecars = init = ZERO
        for container in init_containers:
            amounts = _container_amounts(container, parser, pod)
            if getattr(container, "restart_policy", None) == "Always":
                sidecars = _add(sidecars, amounts)
                init = _max(init, sidecars)
            else:
                init = _max(init, _add(sidecars, amounts))
        total = _max(_add(total, sidecars), init)
    pod_level = getattr(getattr(spec, "resources", None), "requests", None)
    if pod_level:
        overrides = parser.amounts(pod_level, lambda: f"pod {_pod_name(pod)} spec.resources")
        total = tuple(overrides[i] if pod_level.get(name) is not None else total[i] for i, (name, _key, _parse) in enumerate(RESOURCES))
    overhead = getattr(spec, "overhead", None)
    if overhead:
        total = _add(total, parser.amounts(overhead, lambda: f"pod {_pod_name(pod)} overhead"))
    return total


# ----------------------------------------------------------------------------- pods


def _pod_name(pod):
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


def is_unschedulable_pending(pod):
    """Waiting for a node that does not exist: Pending, unbound, not being deleted, and the scheduler said Unschedulable.

    A pod the scheduler has not looked at yet (no PodScheduled condition), a gated one
    (reason SchedulingGated), a bound one waiting for its containers (ContainerCreating), one
    nominated to a node where it preempts others (``status.nominatedNodeName``) and a DaemonSet
    pod (pinned to one node; a new node cannot help it) are not demand.
    """
    status = pod.status
    if pod.metadata.deletion_timestamp or pod.spec.node_name or getattr(status, "phase", None) != "Pending" or is_daemonset_pod(pod):
        return False
    if getattr(status, "nominated_node_name", None):  # it preempts pods on an existing node
        return False
    return any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable" for c in status.conditions or ())


def _expression_excludes_spot(expression):
    """Does this node-selector requirement reject every node carrying a preemptible label?"""
    spot_value = SPOT_LABELS.get(expression.key)
    if spot_value is None:
        return False
    values = expression.values or ()
    operator = expression.operator
    return (operator == "NotIn" and spot_value in values) or (operator == "In" and spot_value not in values) or operator == "DoesNotExist"


def may_use_spot(pod):
    """The demand's ``preemptible``: False when the pod's hard constraints keep it off spot nodes.

    Toil's non-preemptible pods require ``NotIn [SPOT]`` (and ``NotIn [true]`` for GKE);
    its preemptible ones only *prefer* ``In [SPOT]``. Required terms are ORed: the pod avoids
    spot only if every term does. ``nodeSelector`` is ANDed with them.
    """
    spec = pod.spec
    for key, value in (getattr(spec, "node_selector", None) or {}).items():
        if key in SPOT_LABELS and value != SPOT_LABELS[key]:
            return False
    affinity = getattr(getattr(spec, "affinity", None), "node_affinity", None)
    required = getattr(affinity, "required_during_scheduling_ignored_during_execution", None)
    terms = getattr(required, "node_selector_terms", None) or ()
    return not (terms and all(any(_expression_excludes_spot(e) for e in term.match_expressions or ()) for term in terms))


def _pending_pods(pods, parser, group):
    entries = []
    groups = {}
    for pod in pods:
        if not is_unschedulable_pending(pod):
            continue
        amounts = pod_request(pod, parser)
        preemptible = may_use_spot(pod)
        key = (amounts, preemptible)
        if group and key in groups:
            groups[key]["count"] += 1
            continue
        entry = {"name": _pod_name(pod), **_format(amounts), "preemptible": preemptible, "count": 1}
        groups[key] = entry
        entries.append(entry)
    for entry in entries:
        if entry["count"] > 1:
            entry["name"] = f"{entry['name']} (+{entry['count'] - 1})"
    return entries


# ----------------------------------------------------------------------------- nodes


def is_control_plane(node):
    labels = node.metadata.labels or {}
    taints = getattr(node.spec, "taints", None) or ()
    return any(key in labels for key in CONTROL_PLANE_KEYS) or any(t.key in CONTROL_PLANE_KEYS for t in taints)


def instance_id(node):
    """The EC2 instance of a node, from ``spec.providerID`` (``aws:///us-west-2a/i-0abc``); None when not on AWS."""
    match = _PROVIDER_ID.match(getattr(node.spec, "provider_id", None) or "")
    return match.group(1) if match else None


def _items(listing):
    """A V1PodList/V1NodeList, or a plain list of objects."""
    items = getattr(listing, "items", listing)
    return list(items or ())


def _parse_time(value):
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def demand_from_kubernetes(pods, nodes, now, idle_since=None, group=True):
    """The ``demand`` option from a pod and a node listing, and the idle timers to persist.

    ``pods``/``nodes``: what ``list_pod_for_all_namespaces``/``list_node`` return (or lists of
    their items). ``now``: a timezone-aware datetime. ``idle_since``: ``{node name: ISO time
    first seen idle}`` from the previous run. Returns ``(demand, idle_since)``:

    - ``demand["pods"]``: the Unschedulable pending pods, ``{name: "ns/pod", cpu, memory,
      ephemeral_storage, preemptible, count}``, identical shapes grouped (``count``, the
      group named after its first pod plus `` (+N)``) unless ``group`` is false;
    - ``demand["nodes"]``: every node but the control plane, ``{instance_id, name, pool,
      allocatable, requested, idle_seconds, safe_to_evict, unschedulable}``;
    - the new ``idle_since``: the idle nodes only, each keeping its first idle time.

    A node is idle when it runs nothing but DaemonSet and mirror (static) pods; finished
    pods (Succeeded, Failed) count for nothing. ``requested`` sums the effective requests of
    its unfinished pods, DaemonSet ones included.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ToilInputError(f"now must be a timezone-aware datetime, got {now!r}.")
    idle_since = idle_since or {}
    parser = _Parser()
    pod_items = _items(pods)
    on_node = {}
    for pod in pod_items:
        if pod.spec.node_name and not is_terminal(pod):
            on_node.setdefault(pod.spec.node_name, []).append(pod)
    new_idle_since = {}
    node_entries = []
    for node in _items(nodes):
        if is_control_plane(node):
            continue
        name = node.metadata.name
        running = on_node.get(name, [])
        requested = (0, 0, 0)
        for pod in running:
            requested = _add(requested, pod_request(pod, parser))
        workload = [pod for pod in running if not is_daemonset_pod(pod) and not is_mirror_pod(pod)]
        idle_seconds = 0
        if not workload:
            since = _parse_time(idle_since.get(name))
            if since is None or since > now:
                since = now
            new_idle_since[name] = since.isoformat()
            idle_seconds = int((now - since).total_seconds())
        allocatable = getattr(node.status, "allocatable", None) or {}
        amounts = parser.amounts(allocatable, f"node {name} allocatable")
        node_entries.append(
            {
                "instance_id": instance_id(node),
                "name": name,
                "pool": (node.metadata.labels or {}).get(POOL_LABEL),
                "allocatable": {key: value for key, value in _format(amounts).items() if _kube_name(key) in allocatable},
                "requested": _format(requested),
                "idle_seconds": idle_seconds,
                "safe_to_evict": not any(blocks_eviction(pod) for pod in workload),
                "unschedulable": bool(getattr(node.spec, "unschedulable", None)),
            }
        )
    return {"pods": _pending_pods(pod_items, parser, group), "nodes": node_entries}, new_idle_since


def _kube_name(key):
    return key.replace("_", "-")


# ----------------------------------------------------------------------------- API side


def _require_kubernetes():
    if not HAS_KUBERNETES:
        raise ToilInputError(f"The kubernetes Python package is required to talk to the cluster (pip install kubernetes): {KUBERNETES_IMPORT_ERROR}")


def _kubeconfig_files():
    """The kubeconfig files the client would read without one given: ``$KUBECONFIG`` (a path list) or ``~/.kube/config``."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p] or ["~/.kube/config"]
    return [p for p in paths if os.path.isfile(os.path.expanduser(p))]


def load_clients(kubeconfig=None, context=None):
    """``(CoreV1Api, PolicyV1Api)`` sharing one configuration (the process-wide default is left alone).

    ``kubeconfig`` (a file) and ``context`` as kubectl reads them; without ``kubeconfig``,
    ``$KUBECONFIG`` then ``~/.kube/config``, then the pod's service account (in-cluster).
    """
    _require_kubernetes()
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig is not None:
            if not os.path.isfile(os.path.expanduser(kubeconfig)):
                raise ToilInputError(f"kubeconfig {kubeconfig} does not exist.")
            k8s_config.load_kube_config(config_file=os.path.expanduser(kubeconfig), context=context, client_configuration=configuration)
        elif _kubeconfig_files():
            files = _kubeconfig_files()
            k8s_config.load_kube_config(config_file=os.pathsep.join(files), context=context, client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            where = f"context {context!r} needs a kubeconfig: " if context else ""
            raise ToilInputError(
                f"No Kubernetes configuration found: {where}give kubeconfig (or set KUBECONFIG), create ~/.kube/config, "
                "or run inside a pod with a service account."
            )
    except ConfigException as error:
        raise ToilInputError(f"Invalid Kubernetes configuration ({kubeconfig or 'default'}): {error}") from None
    api = k8s_client.ApiClient(configuration)
    return k8s_client.CoreV1Api(api), k8s_client.PolicyV1Api(api)


def _api_message(error):
    """An ApiException as one line: ``403 Forbidden: pods is forbidden: ...``."""
    status = getattr(error, "status", None)
    message = ""
    try:
        message = json.loads(error.body).get("message", "") if error.body else ""
    except (TypeError, ValueError, AttributeError):
        message = str(error.body)
    return f"{status} {getattr(error, 'reason', '') or ''}: {message}".strip().rstrip(":")


def _list_all(method, **kwargs):
    items = []
    token = None
    while True:
        page = method(limit=LIST_PAGE_SIZE, _continue=token, **kwargs) if token else method(limit=LIST_PAGE_SIZE, **kwargs)
        items.extend(page.items or ())
        token = getattr(page.metadata, "_continue", None) if page.metadata else None
        if not token:
            return items


def read_cluster(core_v1):
    """``(pods, nodes)``: every pod of every namespace and every node, as lists of V1Pod / V1Node (listed by pages)."""
    try:
        return _list_all(core_v1.list_pod_for_all_namespaces), _list_all(core_v1.list_node)
    except ApiException as error:
        raise KubeError(f"The Kubernetes API refused to list pods and nodes: {_api_message(error)}") from None
    except Urllib3HTTPError as error:
        raise KubeError(f"Cannot reach the Kubernetes API: {error}") from None


def _pods_on(core_v1, node_name):
    return _list_all(core_v1.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node_name}")


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
        _refuse_if_unsafe(node_name, _pods_on(core_v1, node_name))
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
        pods = _pods_on(core_v1, node_name)  # again: a pod may have landed before the cordon
        _refuse_if_unsafe(node_name, pods)
        victims = []
        for pod in pods:
            if is_daemonset_pod(pod) or is_mirror_pod(pod) or is_terminal(pod):
                result["skipped"].append(_pod_name(pod))
            else:
                victims.append(pod)
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
                failure.args = (f"{failure.args[0]} Uncordoning node {node_name} failed too: {_api_message(error)}",)
        raise failure
    result["deleted"] = True
    return result


def _api_drain_error(node_name, error):
    return DrainError(f"Draining node {node_name}: the Kubernetes API answered {_api_message(error)}.", node=node_name)


def _refuse_if_unsafe(node_name, pods):
    """Refuse, as cluster-autoscaler does, a node running a pod marked not safe to evict or one no controller would recreate."""
    reasons = {}
    for pod in pods:
        if is_terminal(pod) or is_daemonset_pod(pod) or is_mirror_pod(pod):
            continue
        if blocks_eviction(pod):
            reasons[_pod_name(pod)] = f'is annotated {SAFE_TO_EVICT}: "false" (Toil jobs are)'
        elif not any(ref.controller for ref in pod.metadata.owner_references or ()):
            reasons[_pod_name(pod)] = "has no controller to recreate it"
    if reasons:
        raise DrainRefusedError(
            f"Refusing to drain node {node_name}: " + "; ".join(f"pod {name} {reason}" for name, reason in reasons.items()) + ".",
            node=node_name,
            pods=list(reasons),
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
                blocked[_pod_name(pod)] = _pdb_of(error, pod, policy_v1)
                still.append(pod)
                continue
            blocked.pop(_pod_name(pod), None)
            result["evicted"].append(_pod_name(pod))
        waiting = still
        if not waiting:
            return
        remaining = deadline - clock()
        if remaining <= 0:
            details = []
            for pod in waiting:
                pdb, reason = blocked.get(_pod_name(pod), (None, ""))
                budget = f"PodDisruptionBudget {pdb}" if pdb else "an unnamed PodDisruptionBudget or API rate limit"
                details.append(f"{_pod_name(pod)} (blocked by {budget}: {reason or 'HTTP 429'})")
            raise DrainError(
                f"Could not drain node {node_name} within {timeout} s: the Eviction API kept refusing {'; '.join(details)}.",
                node=node_name,
                pods=[_pod_name(p) for p in waiting],
            )
        result["eviction_retries"] += len(waiting)
        sleep(min(poll_interval, remaining))


def _wait_gone(core_v1, node_name, victims, deadline, timeout, sleep, clock, poll_interval):
    uids = {pod.metadata.uid: _pod_name(pod) for pod in victims}
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
