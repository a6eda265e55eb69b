#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: toil_cluster_info
short_description: Find Toil clusters on AWS and describe their resources
version_added: 0.1.0
description:
  - Describes one Toil cluster, or every Toil cluster in a region, with its security group, IAM role and
    instance profile, leader and workers.
  - Finds clusters launched by this collection and by C(toil launch-cluster) alike. A node belongs to
    cluster C when it is in the security group named C (Toil's rule) or is tagged C(clusterName=C).
  - The leader is the node tagged C(ToilNodeType=leader), else the oldest node, as in Toil.
  - Reads every page of results; Toil itself reads only the first page of DescribeInstances.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  name:
    description:
      - The cluster to describe. When omitted, every Toil cluster found in the region is described.
    type: str
  zone:
    description:
      - An availability zone of the cluster, like C(us-west-2a); the region is derived from it as Toil does.
      - Defaults to C(TOIL_AWS_ZONE). When neither is set, O(region) (or C(AWS_REGION)) is used.
    type: str
  include_stopped:
    description:
      - Also report stopped and stopping nodes.
    type: bool
    default: false
  ssh_user:
    description:
      - The login user given to each node, C(ansible_user) in RV(clusters[].hosts[].vars).
      - When omitted, as the C(toil.cluster.toil_ec2) inventory does, C(admin) on this collection's Debian
        nodes and C(core) on Toil's Flatcar nodes.
    type: str
  use_private_ip:
    description:
      - Give every node its private address as C(ansible_host) in RV(clusters[].hosts[].vars), as Toil's C(--use_private_ip)
        (the controller runs in the cluster's VPC).
      - Without it, nodes get their public address when they have one; a worker without one gets C(toil_jump), its
        leader, for P(toil.cluster.ssh_jump_args#filter) (the C(toil.cluster.toil_ec2) inventory's O(toil.cluster.toil_ec2#inventory:leader_as_bastion)).
    type: bool
    default: false
  host_keys:
    description:
      - Also read the SSH host keys of the cluster's live nodes from their console output (EC2 C(GetConsoleOutput)),
        where cloud-init writes them at first boot, so that the first ssh to a node can check its key
        (docs/host-keys.md). Adds RV(clusters[].host_keys), RV(clusters[].host_keys_missing) and
        RV(clusters[].known_hosts).
      - Only keys between cloud-init's whole-line markers C(-----BEGIN SSH HOST KEY KEYS-----) and
        C(-----END SSH HOST KEY KEYS-----) count, each a valid OpenSSH host public key; a node whose console has two
        blocks with different keys gets none.
    type: bool
    default: false
  host_keys_instances:
    description:
      - With O(host_keys), the nodes to read, by instance ID (they must be live nodes of the cluster); default every
        live node.
    type: list
    elements: str
  host_keys_timeout:
    description:
      - With O(host_keys), how long to wait (seconds) for nodes whose console output has no keys yet (a node still
        booting, or EC2 not serving its output yet); C(0) reads once. Nodes still without keys are listed in
        RV(clusters[].host_keys_missing), with the reason; the module does not fail for them.
    type: int
    default: 0
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - toil.cluster.aws.modules
"""

EXAMPLES = r"""
- name: Describe one cluster
  toil.cluster.toil_cluster_info:
    name: my-cluster
    zone: us-west-2a
  register: cluster

- name: Show the leader's address
  ansible.builtin.debug:
    msg: "{{ cluster.clusters[0].leader.public_ip }}"
  when: cluster.clusters[0].leader is not none

- name: Every Toil cluster in a region, including stopped nodes
  toil.cluster.toil_cluster_info:
    region: us-east-1
    include_stopped: true
  register: all_clusters
"""

RETURN = r"""
region:
  description: The region that was searched.
  returned: always
  type: str
  sample: us-west-2
clusters:
  description: The clusters found; with O(name), one entry whose RV(clusters[].exists) tells whether anything was found.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The cluster name.
      type: str
      sample: my-cluster
    exists:
      description: Whether any of the cluster's nodes, security groups or IAM resources exist.
      type: bool
    derived_names:
      description: The AWS names Toil derives from the cluster name.
      type: dict
      sample: {security_group: my-cluster, iam_role: my_cluster_toil, instance_profile: my_cluster_toil,
               internal_bucket: my-cluster--internal, kubernetes_cluster_tag: kubernetes.io/cluster/my-cluster}
    security_groups:
      description: The security groups named after the cluster (C(group_id), C(group_name), C(vpc_id)).
      type: list
      elements: dict
    iam_role:
      description: The cluster's IAM role (C(name), C(arn)), or null.
      type: dict
    instance_profile:
      description: The cluster's instance profile (C(name), C(arn)), or null.
      type: dict
    leader:
      description: The leader node, or null. Same keys as RV(clusters[].workers[]).
      type: dict
    workers:
      description: The worker nodes, oldest first.
      type: list
      elements: dict
      contains:
        instance_id: {description: The instance ID., type: str}
        role: {description: C(leader) or C(worker)., type: str}
        state: {description: The instance state., type: str}
        instance_type: {description: The instance type., type: str}
        image_id: {description: The AMI., type: str}
        zone: {description: The availability zone., type: str}
        private_ip: {description: The private IPv4 address., type: str}
        public_ip: {description: "The public IPv4 address, if any.", type: str}
        launch_time: {description: The launch time (ISO 8601)., type: str}
        preemptible: {description: "Whether the node is a spot instance (or its pool tagged it preemptible).", type: bool}
        pool: {description: "The worker pool (tag C(toil.cluster/pool)), if any.", type: str}
        security_groups: {description: The names of the node's security groups., type: list, elements: str}
        tags: {description: The node's tags., type: dict}
    node_count:
      description: The number of nodes, leader included.
      type: int
    hosts:
      description:
        - The nodes as the C(toil.cluster.toil_ec2) inventory gives them (names, groups and host variables), for
          M(ansible.builtin.add_host) to add the nodes an inventory does not know yet.
      type: list
      elements: dict
      contains:
        name: {description: The host name (the instance ID)., type: str}
        groups: {description: "The inventory groups, like C(toil_nodes), C(toil_leaders), C(toil_cluster_<name>).", type: list, elements: str}
        vars:
          description: >-
            The host variables (C(ansible_host), C(ansible_user), C(toil_cluster), C(toil_node_type), C(toil_leader),
            C(toil_pool), C(toil_preemptible), C(toil_instance_id), C(ec2_tags), C(toil_jump) ...), see the C(toil.cluster.toil_ec2) inventory.
          type: dict
    host_keys:
      description: With O(host_keys), each node's host keys (C(type base64)) by instance ID, as its console shows them.
      returned: when O(host_keys=true)
      type: dict
      sample: {i-0123456789abcdef0: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..."]}
    host_keys_missing:
      description: With O(host_keys), the nodes whose keys were not found, by instance ID, with the reason.
      returned: when O(host_keys=true)
      type: dict
    known_hosts:
      description:
        - With O(host_keys), RV(clusters[].host_keys) as known_hosts lines keyed by instance ID, for ssh's
          C(UserKnownHostsFile) with C(HostKeyAlias=<instance ID>).
      returned: when O(host_keys=true)
      type: str
"""

from ansible_collections.toil.cluster.plugins.module_utils.cluster_info import describe_clusters
from ansible_collections.toil.cluster.plugins.module_utils.host_keys import cluster_host_keys
from ansible_collections.toil.cluster.plugins.module_utils.modules import ToilAWSModule
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name


def main():
    module = ToilAWSModule(
        argument_spec=dict(
            name=dict(type="str"),
            zone=dict(type="str"),
            include_stopped=dict(type="bool", default=False),
            ssh_user=dict(type="str"),
            use_private_ip=dict(type="bool", default=False),
            host_keys=dict(type="bool", default=False),
            host_keys_instances=dict(type="list", elements="str", no_log=False),
            host_keys_timeout=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["name"] is not None:
        with module.input_errors():
            validate_cluster_name(params["name"])
    region = module.zone_region()
    subject = f"cluster {params['name']}" if params["name"] else f"the clusters of {region}"
    with module.aws_errors(subject):
        clusters = describe_clusters(
            module.retrying_client("ec2", region=region),
            module.retrying_client("iam", region=region),
            params["name"],
            params["include_stopped"],
            region,
            params["ssh_user"],
            warn=module.warn,
            use_private_ip=params["use_private_ip"],
        )
    if params["host_keys"]:
        ec2 = module.retrying_client("ec2", region=region)
        for cluster in clusters:
            with module.input_errors(), module.aws_errors(f"the host keys of cluster {cluster['name']}"):
                cluster.update(cluster_host_keys(ec2, cluster, params["host_keys_instances"], params["host_keys_timeout"]))
    module.exit_json(changed=False, region=region, clusters=clusters)


if __name__ == "__main__":
    main()
