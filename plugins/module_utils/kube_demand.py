# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What a Kubernetes cluster waits for and what its nodes hold, as the scaler's integers.

``read_demand`` turns the pods and nodes the API lists into the packer's pod groups (millicores
and bytes) and worker nodes; ``demand_from_kubernetes`` writes the same as ``toil_scaler``'s
``demand`` option, in Kubernetes quantities, for people. Both are pure and read only attributes
of the kubernetes client's model objects (``V1Pod``, ``V1Node``...), so any object with the same
attribute names works; listing them is kube_client.py's part.

How Toil 9.6's Kubernetes batch system writes its pods (``_create_pod_spec``, ``_launch_job``):
one Job per Toil job, whose pod has a single container ``runner-container`` (no init containers)
requesting, and limited to, ``cpu: str(cores)``, ``memory: memory + 512Mi`` and
``ephemeral-storage: disk + 512Mi`` as plain byte counts (plus ``<vendor>.com/gpu`` for GPUs, ``nvidia.com/gpu``
unless the job names another brand; only ``nvidia.com/gpu`` is counted here: the pools' GPUs are NVIDIA's);
every pod is annotated ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``. A preemptible
job *prefers* (two weight-1 terms) nodes labelled ``eks.amazonaws.com/capacityType In [SPOT]`` and
``cloud.google.com/gke-preemptible In [true]`` and tolerates the GKE taint; a non-preemptible job
*requires* one term ``NotIn [SPOT]`` and ``NotIn [true]`` on those labels.

Nodes and instances (``match_instances``): a node is its ``spec.providerID``'s instance (provider_id.py), else
the instance whose private DNS name or address it carries; a node whose instance is gone is never supply. Its
idle timer is its ``toil.cluster/idle-since`` annotation, so every scheduler running the scaler reads the same.

A pod's ``preemptible`` here means "may run on a spot node" (``false``: must avoid spot). It is
false exactly when every required node-selector term (or ``nodeSelector``) rules out a node
carrying one of Toil's preemptible labels, true otherwise, so a pod with no affinity at all is
``true``: nothing keeps it off spot nodes, and the scaler packing it on an on-demand shape when
spot is preferred would waste money, never correctness. Tolerations are not read: the GKE taint
only exists on GKE nodes, never on this collection's spot nodes.

