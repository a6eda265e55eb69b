#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: toil_scaler
short_description: Size a Toil cluster's worker pools from what Kubernetes is waiting for (one scaler run)
version_added: 0.1.0
description:
  - One run of a periodic bin-packing autoscaler, meant to run every minute (the C(autoscaler) role's timer or an
    AWX schedule). It replaces Toil's cluster-autoscaler and Auto Scaling groups with something that can be dry-run,
    read and scheduled.
  - Reads the pending, unschedulable pods and the worker nodes from Kubernetes (or takes them from O(demand)), packs
    the pods first-fit decreasing onto the nodes' free capacity and then onto new nodes of the pools (spot shapes
    first, then the smallest, as Toil's C(BinPackedFit)), smooths each pool's size with O(beta_inertia), adds
    O(preemptible_compensation) of a spot pool's deficit to the on-demand pool of the same instance types, and
    clamps to the pool's bounds.
  - Pods of preemptible Toil jobs may use spot nodes; the others never land on them, as Toil's pod affinities say.
    A pod that fits no pool is reported with its size, the largest shape and the reason instead of waiting forever.
  - GPUs (C(nvidia.com/gpu)) are packed as a fourth resource; a pool's GPUs are the NVIDIA GPUs of its instance types.
    A pod without GPUs opens a node of a GPU pool only when no pool without GPUs fits it. A pod pinned to an
    architecture (C(kubernetes.io/arch) in its C(nodeSelector) or required node affinity) lands only on nodes and
    pools of it; a pool's instance types must share one architecture.
  - Scale-down removes nodes idle (no pods but DaemonSet ones) for O(scale_down_idle_seconds), never one running a
    pod annotated C(cluster-autoscaler.kubernetes.io/safe-to-evict=false) (every Toil pod is), never below
    O(pools[].min_size). With Kubernetes, such a node is cordoned, drained through the Eviction API and deleted
    before its instance is terminated.
  - Each Kubernetes node is matched to its instance by its C(spec.providerID) (C(aws:///<zone>/<instance-id>), which
    the C(kubernetes) role gives every kubelet), else by its name or address against the instances' private DNS
    names and IP addresses. A node whose instance is gone (terminated, or unknown to EC2) is deleted from the API
    (only reported in check mode or with O(apply=false)) and never counted; a pool is never sized past
    O(pools[].max_size) (busy nodes above it stay until idle).
  - Repair. A worker node whose Ready condition has been C(False) or C(Unknown) for O(repair_after_seconds), or whose
    instance's EC2 status checks say C(impaired), is repaired (at most O(max_repairs) per run, the longest NotReady
    first), that is cordoned, drained of what can be evicted within O(drain_timeout), its instance terminated and its
    Node deleted; the same run refills its pool. Unhealthy nodes, repaired or waiting, are never counted as room for pods.
  - Idle timers are the nodes' annotation C(toil.cluster/idle-since) (RFC 3339), set and cleared by the scaler with
    resourceVersion-checked patches, so every scheduler running it (the leader's timer, an AWX schedule) sees the
    same timers. Timers an older version kept in O(state_path) are read once, for nodes without the annotation.
  - One run at a time. With Kubernetes, the run takes the C(coordination.k8s.io/v1) Lease
    C(kube-system/toil-scaler-<cluster>) before reading anything, as client-go's leader election does (a unique
    holder, renewed every third of O(lease_duration), released at the end); a concurrent run waits up to O(lease_wait)
    seconds, then fails naming the holder, having changed nothing. With O(demand), the same through an exclusive
    lock on C(<state_path>.lock) (runs without O(state_path) share nothing and are not kept apart). Check mode
    takes neither.
  - Budgets. O(max_vcpus), O(max_memory) and O(max_hourly_cost) bound the vCPUs, memory and hourly cost of the
    scaled pools' workers (the leader and workers of pools not given in O(pools) are not counted), each node counted
    as the largest (and dearest) of its pool's instance types (C(DefaultVCpus), C(MemoryInfo.SizeInMiB)). A plan that
    would pass a budget has its growth cut, pool by pool in the order of O(pools), and says so in each cut pool's
    C(reason) and in RV(budget). Shrinking is never prevented; a pool's O(pools[].min_size) is honoured past the
    budget, with a warning.
  - Prices. On-demand prices come from the AWS Price List (C(pricing:GetProducts), Linux, shared tenancy), spot prices
    from the spot price history (the dearest zone's price now, never above the pool's bid). When the Price List cannot
    be read (no permission, no route to C(api.pricing.us-east-1.amazonaws.com)) the run warns and uses the collection's
    bundled table, read from the Price List and dated region by region (C(prices_from) in RV(cost) says which). In a
    region the table does not cover (any but us-east-1, us-east-2, us-west-2 and eu-west-1) no price is made up; the
    pools have none, the plan is for the fewest nodes, costs are null and O(max_hourly_cost) is refused.
  - Cost. Among the packings it tries, the scaler keeps the one whose new nodes cost least per hour, among those with
    no more nodes than Toil's C(BinPackedFit) would open (spot where the pods allow, on-demand where they must). RV(cost)
    reports that cost and the lower bound it is measured against.
  - Pools are resized by the same code as M(toil.cluster.toil_nodepool).
