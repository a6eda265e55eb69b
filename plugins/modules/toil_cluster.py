#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: toil_cluster
short_description: Launch or destroy a Toil-compatible cluster on AWS (security group, IAM, leader)
version_added: 0.1.0
description:
  - The Ansible equivalent of C(toil launch-cluster) (the leader half) and C(toil destroy-cluster).
  - With O(state=present), makes the cluster's security group (named exactly like the cluster), its IAM role
    and instance profile (named as Toil names them, C(my-cluster) -> C(my_cluster_toil)) and the leader instance.
    Workers are added with M(toil.cluster.toil_nodepool).
  - With O(state=absent), removes the cluster in Toil's order, including what C(toil launch-cluster) made.
  - Clusters stay compatible with Toil's own tools, so C(toil destroy-cluster) removes what this module
    launches. See the collection's C(docs/toil-compatibility.md) for where it deliberately differs from Toil.
  - Every input is checked before the first change; a re-run with the same inputs changes nothing.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  name:
    description:
      - The cluster name. Lowercase letters, digits and C(-), at most 59 characters, so that every name derived
        from it fits AWS's limits.
    type: str
    required: true
  state:
    description:
      - V(present) launches the cluster (or leaves an existing one alone); V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  cluster_type:
    description:
      - The scheduler. Only V(kubernetes); Toil has deprecated Mesos clusters, so V(mesos) is refused.
    type: str
    choices: [kubernetes, mesos]
    default: kubernetes
  zone:
    description:
      - The availability zone, like C(us-west-2a). Defaults to C(TOIL_AWS_ZONE), as in Toil; one of them is required,
        except with O(state=absent), where O(region) alone is enough.
      - The region is derived from it; a O(region) that does not match is an error.
    type: str
  leader_node_type:
    description:
      - The leader's instance type. Kubernetes needs at least 2 vCPUs. Required with O(state=present).
    type: str
  key_pair_name:
    description:
      - The EC2 key pair to put on the leader. It must exist. Required with O(state=present).
    type: str
  owner:
    description:
      - The C(Owner) tag. Defaults to C(TOIL_OWNER_TAG), then O(key_pair_name), then C(toil), as in Toil.
    type: str
  tags:
    description:
      - Tags for every resource of the cluster. When not set, C(TOIL_OWNER_TAG) and the JSON object in C(TOIL_AWS_TAGS)
        are used, as in Toil.
      - The tags that mark cluster membership (C(Name), C(clusterName), C(ToilNodeType), C(sshKeyName),
        C(kubernetes.io/cluster/<name>)) cannot be overridden.
    type: dict
  vpc_subnet:
    description:
      - The leader's subnet, in O(zone). Defaults to the zone's default subnet. The security group is made in its VPC.
    type: str
  leader_storage:
    description:
      - Size of the leader's encrypted gp3 root volume, in GiB, from 8 (the image's root file system) to 16384
        (EBS gp3's largest volume).
    type: int
    default: 50
  worker_node_types:
    description:
      - Instance types the cluster's worker pools will use (the playbook C(toil.cluster.launch_cluster) passes them). Each is
        checked with C(DescribeInstanceTypes) with the leader's, before anything is created, so an unknown worker
        type fails the launch before the security group, the IAM role and the leader exist.
      - Only checked; the pools themselves are M(toil.cluster.toil_nodepool)'s.
    type: list
    elements: str
    default: []
  image_id:
    description:
      - The leader's AMI. Defaults to C(TOIL_AWS_AMI), then the newest official Debian 12 AMI for the instance
        type's architecture.
    type: str
  aws_ec2_profile_arn:
    description:
      - An existing instance profile for the leader. No IAM role or profile is then created.
    type: str
  aws_ec2_extra_security_group_ids:
    description:
      - More security groups for every node (Toil's C(--awsEc2ExtraSecurityGroupId)), to reach EFS or a database from
        jobs. The leader gets them here; M(toil.cluster.toil_nodepool) and M(toil.cluster.toil_scaler) give each worker
        the leader's groups, as Toil does, and the nodes' own launch permission (O(node_policy=least_privilege)) names
        exactly the cluster's group and these.
      - They must be in the leader's VPC and must not be named like the cluster (destroying the cluster deletes every
        group named like it). They are never deleted.
    type: list
    elements: str
    default: []
  s3_buckets:
    description:
      - Buckets the leader may read and write for workflow inputs and outputs, beyond Toil's job-store buckets
        (C(*--toil)). Only with O(node_policy=least_privilege).
    type: list
    elements: str
    default: []
  job_store_patterns:
    description:
      - With O(node_policy=least_privilege), the Toil job stores the nodes may use, as job store name patterns
        (V(my-lab-*) allows C(aws:us-west-2:my-lab-run1)). Empty keeps every C(*--toil) job store bucket of the
        account reachable from every job (see C(docs/iam.md)).
    type: list
    elements: str
    default: []
  node_policy:
    description:
      - V(least_privilege) gives the leader what it needs to run Toil with the AWS job store and to run the
        scaler, scoped to this cluster (see C(docs/iam.md)). V(toil) gives Toil's own broad policy
        (C(iam:*), C(ec2:*), C(s3:*), C(sdb:*)).
    type: str
    choices: [least_privilege, toil]
    default: least_privilege
  ssh_cidrs:
    description:
      - Networks allowed to reach the nodes on tcp/22. Toil allows the whole internet, which is the default.
    type: list
    elements: str
    default: ["0.0.0.0/0", "::/0"]
  replace_lost_leader:
    description:
      - What to do with a cluster whose nodes are there but whose leader is gone (terminated behind the collection's
        back). V(false) stops before any change, with a message naming the live nodes (instance IDs and pools).
        V(true) launches a new leader with the cluster's name, tags, security group and instance profile.
      - The old leader's Kubernetes control plane and its state are gone with it. The playbook
        C(toil.cluster.configure_cluster) (run by C(toil.cluster.launch_cluster)) then resets every worker joined
        to the old API server (C(kubeadm reset -f)) and joins it to the new leader. The result lists them in
        RV(rejoin_instance_ids).
      - A worker is never made leader.
    type: bool
    default: false
  wait:
    description:
      - Wait until the leader runs (O(state=present)) or until every instance is terminated (O(state=absent)).
        Removal always waits for instances before deleting what they use.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds (0 to 86400). The task fails when it runs out.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - toil.cluster.aws.modules
notes:
  - Supports check mode (nothing is changed; the result says what would be) and diff mode.
  - The leader requires IMDSv2 (hop limit 2, so pods can reach the metadata service).
"""

EXAMPLES = r"""
- name: Launch a cluster's leader
  toil.cluster.toil_cluster:
    name: my-cluster
    zone: us-west-2a
    leader_node_type: t3.large
    key_pair_name: me
    tags:
      Project: rna-seq
    s3_buckets: [my-inputs, my-results]
  register: cluster

- name: Show the leader's address
  ansible.builtin.debug:
    msg: "ssh admin@{{ cluster.leader.public_ip }}"

- name: Remove the cluster (also one made by toil launch-cluster)
  toil.cluster.toil_cluster:
    name: my-cluster
    zone: us-west-2a
    state: absent
"""

RETURN = r"""
leader:
  description: The leader (with O(state=present)); null in check mode when it would be launched.
  returned: state=present
  type: dict
  contains:
    instance_id: {description: "The instance ID.", type: str}
    private_ip: {description: "The private IPv4 address.", type: str}
    public_ip: {description: "The public IPv4 address, or null.", type: str}
    zone: {description: "The availability zone.", type: str}
    instance_type: {description: "The instance type.", type: str}
    state: {description: "The instance state.", type: str}
    image_id: {description: "The AMI.", type: str}
    launch_time: {description: "The launch time (ISO 8601).", type: str}
    preemptible: {description: "Whether the node is a spot instance (never, for a leader).", type: bool}
security_group_id:
  description: The cluster's security group; null in check mode when it would be created.
  returned: state=present
  type: str
  sample: sg-0123456789abcdef0
instance_profile_arn:
  description: The leader's instance profile.
  returned: state=present
  type: str
  sample: arn:aws:iam::123456789012:instance-profile/my_cluster_toil
tags:
  description: The leader's tags.
  returned: state=present
  type: dict
  sample: {Name: my-cluster, Owner: me, clusterName: my-cluster, ToilNodeType: leader, sshKeyName: me}
image_id:
  description: The leader's AMI.
  returned: state=present
  type: str
vpc_id:
  description: The VPC of the cluster.
  returned: state=present
  type: str
subnet_id:
  description: The leader's subnet.
  returned: state=present
  type: str
replaced_lost_leader:
  description: Whether the cluster had lost its leader and a new one was (in check mode, would be) launched (O(replace_lost_leader)).
  returned: state=present
  type: bool
rejoin_instance_ids:
  description: The nodes left by the lost leader, which C(toil.cluster.configure_cluster) resets and joins to the new one.
  returned: state=present
  type: list
  elements: str
removed:
  description: What was (or in check mode would be) removed.
  returned: state=absent
  type: dict
  contains:
    leader: {description: "The leader's instance ID, or null.", type: str}
    instances: {description: "Every instance of the cluster.", type: list, elements: str}
    spot_requests: {description: "Open spot requests tagged for the cluster.", type: list, elements: str}
    launch_templates: {description: "Launch templates tagged for the cluster.", type: list, elements: str}
    auto_scaling_groups: {description: "Auto scaling groups tagged for the cluster (Toil's managed pools).", type: list, elements: str}
    security_groups: {description: "Security groups named like the cluster.", type: list, elements: str}
    iam_role: {description: "The IAM role, or null.", type: str}
    instance_profile: {description: "The instance profile, or null.", type: str}
    buckets: {description: "Toil's internal bucket C(<name>--internal), if it existed.", type: list, elements: str}
"""

from ansible_collections.toil.cluster.plugins.module_utils.cluster import present, validate_spec
from ansible_collections.toil.cluster.plugins.module_utils.destroy import destroy, plan_destroy
from ansible_collections.toil.cluster.plugins.module_utils.modules import WAIT_SPEC, ToilAWSModule


def main():
    module = ToilAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            cluster_type=dict(type="str", choices=["kubernetes", "mesos"], default="kubernetes"),
            zone=dict(type="str"),
            leader_node_type=dict(type="str"),
            key_pair_name=dict(type="str", no_log=False),
            owner=dict(type="str"),
            tags=dict(type="dict"),
            vpc_subnet=dict(type="str"),
            leader_storage=dict(type="int", default=50),
            worker_node_types=dict(type="list", elements="str", default=[]),
            image_id=dict(type="str"),
            aws_ec2_profile_arn=dict(type="str"),
            aws_ec2_extra_security_group_ids=dict(type="list", elements="str", default=[]),
            s3_buckets=dict(type="list", elements="str", default=[]),
            job_store_patterns=dict(type="list", elements="str", default=[]),
            node_policy=dict(type="str", choices=["least_privilege", "toil"], default="least_privilege"),
            ssh_cidrs=dict(type="list", elements="str", default=["0.0.0.0/0", "::/0"]),
            replace_lost_leader=dict(type="bool", default=False),
            **WAIT_SPEC,
        ),
        supports_check_mode=True,
    )
    params = module.params
    with module.input_errors():
        spec = validate_spec(params)
    with module.aws_errors(f"cluster {spec.name}", waiting_for=f"the instances of {spec.name}"):
        ec2 = module.retrying_client("ec2", region=spec.region)
        iam = module.retrying_client("iam", region=spec.region)
        if params["state"] == "absent":
            s3 = module.retrying_client("s3", region=spec.region)
            autoscaling = module.retrying_client("autoscaling", region=spec.region)
            plan = plan_destroy(ec2, iam, s3, autoscaling, spec.name, keep_group_ids=spec.extra_group_ids)
            changed = any(plan.values())
            if changed and not module.check_mode:
                destroy(ec2, iam, s3, autoscaling, plan, spec.name, params["wait_timeout"])
            diff = {"before": {k: v for k, v in plan.items() if v}, "after": {}}
            module.exit_json(changed=changed, removed=plan, diff=diff)
        with module.input_errors():
            changed, result, diff = present(
                ec2,
                iam,
                module.retrying_client("sts", region=spec.region),
                spec,
                module.check_mode,
                params["wait"],
                params["wait_timeout"],
                module.warn,
            )
        module.exit_json(changed=changed, diff=diff, **result)


if __name__ == "__main__":
    main()