A pod's architecture pin is its ``nodeSelector`` ``kubernetes.io/arch`` and the required node-affinity terms on
that label (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``; terms ORed): the set of architectures it may run
on, or None (no pin; Toil 9.6 never pins one). A node's architecture is its ``kubernetes.io/arch`` label, which
the kubelet sets. Spot and architecture are read term by term but combined per pod: a pod whose terms are
"spot and arm64" or "on-demand and amd64" is read as "may use spot, arm64 or amd64" (no Toil pod is written so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import PodGroup, Resources, node_state
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_pods import blocks_eviction, is_daemonset_pod, is_mirror_pod, is_terminal, pod_name
from ansible_collections.toil.cluster.plugins.module_utils.provider_id import instance_of
from ansible_collections.toil.cluster.plugins.module_utils.quantities import byte_count, format_bytes, format_cpu, millicores, parse_quantity
from ansible_collections.toil.cluster.plugins.module_utils.tags import POOL_LABEL, SPOT_LABELS

# kubeadm >= 1.24 labels and taints control-plane; Toil's kubeadm 1.19 leader says master.
CONTROL_PLANE_KEYS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
# The resources packed, in the order of the integer tuples: (Kubernetes name, demand option key).
GPU = "nvidia.com/gpu"
RESOURCES = (("cpu", "cpu"), ("memory", "memory"), ("ephemeral-storage", "ephemeral_storage"), (GPU, "gpu"))
# The node label the kubelet sets to its architecture (GOARCH: amd64, arm64), which pods may pin.
ARCH_LABEL = "kubernetes.io/arch"
# The taint of a node whose Spot interruption notice came (aws-node-termination-handler's key, which the kubernetes
# role's handler writes too): it is leaving within two minutes.
INTERRUPTION_TAINT = "aws-node-termination-handler/spot-itn"
ARCHITECTURES = ("amd64", "arm64")
# Where every scheduler (the leader's timer, an AWX schedule) sees when a node became idle: on the Node itself.
IDLE_SINCE_ANNOTATION = "toil.cluster/idle-since"
# Node addresses that carry the instance's private DNS name (InternalDNS from a cloud provider, Hostname from the kubelet).
_DNS_ADDRESS_TYPES = ("InternalDNS", "Hostname")
ZERO = (0, 0, 0, 0)


# ----------------------------------------------------------------------------- requests


def gpu_count(value, what="nvidia.com/gpu"):
    """An extended resource's quantity as a whole count (Kubernetes refuses fractions of one)."""
    number = parse_quantity(value, what)
    if number != number.to_integral_value():
        raise ToilInputError(f"{what}: '{value}' is not a whole number of GPUs.")
    return int(number)


class _Parser:
    """Quantities to integers, memoised by value: 10,000 Toil pods repeat a handful of request tuples.

    ``what`` (for error messages) may be a string or a function making one, called only when
    a new value has to be parsed.
    """

    def __init__(self):
        self._cache = {}

    def amounts(self, mapping, what):
        """A requests/limits/allocatable mapping -> (millicores, bytes, bytes, GPUs); missing is 0."""
        if not mapping:
            return ZERO
        return self.parse(mapping.get("cpu"), mapping.get("memory"), mapping.get("ephemeral-storage"), mapping.get(GPU), what)

    def parse(self, cpu, memory, ephemeral, gpu, what):
        key = (cpu, memory, ephemeral, gpu)
        found = self._cache.get(key)
        if found is None:
            what = what() if callable(what) else what
            found = self._cache[key] = (
                0 if cpu is None else millicores(cpu, f"{what} cpu"),
                0 if memory is None else byte_count(memory, f"{what} memory"),
                0 if ephemeral is None else byte_count(ephemeral, f"{what} ephemeral-storage"),
                0 if gpu is None else gpu_count(gpu, f"{what} {GPU}"),
            )
        return found


def _container_amounts(container, parser, pod):
    """A container's requests; a resource with a limit but no request requests its limit (API defaulting; for an
    extended resource such as ``nvidia.com/gpu`` the API requires the request, if any, to equal the limit)."""
    resources = getattr(container, "resources", None)
    if resources is None:
        return ZERO
    requests = resources.requests or {}
    limits = resources.limits or {}
    cpu, memory, ephemeral, gpu = requests.get("cpu"), requests.get("memory"), requests.get("ephemeral-storage"), requests.get(GPU)
    if limits:
        cpu = limits.get("cpu") if cpu is None else cpu
        memory = limits.get("memory") if memory is None else memory
        ephemeral = limits.get("ephemeral-storage") if ephemeral is None else ephemeral
        gpu = limits.get(GPU) if gpu is None else gpu
    return parser.parse(cpu, memory, ephemeral, gpu, lambda: f"pod {pod_name(pod)} container {getattr(container, 'name', '?')}")


def _add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _max(a, b):
    return (max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def pod_request(pod, parser=None):
    """A pod's effective request, as the scheduler counts it: ``(millicores, memory bytes, ephemeral bytes, GPUs)``.

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
        overrides = parser.amounts(pod_level, lambda: f"pod {pod_name(pod)} spec.resources")
        total = tuple(overrides[i] if pod_level.get(name) is not None else total[i] for i, (name, _key) in enumerate(RESOURCES))
    overhead = getattr(spec, "overhead", None)
    if overhead:
        total = _add(total, parser.amounts(overhead, lambda: f"pod {pod_name(pod)} overhead"))
    return total


# ----------------------------------------------------------------------------- pending pods


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


def _expression_arches(expression, allowed):
    """``allowed`` (a frozenset of architectures, or None for any) narrowed by one requirement on ARCH_LABEL."""
    values = frozenset(expression.values or ())
    operator = expression.operator
    if operator == "In":
        found = values
    elif operator == "NotIn":
        found = frozenset(ARCHITECTURES) - values
    elif operator == "DoesNotExist":
        found = frozenset()
    else:  # Exists, or an operator that only applies to numbers (Gt, Lt)
        return allowed
    return found if allowed is None else allowed & found


def placement(pod):
    """``(may_use_spot, arches)``: whether the pod's hard constraints let it on spot nodes, and the architectures
    they pin it to (a frozenset of ``kubernetes.io/arch`` values; None: no pin), in one reading of them.

    Toil's non-preemptible pods require ``NotIn [SPOT]`` (and ``NotIn [true]`` for GKE);
    its preemptible ones only *prefer* ``In [SPOT]``. Required terms are ORed: the pod avoids
    spot only if every term does, and may run on an architecture any term allows. ``nodeSelector`` is ANDed with them.
    """
    spec = pod.spec
    spot, arches = True, None
    node_selector = getattr(spec, "node_selector", None)
    if node_selector:
        for key, value in node_selector.items():
            if key in SPOT_LABELS and value != SPOT_LABELS[key]:
                spot = False
            elif key == ARCH_LABEL:
                arches = frozenset((value,))
    affinity = getattr(getattr(spec, "affinity", None), "node_affinity", None)
    required = getattr(affinity, "required_during_scheduling_ignored_during_execution", None)
    terms = getattr(required, "node_selector_terms", None) or ()
    if terms:
        avoids_spot, term_arches = True, frozenset()
        for term in terms:
            excludes_spot, allowed = False, None
            for expression in term.match_expressions or ():  # each expression's key read once: these are views
                key = expression.key
                if key == ARCH_LABEL:
                    allowed = _expression_arches(expression, allowed)
                elif not excludes_spot and key in SPOT_LABELS:
                    excludes_spot = _expression_excludes_spot(expression)
            avoids_spot = avoids_spot and excludes_spot
            if term_arches is not None:
                term_arches = None if allowed is None else term_arches | allowed
        spot = spot and not avoids_spot
        if term_arches is not None:
            arches = term_arches if arches is None else arches & term_arches
    return spot, arches


def may_use_spot(pod):
    """The demand's ``preemptible``: False when the pod's hard constraints keep it off spot nodes (``placement``)."""
    return placement(pod)[0]


def pinned_arches(pod):
    """The architectures a pod is pinned to (``placement``): a frozenset, or None when it is not pinned."""
    return placement(pod)[1]


def _shape_signature(pod):
    """What a pod's request and placement are read from, as text, for a pod read as JSON (a ModelView; None for a
    model object): the containers' and init containers' resources (and restartPolicy), the pod-level resources and
    overhead, the nodeSelector and the required node affinity. Pods of one Job share it, so 10,000 pods are read as a few dozen."""
    data = getattr(pod, "_data", None)
    if not isinstance(data, dict):
        return None
    spec = data.get("spec") or {}
    containers = [c.get("resources") if isinstance(c, dict) else c for c in spec.get("containers") or ()]
    init = [(c.get("resources"), c.get("restartPolicy")) if isinstance(c, dict) else c for c in spec.get("initContainers") or ()]
    affinity = spec.get("affinity")
    required = affinity.get("nodeAffinity") if isinstance(affinity, dict) else affinity
    if isinstance(required, dict):  # placement() reads only the required terms, not the preferred ones
        required = required.get("requiredDuringSchedulingIgnoredDuringExecution")
    return repr((containers, init, spec.get("resources"), spec.get("overhead"), spec.get("nodeSelector"), required))


def _pending_groups(pods, parser, group):
    """The Unschedulable pending pods as pod groups, identical shapes (request, spot and architectures) as one unless
    ``group`` is false."""
    groups = []
    by_shape = {}
    read = {}  # _shape_signature -> (request, may use spot, arches): each distinct pod spec read once
    for pod in pods:
        if not is_unschedulable_pending(pod):
            continue
        signature = _shape_signature(pod)
        found = read.get(signature) if signature is not None else None
        if found is None:
            found = (pod_request(pod, parser), *placement(pod))
            if signature is not None:
                read[signature] = found
        amounts, preemptible, arches = found
        key = (amounts, preemptible, arches)
        if group and key in by_shape:
            by_shape[key].count += 1
            continue
        by_shape[key] = PodGroup(name=pod_name(pod), request=Resources(*amounts), may_use_spot=preemptible, arches=arches)
        groups.append(by_shape[key])
    for pod_group in groups:
        if pod_group.count > 1:
            pod_group.name = f"{pod_group.name} (+{pod_group.count - 1})"
    return groups


# ----------------------------------------------------------------------------- nodes


def is_control_plane(node):
    labels = node.metadata.labels or {}
    taints = getattr(node.spec, "taints", None) or ()
    return any(key in labels for key in CONTROL_PLANE_KEYS) or any(t.key in CONTROL_PLANE_KEYS for t in taints)


def instance_id(node):
    """The EC2 instance of a node, from ``spec.providerID`` (``aws:///us-west-2a/i-0abc``); None when not on AWS."""
    return instance_of(getattr(node.spec, "provider_id", None))


def _addresses(node):
    return tuple((a.type, a.address) for a in getattr(node.status, "addresses", None) or () if getattr(a, "address", None))


def _is_ready(node):
    """The node's Ready condition is True (a node whose kubelet is gone turns Unknown after 40 s)."""
    return any(c.type == "Ready" and c.status == "True" for c in getattr(node.status, "conditions", None) or ())


def _not_ready_since(node):
    """``(status, since)`` of a node whose Ready condition is False or Unknown: the condition's status and its
    ``lastTransitionTime`` (an aware datetime, None when not given); ``(None, None)`` when Ready or without the condition."""
    for condition in getattr(node.status, "conditions", None) or ():
        if condition.type == "Ready" and condition.status in ("False", "Unknown"):
            moment = getattr(condition, "last_transition_time", None)
            if moment is not None and not isinstance(moment, datetime):
                moment = _parse_time(str(moment).replace("Z", "+00:00"))
            elif moment is not None and moment.tzinfo is None:
                moment = None
            return condition.status, moment
    return None, None


@dataclass(frozen=True)
class WorkerNode:
    """A worker node as Kubernetes reports it: CPU in millicores, memory and ephemeral storage in bytes."""

    instance_id: str  # None when the node is not an EC2 instance
    name: str
    pool: str  # its POOL_LABEL, or None
    allocatable: Resources  # what the node offers pods (a resource it does not list is 0)
    requested: Resources  # the effective requests of its unfinished pods, DaemonSet ones included
    idle_seconds: int
    safe_to_evict: bool
    unschedulable: bool
    listed: tuple = ()  # the Kubernetes names of the resources its allocatable lists
    arch: str = None  # its kubernetes.io/arch label
    provider_id: str = None  # spec.providerID as listed
    addresses: tuple = ()  # (type, address) pairs of status.addresses
    ready: bool = True
    not_ready: str = None  # its Ready condition's status when False or Unknown (None: Ready, or no condition)
    not_ready_since: datetime = None  # that condition's lastTransitionTime
    idle_since: str = None  # the IDLE_SINCE_ANNOTATION this run wants on the node (None: none)
    idle_annotation: str = None  # the annotation as listed
    resource_version: str = None
    leaving: bool = False  # tainted INTERRUPTION_TAINT: EC2 terminates it within two minutes

    def node_state(self):
        """The node as the packer sees it."""
        return node_state(
            self.instance_id, self.pool, self.allocatable, self.requested, self.idle_seconds, self.safe_to_evict, self.unschedulable, self.name, self.arch
        )


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


def rfc3339(moment):
    """A timezone-aware datetime as Kubernetes writes times: ``2026-01-05T12:00:00Z`` (seconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_demand(pods, nodes, now, idle_since=None, group=True):
    """The pending pods and the worker nodes from a pod and a node listing, and the idle timers.

    ``pods``/``nodes``: what ``list_pod_for_all_namespaces``/``list_node`` return (or lists of
    their items). ``now``: a timezone-aware datetime. ``idle_since``: ``{node name: ISO time
    first seen idle}`` kept by older runs in their state file, read only for a node whose
    ``toil.cluster/idle-since`` annotation is missing. Returns ``(pod groups, worker nodes, idle_since)``:

    - the Unschedulable pending pods as ``PodGroup``s named ``ns/pod``, identical shapes grouped
      (``count``, the group named after its first pod plus `` (+N)``) unless ``group`` is false;
    - every node but the control plane, as a ``WorkerNode``, whose ``idle_since`` is the
      annotation it should carry (its first idle time; None when busy);
    - the new ``idle_since``: the idle nodes only, each keeping its first idle time.

    A node is idle when it runs nothing but DaemonSet and mirror (static) pods; finished
    pods (Succeeded, Failed) count for nothing. The timer lives on the Node, so every
    scheduler running the scaler sees the same one.
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
    workers = []
    for node in _items(nodes):
        if is_control_plane(node):
            continue
        name = node.metadata.name
        annotation = (getattr(node.metadata, "annotations", None) or {}).get(IDLE_SINCE_ANNOTATION)
        running = on_node.get(name, [])
        requested = ZERO
        for pod in running:
            requested = _add(requested, pod_request(pod, parser))
        workload = [pod for pod in running if not is_daemonset_pod(pod) and not is_mirror_pod(pod)]
        idle_seconds = 0
        wanted = None
        if not workload:
            since = _parse_time(annotation) if annotation is not None else _parse_time(idle_since.get(name))
            if since is None or since > now:
                since = now
            new_idle_since[name] = since.isoformat()
            idle_seconds = int((now - since).total_seconds())
            wanted = annotation if annotation is not None and _parse_time(annotation) == since else rfc3339(since)
        allocatable = getattr(node.status, "allocatable", None) or {}
        labels = node.metadata.labels or {}
        not_ready, not_ready_since = _not_ready_since(node)
        workers.append(
            WorkerNode(
                instance_id=instance_id(node),
                name=name,
                pool=labels.get(POOL_LABEL),
                allocatable=Resources(*parser.amounts(allocatable, f"node {name} allocatable")),
                requested=Resources(*requested),
                idle_seconds=idle_seconds,
                safe_to_evict=not any(blocks_eviction(pod) for pod in workload),
                unschedulable=bool(getattr(node.spec, "unschedulable", None)),
                listed=tuple(kube_name for kube_name, _key in RESOURCES if kube_name in allocatable),
                arch=labels.get(ARCH_LABEL),
                provider_id=getattr(node.spec, "provider_id", None),
                addresses=_addresses(node),
                ready=_is_ready(node),
                not_ready=not_ready,
                not_ready_since=not_ready_since,
                idle_since=wanted,
                idle_annotation=annotation,
                resource_version=getattr(node.metadata, "resource_version", None),
                leaving=any(t.key == INTERRUPTION_TAINT for t in getattr(node.spec, "taints", None) or ()),
            )
        )
    return _pending_groups(pod_items, parser, group), workers, new_idle_since


# ----------------------------------------------------------------------------- nodes and instances


def _short(name):
    return name.split(".", 1)[0] if name else name


def match_instances(workers, instances, gone_ids=()):
    """Each worker node's instance, and the nodes whose instance is gone.

    ``instances``: the cluster's live instances (DescribeInstances records). A node is its
    providerID's instance; a node without one (the kubelet had no ``--provider-id``) is the
    instance whose ``PrivateDnsName`` is the node's name or its InternalDNS/Hostname address (the
    kubelet's default name is the host name, the DNS name's first label), else whose
    ``PrivateIpAddress`` is its InternalIP; a name or address shared by two instances matches
    neither. ``gone_ids``: instance ids EC2 reports terminated or shutting down, or does not know.

    Returns ``(workers, gone)``: the workers that are live instances, or unknown ones whose node
    is Ready (instance_id None), with ``instance_id`` set; and the workers whose instance is gone
    (its providerID names a gone instance, or it has none, matches no live instance and is not Ready:
    a node object outlives its instance when no cloud controller removes it). The gone ones are
    never supply.
    """
    live = {i["InstanceId"]: i for i in instances}
    by_dns, by_short, by_ip = {}, {}, {}
    for instance in instances:
        dns = instance.get("PrivateDnsName")
        for index, key in ((by_dns, dns), (by_short, _short(dns)), (by_ip, instance.get("PrivateIpAddress"))):
            if key:
                index.setdefault(key.lower(), set()).add(instance["InstanceId"])
    gone_ids = set(gone_ids)
    kept, gone = [], []
    for worker in workers:
        found = instance_of(worker.provider_id)
        if found is not None:
            if found in live:
                kept.append(replace(worker, instance_id=found))
            elif found in gone_ids:
                gone.append(worker)
            else:  # stopped, or not this cluster's: neither supply nor ours to delete
                kept.append(replace(worker, instance_id=None))
            continue
        names = [worker.name] + [address for kind, address in worker.addresses if kind in _DNS_ADDRESS_TYPES]
        ips = [address for kind, address in worker.addresses if kind == "InternalIP"]
        candidates = set()
        for name in names:
            key = (name or "").lower()
            candidates = by_dns.get(key, set()) if "." in key else by_short.get(key, set())
            if candidates:
                break
        if not candidates:
            for ip in ips:
                candidates = by_ip.get(ip, set())
                if candidates:
                    break
        if len(candidates) == 1:
            kept.append(replace(worker, instance_id=next(iter(candidates))))
        elif candidates or worker.ready:  # ambiguous, or a live node that is not one of ours: left alone, never removed
            kept.append(replace(worker, instance_id=None))
        else:
            gone.append(worker)
    return kept, gone


# ----------------------------------------------------------------------------- for people


def _quantities(resources, listed=None):
    """Resources as the ``demand`` option's mapping of Kubernetes quantities (only the ``listed`` ones when given;
    else GPUs only when there are some)."""
    text = {"cpu": format_cpu(resources.cpu), "memory": format_bytes(resources.memory), "ephemeral_storage": format_bytes(resources.disk), "gpu": resources.gpu}
    if listed is None:
        listed = tuple(kube_name for kube_name, key in RESOURCES if key != "gpu" or resources.gpu)
    return {key: text[key] for kube_name, key in RESOURCES if kube_name in listed}


def _pinned(arches):
    """A pin as the ``demand`` option's ``arch``: one architecture, or a list of them."""
    return {} if arches is None else {"arch": next(iter(arches)) if len(arches) == 1 else sorted(arches)}


def demand_from_kubernetes(pods, nodes, now, idle_since=None, group=True):
    """What :func:`read_demand` finds, written as ``toil_scaler``'s ``demand`` option, and the idle timers.

    ``demand["pods"]``: ``{name, cpu, memory, ephemeral_storage, gpu (when some), arch (when pinned), preemptible,
    count}``; ``demand["nodes"]``: ``{instance_id, name, pool, arch, allocatable (the resources the node lists),
    requested, idle_seconds, safe_to_evict, unschedulable}``; quantities as Kubernetes writes them.
    """
    groups, workers, new_idle_since = read_demand(pods, nodes, now, idle_since, group)
    demand = {
        "pods": [{"name": g.name, **_quantities(g.request), **_pinned(g.arches), "preemptible": g.may_use_spot, "count": g.count} for g in groups],
        "nodes": [
            {
                "instance_id": w.instance_id,
                "name": w.name,
                "pool": w.pool,
                **({"arch": w.arch} if w.arch else {}),
                "allocatable": _quantities(w.allocatable, w.listed),
                "requested": _quantities(w.requested),
                "idle_seconds": w.idle_seconds,
                "safe_to_evict": w.safe_to_evict,
                "unschedulable": w.unschedulable,
            }
            for w in workers
        ],
    }
    return demand, new_idle_since