author:
  - toil.cluster contributors (@toil-cluster)
options:
  cluster:
    description: The cluster's name.
    type: str
    required: true
  zone:
    description:
      - A zone of the cluster; the region is derived from it. Defaults to C(TOIL_AWS_ZONE), else O(region).
      - It does not place new nodes; a pool's C(zones) does.
    type: str
  pools:
    description: The pools to scale.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The pool's name (as in M(toil.cluster.toil_nodepool)).
        type: str
      node_types:
        description:
          - The node type, in Toil's syntax (C(c5.4xlarge/c5a.4xlarge:0.42)) or as a mapping, with C(instance_types)
            or with C(requirements) (as M(toil.cluster.toil_nodepool)'s
            O(toil.cluster.toil_nodepool#module:node_types)).
          - With C(requirements), the region's instance types are kept in the O(state_path) file for a day; the pool's
            shape is that of the smallest type found. C(requirements) may ask for GPU types with C(gpus) (C(1-4)).
          - The instance types of a pool must share one architecture (C(x86_64) or C(arm64)).
        type: raw
        required: true
      min_size:
        description: The fewest nodes (0 to 5000).
        type: int
        required: true
      max_size:
        description: The most nodes (0 to 5000, Kubernetes' largest supported cluster).
        type: int
        required: true
      node_storage:
        description:
          - Root volume size of new nodes, in GiB, 8 to 16384. It is also the disk pods may use on instance types without
            instance-store disks; on those with some (C(c5d.4xlarge) has 400 GB), the instance-store disks are, as Toil
            counts them.
        type: int
        default: 50
      zones:
        description:
          - Availability zones the pool's new nodes may use (as M(toil.cluster.toil_nodepool)'s
            O(toil.cluster.toil_nodepool#module:zones)); without it, every zone with a subnet like the leader's.
        type: list
        elements: str
      subnets:
        description:
          - Subnets of the cluster's VPC for the pool's new nodes, tried in the order given; overrides C(zones).
        type: list
        elements: str
      image_id:
        description:
          - The AMI of the pool's new nodes (as M(toil.cluster.toil_nodepool)'s
            O(toil.cluster.toil_nodepool#module:image_id)); default C(TOIL_AWS_AMI), then the newest official Debian 12.
        type: str
  demand:
    description:
      - What Kubernetes would say, given explicitly instead of read from the API (dry runs, AWX surveys, tests).
      - C(pods), the pending pods, each with C(name), C(cpu), C(memory), C(ephemeral_storage) (Kubernetes quantities),
        C(gpu) (a whole number of C(nvidia.com/gpu)), C(arch) (the architecture it is pinned to, C(amd64) or C(arm64),
        or a list of them; none by default), C(preemptible) (true may use spot, false must avoid it) and C(count)
        (repeats of that shape).
      - C(nodes), the worker nodes, each with C(instance_id), C(pool), C(arch) (its C(kubernetes.io/arch); its pool's
        by default), C(allocatable) and C(requested) (mappings of C(cpu), C(memory), C(ephemeral_storage), C(gpu)),
        C(idle_seconds) and C(safe_to_evict).
    type: dict
  authorized_keys:
    description:
      - OpenSSH public keys put on the nodes this run launches, at boot through cloud-init (as
        M(toil.cluster.toil_nodepool)'s O(toil.cluster.toil_nodepool#module:authorized_keys)), so the leader that
        runs the scaler can configure and join them.
    type: list
    elements: str
    default: []
  apply:
    description: Resize the pools. V(false) plans only (so does check mode).
    type: bool
    default: true
  beta_inertia:
    description: Weight of the previous estimate in each new one (Toil's C(--betaInertia)), between 0 and 0.9.
    type: float
    default: 0.1
  preemptible_compensation:
    description: Share of a spot pool's deficit added to the on-demand pool of the same instance types (Toil's
      C(--preemptibleCompensation)), between 0 and 1.
    type: float
    default: 0.0
  scale_down_idle_seconds:
    description: How long a node must be idle before it is removed, in seconds (0 to 86400).
    type: int
    default: 600
  state_path:
    description: File where inertia, idle timers, spot deficits and instance shapes persist between runs.
    type: path
  metrics_path:
    description:
      - A node_exporter textfile (C(*.prom)) to write C(autoscaler_cur_size), C(autoscaler_desired_size) and
        C(autoscaler_queue_size) to, the names Toil's dashboard plots.
    type: path
  drain_timeout:
    description: How long to wait for an idle node's pods to be evicted, in seconds (0 to 86400).
    type: int
    default: 300
  repair_after_seconds:
    description:
      - How long a worker node's Ready condition must have been C(False) or C(Unknown) (by its C(lastTransitionTime))
        before the node is repaired, in seconds; 0 never repairs (nor reads the instances' status checks), else 60 to
        86400.
      - A node whose instance's EC2 status checks (C(DescribeInstanceStatus), instance or system) say C(impaired) is
        repaired at once.
      - A repair (only of nodes of the scaled O(pools), with the demand read from Kubernetes) cordons the node, evicts
        what a drain would within O(drain_timeout) (pods not safe to evict, such as Toil's, are left to die with it),
        terminates its instance and deletes its Node; the same run refills the pool. An unhealthy node is never counted
        as room for pods.
    type: int
    default: 600
  max_repairs:
    description:
      - At most this many unhealthy nodes are repaired per run (0 to 1000), the longest NotReady first; the others are
        reported in RV(unhealthy_nodes_waiting) and wait for a later run. 0 reports them without repairing any.
    type: int
    default: 1
  lease_wait:
    description: How long to wait for another run's Lease (or state file lock) before failing, in seconds (0 to 3600).
    type: int
    default: 30
  lease_duration:
    description: The Lease's C(leaseDurationSeconds) (15 to 3600); a run that stops renewing it (killed) is taken over
      after this long.
    type: int
    default: 60
  max_vcpus:
    description:
      - The most vCPUs the scaled pools' workers may have, existing and new (the leader not counted); no bound by
        default. A node counts its pool's largest instance type's C(DefaultVCpus) (8 for a C(c5.2xlarge)).
      - Growth past it is cut (the first pools of O(pools) get their nodes first); a pool is never shrunk for it and
        never taken below its O(pools[].min_size), and nodes running now are never terminated for it.
    type: int
  max_memory:
    description:
      - The most memory the scaled pools' workers may have, as a Kubernetes quantity with a unit (C(512Gi), C(2Ti)),
        as Karpenter's NodePool C(limits) and the pods' requests in O(demand) write it; a bare number would be bytes
        and is refused (but C(0)). No bound by default.
      - A node counts its pool's largest instance type's C(MemoryInfo.SizeInMiB) (16Gi for a C(c5.2xlarge)), not what
        pods can use of it. Enforced as O(max_vcpus).
    type: str
  max_hourly_cost:
    description:
      - The most the scaled pools' workers may cost, in US dollars per hour (C(12.5)); no bound by default. A node
        counts the hourly price of its pool's dearest instance type, spot ones at their spot price (at most the bid).
      - Enforced as O(max_vcpus). A pool whose instance types have no price (in neither the Price List nor the bundled
        table) is refused while it is set.
    type: float
  wait:
    description: Wait until new nodes run and removed ones are terminated.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds (0 to 86400).
    type: int
    default: 600
  validate_certs:
    description:
      - When set to C(false), SSL certificates will not be validated for communication with the AWS APIs (amazon.aws's
        option). Not the Kubernetes API server's certificate, which is checked unless C(K8S_AUTH_VERIFY_SSL=false) or
        the kubeconfig says otherwise, so turning off one check never turns off the other.
    type: bool
    default: true
    aliases: []
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - toil.cluster.aws.modules
  - kubernetes.core.k8s_auth_options
notes:
  - Supports check mode (plans only).
  - "The Kubernetes API is reached, when O(demand) is not given, with kubernetes.core's connection options and their
    C(K8S_AUTH_*) variables, as AWX's Kubernetes credential (C(K8S_AUTH_HOST), C(K8S_AUTH_API_KEY),
    C(K8S_AUTH_VERIFY_SSL), C(K8S_AUTH_SSL_CA_CERT)) sets them. With O(host) and a token (O(api_key)), client
    certificate (O(client_cert), O(client_key)) or O(username) and O(password), no kubeconfig is read. Else
    O(kubeconfig) (a file, or a dictionary) and O(context), then C(KUBECONFIG), C(~/.kube/config), then the pod's
    service account; the other options (O(ca_cert), O(proxy), ...) are set over it. O(validate_certs) is amazon.aws's
    (AWS's certificates) and not the API server's, which is checked unless C(K8S_AUTH_VERIFY_SSL=false) or the
    kubeconfig says otherwise. O(impersonate_groups) takes one group here. O(persist_config) has no effect."
requirements:
  - kubernetes >= 24.2.0 (Python client), unless O(demand) is given
"""

EXAMPLES = r"""
- name: One scaler run, from Kubernetes
  toil.cluster.toil_scaler:
    cluster: my-cluster
    zone: us-west-2a
    kubeconfig: /etc/kubernetes/admin.conf
    pools:
      - {name: spot, node_types: "c5.2xlarge/c5a.2xlarge:0.20", min_size: 0, max_size: 20}
      - {name: ondemand, node_types: c5.2xlarge, min_size: 1, max_size: 5}
    preemptible_compensation: 0.5
    state_path: /var/lib/toil-scaler/state.json
    metrics_path: /var/lib/prometheus/node-exporter/toil_scaler.prom

- name: Plan only, from a given demand
  toil.cluster.toil_scaler:
    cluster: my-cluster
    zone: us-west-2a
    apply: false
    pools:
      - {name: spot, node_types: "m5.large:0.1", min_size: 0, max_size: 10}
    demand:
      pods:
        - {name: align, cpu: "2", memory: 4Gi, ephemeral_storage: 10Gi, preemptible: true, count: 10}
  register: plan

- name: At most 64 vCPUs, 256 GiB and 4 USD an hour of workers, whatever the queue
  toil.cluster.toil_scaler:
    cluster: my-cluster
    zone: us-west-2a
    kubeconfig: /etc/kubernetes/admin.conf
    max_vcpus: 64
    max_memory: 256Gi
    max_hourly_cost: 4.0
    pools:
      - {name: ondemand, node_types: c5.2xlarge, min_size: 0, max_size: 20}
      - {name: spot, node_types: "c5.2xlarge:0.20", min_size: 0, max_size: 20}
"""

RETURN = r"""
pools:
  description: Per pool, what was decided (and done when applied).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The pool., type: str}
    current: {description: Nodes now., type: int}
    desired: {description: Nodes wanted., type: int}
    reason: {description: Why., type: str}
    placed: {description: Pending pods placed on this pool's nodes (existing and new)., type: int}
    new_nodes: {description: New nodes the pending pods need., type: int}
    victims: {description: Idle nodes chosen for removal., type: list, elements: str}
    node_hourly_cost: {description: "What one node costs, USD per hour (its dearest instance type; spot under the bid); null without a price.", type: float}
    deficit: {description: "Nodes that could not be launched (when applied).", type: int}
    instances: {description: "The pool's nodes after the run (when applied).", type: list, elements: dict}
unplaceable:
  description: Pods that fit no pool, with C(name), C(count), C(request) (C(cpu), C(memory), C(ephemeral_storage),
    C(gpu)), C(may_use_spot), C(arch) (their pin, or null), C(largest_shape) and C(reason) (what no pool offers).
  returned: always
  type: list
  elements: dict
queue_size:
  description: Pending pods.
  returned: always
  type: int
applied:
  description: Whether the pools were resized.
  returned: always
  type: bool
removed_nodes:
  description: Kubernetes nodes whose instance is gone, with C(name), C(provider_id) and C(deleted) (false in check mode
    and with O(apply=false)).
  returned: always
  type: list
  elements: dict
repaired_nodes:
  description:
    - Unhealthy nodes repaired this run (at most O(max_repairs)), with C(name), C(instance_id), C(pool), C(reason)
      (C(NotReady since <time>), with C( (Ready Unknown)) when the condition is Unknown, and/or
      C(instance status impaired)), C(since) (the Ready condition's C(lastTransitionTime), or null) and C(repaired)
      (false in check mode and with O(apply=false), where they are only reported).
    - When repaired, also C(evicted) and C(left) (the pods evicted, and those left to die with the instance) and
      C(node_deleted).
  returned: always
  type: list
  elements: dict
unhealthy_nodes_waiting:
  description: Unhealthy nodes beyond O(max_repairs), left for a later run (same keys as RV(repaired_nodes), C(repaired)
    false). They are not counted as room for pods, and their pool's size on EC2 is raised by them (up to its
    C(max_size)) so that its desired nodes are healthy ones.
  returned: always
  type: list
  elements: dict
leaving_nodes:
  description: Nodes whose Spot interruption notice came (tainted C(aws-node-termination-handler/spot-itn) by the
    kubernetes role's interruption handler or by aws-node-termination-handler), with C(name), C(instance_id) and
    C(pool). EC2 terminates them within two minutes, so they are not counted as room for pods, never repaired, and
    their pool's size on EC2 is raised by them (up to its C(max_size)), so this run launches their replacements.
  returned: always
  type: list
  elements: dict
budget:
  description:
    - The budgets and the scaled pools' workers against them. C(max_vcpus), C(max_memory) (bytes) and
      C(max_hourly_cost) (USD per hour; each null when not given), C(used_vcpus), C(used_memory) and
      C(used_hourly_cost) (the nodes now), C(planned_vcpus), C(planned_memory) and C(planned_hourly_cost) (the nodes at
      the desired sizes), and C(capped) (whether a budget cut some pool's growth; that pool's C(reason) says
      C(capped by max_vcpus 64 (would be 80)) or C(capped by max_hourly_cost 4.00 USD/h (would be 6.14 USD/h))).
    - Memory is in bytes, each node counted as its pool's largest instance type; costs as its dearest.
  returned: always
  type: dict
  sample:
    max_vcpus: 16
    max_memory: null
    used_vcpus: 4
    used_memory: 17179869184
    max_hourly_cost: null
    used_hourly_cost: 0.192
    planned_hourly_cost: 0.768
    planned_vcpus: 16
    planned_memory: 68719476736
    capped: true
cost:
  description:
    - The plan's cost for the pending pods, in US dollars per hour. C(new_nodes_hourly_cost) (the nodes the packing
      opens), C(lower_bound_hourly_cost) (no fleet that runs the pending pods costs less; for each resource, every pod's
      request at the cheapest price per unit of it among the pools it may use, the largest of these sums),
      C(binding_resource) (C(cpu), C(memory), C(disk) or C(gpu), the resource of that sum), C(ratio_to_lower_bound),
      C(strategy) (the packing kept) and C(prices_from) (C(price list), C(bundled table (<date>)), or C(none) in a
      region the bundled table lacks when the Price List cannot be read).
    - Costs are null when a pool has no price. Each pool's C(node_hourly_cost) in RV(pools) is the price of one node.
  returned: always
  type: dict
  sample:
    new_nodes_hourly_cost: 0.384
    lower_bound_hourly_cost: 0.36
    binding_resource: cpu
    ratio_to_lower_bound: 1.067
    strategy: cheapest
    prices_from: price list
lease:
  description: The Lease this run held (C(name), C(holder)).
  returned: when the demand was read from Kubernetes, outside check mode
  type: dict
"""

from ansible_collections.toil.cluster.plugins.module_utils.kube_client import KUBE_CONNECTION_ARG_SPEC
from ansible_collections.toil.cluster.plugins.module_utils.modules import WAIT_SPEC, ToilAWSModule
from ansible_collections.toil.cluster.plugins.module_utils.scaler import ScalerSettings, scale


def main():
    module = ToilAWSModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            zone=dict(type="str"),
            pools=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str"),
                    node_types=dict(type="raw", required=True),
                    min_size=dict(type="int", required=True),
                    max_size=dict(type="int", required=True),
                    node_storage=dict(type="int", default=50),
                    zones=dict(type="list", elements="str"),
                    subnets=dict(type="list", elements="str"),
                    image_id=dict(type="str"),
                ),
            ),
            demand=dict(type="dict"),
            authorized_keys=dict(type="list", elements="str", default=[], no_log=False),
            **KUBE_CONNECTION_ARG_SPEC,
            apply=dict(type="bool", default=True),
            beta_inertia=dict(type="float", default=0.1),
            preemptible_compensation=dict(type="float", default=0.0),
            scale_down_idle_seconds=dict(type="int", default=600),
            state_path=dict(type="path"),
            metrics_path=dict(type="path"),
            drain_timeout=dict(type="int", default=300),
            lease_wait=dict(type="int", default=30),
            repair_after_seconds=dict(type="int", default=600),
            max_repairs=dict(type="int", default=1),
            lease_duration=dict(type="int", default=60),
            max_vcpus=dict(type="int"),
            max_memory=dict(type="str"),
            max_hourly_cost=dict(type="float"),
            **WAIT_SPEC,
        ),
        supports_check_mode=True,
    )
    with module.input_errors():
        settings = ScalerSettings.from_params(module.params, module.check_mode)
    region = module.zone_region()
    cluster = settings.cluster
    with module.aws_errors(f"cluster {cluster} (scaling)", waiting_for=f"the nodes of cluster {cluster}"), module.input_errors():
        result = scale(settings, module.retrying_client("ec2", region=region), module.warn, module.price_list_client())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
