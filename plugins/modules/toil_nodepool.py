#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: toil_nodepool
short_description: Size a Toil cluster's worker pool on AWS (static or ranged, on-demand or spot)
version_added: 0.1.0
description:
  - The worker half of C(toil launch-cluster --nodeTypes ... -w ...), and the actuator of M(toil.cluster.toil_scaler).
  - A pool is the cluster's workers tagged C(toil.cluster/pool=<name>). Workers join the cluster's security group (so
    Toil's own provisioner sees them) and the leader's other security groups (Toil's C(--awsEc2ExtraSecurityGroupId)
    reaches every node), use the leader's instance profile and key pair, require IMDSv2, boot from an
    encrypted gp3 root volume, and carry the cluster's tags plus C(ToilNodeType=worker), the pool and whether they are
    preemptible, on the instance and its volumes.
  - Scale-up launches the shortfall with one instant EC2 Fleet (CreateFleet) over every instance type of the pool in
    every subnet of the pool, from the pool's launch template C(<cluster>.pool.<pool>) (tagged with the cluster's tags;
    O(state=absent) and destroying the cluster delete it). EC2 falls back across types and zones within that call,
    spot pools by C(price-capacity-optimized) with the bid as the maximum price, on-demand pools C(prioritized) in the
    order the types are given. What could not be launched is returned as RV(pool.deficit), with the fleet's errors in
    RV(pool.capacity_errors), instead of failing. A ClientToken derived from the pool's intent in this generation of the
    cluster (its security group and leader, the pool's live members and its target) makes a retried or concurrent run
    launch once. EC2 keeps a token at least 24 hours after its instances end and answers it with them; a pool that comes
    back to an earlier intent (2 -> 0 -> 2, a node lost behind the collection's back, a cluster relaunched under its
    name) moves on to the next token of the same deterministic chain, so it launches new nodes and a retry still lands
    on the same ones. A fleet that launched nothing keeps its token at EC2; the pool's launch template remembers that
    token, so the next run of the same intent tries again.
  - A static pool's node lost behind the collection's back is replaced by the next run (what
    C(toil.cluster.launch_cluster) and C(toil.cluster.autoscale) run).
  - Budgets. O(max_vcpus), O(max_memory) and O(max_hourly_cost) bound all the cluster's workers (every pool's, the
    leader not counted), as M(toil.cluster.toil_scaler)'s do its pools'; each running worker counts its instance type's
    C(DefaultVCpus), C(MemoryInfo.SizeInMiB) and hourly price (spot ones at the spot price now), each new node its
    pool's largest and dearest type's. Growth past a budget is refused down to what fits (never below the pool's
    current size nor its O(min_size)), with a warning; RV(budget) says so. Prices as M(toil.cluster.toil_scaler)'s
    (the AWS Price List, else a bundled table); where a worker's or the pool's type has no price (such as in a region
    the bundled table lacks, when the Price List cannot be read), O(max_hourly_cost) is refused before any change.
  - Scale-down never goes below the pool's minimum and never touches the leader. It removes
    O(terminate_instance_ids) first, then nodes that have not joined Kubernetes yet (no C(toil.cluster/joined=true)
    tag), then the newest.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  cluster:
    description: The cluster's name. Its leader must exist (see M(toil.cluster.toil_cluster)).
    type: str
    required: true
  name:
    description:
      - The pool's name, lowercase letters, digits and C(-). Defaults to the first instance type, with C(-spot) for
        spot pools (C(c5.4xlarge:0.42) -> C(c5-4xlarge-spot)).
    type: str
  node_types:
    description:
      - The pool's node type, in Toil's syntax (C(c5.4xlarge/c5a.4xlarge:0.42); a bid means spot) or as a mapping
        with C(instance_types) (a list, in order of preference) and C(spot_bid).
      - Or a mapping with C(requirements) instead of C(instance_types), choosing the types by their attributes -
        C(vcpus) and C(memory_gib) (a number, or a range C(4-16), or C(4-) for no upper bound), C(arch) (C(x86_64),
        the default, or C(arm64)), C(exclude) and C(include) (instance type patterns like C(t*)), C(burstable) and
        C(bare_metal) (default false, as EC2's attribute-based selection), C(max_types) (default 10, at most 40),
        C(gpus) (a number or range of NVIDIA GPUs, at least 1, like C(1-4)).
        Each run finds the region's types that match through C(DescribeInstanceTypes), smallest first (GPUs, then
        vCPUs, then memory, current generations first), without GPU or other accelerated types unless C(gpus) is
        given (then only types with that many NVIDIA GPUs), and for a spot pool only types sold as spot; the pool
        tries them in that order. Such a pool needs O(name).
    type: raw
    required: true
  count:
    description:
      - The size of a static pool, at most 5000 (Kubernetes' largest supported cluster). Mutually exclusive with
        O(min_size)/O(max_size).
    type: int
  min_size:
    description: The lower bound of a ranged pool (0 to 5000).
    type: int
  max_size:
    description: The upper bound of a ranged pool (0 to 5000, Kubernetes' largest supported cluster).
    type: int
  desired:
    description:
      - The size a ranged pool should have now, within O(min_size) and O(max_size). Without it, the pool keeps its
        current size brought within the bounds.
    type: int
  node_storage:
    description: Size of each node's encrypted gp3 root volume, in GiB, 8 to 16384 (EBS gp3's largest volume).
    type: int
    default: 50
  zone:
    description:
      - A zone of the cluster; the region is derived from it (defaults to C(TOIL_AWS_ZONE), else O(region)). It does
        not place the nodes (it used to pin them to that zone); O(zones) does.
    type: str
  zones:
    description:
      - Availability zones of the cluster's region (like C(us-west-2a)) the new nodes may use. Without it, every zone.
      - New nodes go to the subnets like the leader's, as Toil places its workers - the C(available) subnets of the
        leader's VPC with the same default-for-zone setting and the same network ACLs as the leader's subnet, in any
        zone - restricted to these zones. They are tried in order, each instance type in every subnet before the
        next type, so a zone without capacity falls over to the next - for a spot pool, the zones whose recent spot price
        of the first instance type is under the bid first, steadiest first (Toil's rule); for an on-demand pool, the
        leader's zone first, then the others by name; in a zone, the leader's subnet first.
      - A zone without such a subnet fails the task before anything is changed.
    type: list
    elements: str
  subnets:
    description: Subnets of the cluster's VPC for new nodes, tried in the order given. Overrides O(zones).
    type: list
    elements: str
  labels:
    description:
      - Kubernetes node labels the C(kubernetes) role applies when the node joins. Spot nodes also get
        C(eks.amazonaws.com/capacityType=SPOT), which Toil's Kubernetes batch system looks for.
      - The labels this collection sets (keys starting with C(toil.cluster/), like the pool label
        C(toil.cluster/pool)) and the spot labels cannot be given, since they say which pool a node is in and whether it is
        spot. Nor can C(kubernetes.io/arch) and C(kubernetes.io/os) (and their C(beta.) twins), which each node's kubelet sets
        them from itself, and M(toil.cluster.toil_scaler) packs pods pinned to an architecture by them.
    type: dict
    default: {}
  authorized_keys:
    description:
      - OpenSSH public keys put on the nodes at boot through cloud-init, so the leader's scaler can configure the
        nodes it launches.
    type: list
    elements: str
    default: []
  image_id:
    description:
      - The nodes' AMI. Defaults to C(TOIL_AWS_AMI), then the newest official Debian 12 AMI for each instance type's
        architecture.
    type: str
  terminate_instance_ids:
    description: Nodes of this pool to remove first when the pool shrinks (the scaler's choice).
    type: list
    elements: str
    default: []
  max_vcpus:
    description: The most vCPUs all the cluster's workers may have (the leader not counted); no bound by default.
    type: int
  max_memory:
    description: The most memory all the cluster's workers may have, a Kubernetes quantity with a unit (C(512Gi));
      no bound by default.
    type: str
  max_hourly_cost:
    description: The most all the cluster's workers may cost, in US dollars per hour (C(12.5)); no bound by default.
    type: float
  state:
    description: V(present) sizes the pool; V(absent) terminates the pool's nodes (only them).
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait until new nodes run and removed nodes are terminated.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds (0 to 86400). The task fails when it runs out.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - toil.cluster.aws.modules
notes:
  - Supports check mode and diff mode (pool sizes before and after).
"""

EXAMPLES = r"""
- name: A static pool of 3 on-demand workers
  toil.cluster.toil_nodepool:
    cluster: my-cluster
    node_types: m5.large
    count: 3

- name: A ranged spot pool that may fall back to a second type
  toil.cluster.toil_nodepool:
    cluster: my-cluster
    name: align
    node_types: c5.4xlarge/c5a.4xlarge:0.42
    min_size: 0
    max_size: 20
    desired: 8
    labels: {workload: align}
  register: pool

- name: Tell the scaler what could not be had
  ansible.builtin.debug:
    msg: "{{ pool.pool.deficit }} nodes short"

- name: Remove a pool's nodes
  toil.cluster.toil_nodepool:
    cluster: my-cluster
    node_types: m5.large
    state: absent

- name: A spot pool of the smallest types with 4 to 16 vCPUs and 16 to 64 GiB, no burstable t* types
  toil.cluster.toil_nodepool:
    cluster: my-cluster
    name: general-spot
    node_types:
      requirements: {vcpus: 4-16, memory_gib: 16-64, arch: x86_64, exclude: ["t*"]}
      spot_bid: 0.40
    min_size: 0
    max_size: 20

- name: On-demand workers in two zones only (the leader's first)
  toil.cluster.toil_nodepool:
    cluster: my-cluster
    zone: us-west-2a
    node_types: m5.large
    count: 4
    zones: [us-west-2a, us-west-2b]
"""

RETURN = r"""
budget:
  description:
    - With a budget, the cluster's workers against it. C(max_vcpus), C(max_memory) (bytes), C(max_hourly_cost) (USD per
      hour), C(used_vcpus), C(used_memory), C(used_hourly_cost) (the workers now), C(planned_vcpus), C(planned_memory),
      C(planned_hourly_cost) (with the pool at its new size), C(capped) (growth was refused), C(node_hourly_cost) (one
      new node's price), C(prices_from) and C(message) (why growth was refused, or null).
  returned: when O(max_vcpus), O(max_memory) or O(max_hourly_cost) is given and O(state=present)
  type: dict
pool:
  description: The pool after the change (in check mode, as it is, with RV(pool.desired) the size it would get).
  returned: always
  type: dict
  contains:
    name: {description: The pool's name., type: str}
    cluster: {description: The cluster's name., type: str}
    node_types: {description: "The node type, in Toil's syntax.", type: str}
    desired: {description: The size asked for., type: int}
    min_size: {description: The lower bound., type: int}
    max_size: {description: The upper bound., type: int}
    running: {description: Nodes running., type: int}
    pending: {description: Nodes starting., type: int}
    spot: {description: Spot nodes., type: int}
    on_demand: {description: On-demand nodes., type: int}
    deficit: {description: "Nodes that could not be launched (no capacity, or spot above the bid).", type: int}
    capacity_errors: {description: "The fleet's errors, one C(<type> in <subnet>: <code>) per capacity pool that failed.", type: list, elements: str,
                      returned: when the fleet reported errors}
    instances:
      description: The pool's nodes, oldest first.
      type: list
      elements: dict
      contains:
        instance_id: {description: The instance ID., type: str}
        private_ip: {description: The private IPv4 address., type: str}
        public_ip: {description: "The public IPv4 address, or null.", type: str}
        instance_type: {description: The instance type., type: str}
        image_id: {description: The AMI., type: str}
        preemptible: {description: Whether the node is a spot instance., type: bool}
        launch_time: {description: The launch time (ISO 8601)., type: str}
        state: {description: The instance state., type: str}
        zone: {description: The availability zone., type: str}
"""

from ansible_collections.toil.cluster.plugins.module_utils.modules import WAIT_SPEC, ToilAWSModule
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import reconcile, validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.pool_budget import within_budget
from ansible_collections.toil.cluster.plugins.module_utils.scaler import validate_budget


def main():
    module = ToilAWSModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            name=dict(type="str"),
            node_types=dict(type="raw", required=True),
            count=dict(type="int"),
            min_size=dict(type="int"),
            max_size=dict(type="int"),
            desired=dict(type="int"),
            node_storage=dict(type="int", default=50),
            zone=dict(type="str"),
            zones=dict(type="list", elements="str"),
            subnets=dict(type="list", elements="str"),
            labels=dict(type="dict", default={}),
            authorized_keys=dict(type="list", elements="str", default=[], no_log=False),
            image_id=dict(type="str"),
            terminate_instance_ids=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            max_vcpus=dict(type="int"),
            max_memory=dict(type="str"),
            max_hourly_cost=dict(type="float"),
            **WAIT_SPEC,
        ),
        supports_check_mode=True,
    )
    params = module.params
    with module.input_errors():
        spec = validate_pool_spec(params)
        budget = validate_budget(params["max_vcpus"], params["max_memory"], params["max_hourly_cost"])
    region = module.zone_region()
    with module.aws_errors(f"pool {spec.name} of cluster {spec.cluster}", waiting_for=f"the nodes of pool {spec.name}"), module.input_errors():
        ec2 = module.retrying_client("ec2", region=region)
        spec, budget_report = within_budget(ec2, module.price_list_client() if budget else None, spec, params["state"], budget, module.warn)
        changed, pool, diff = reconcile(ec2, spec, params["state"], module.check_mode, params["wait"], params["wait_timeout"])
    if pool["deficit"]:
        module.warn(f"Pool {spec.name} is {pool['deficit']} node(s) short: {'; '.join(pool.get('capacity_errors', []))}")
    result = {"budget": budget_report} if budget_report else {}
    module.exit_json(changed=changed, pool=pool, diff=diff, **result)


if __name__ == "__main__":
    main()
