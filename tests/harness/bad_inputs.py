"""Bad-input tables shared by more than one test: each is proven where its module is tested and again, with the
rest of the collection's bad inputs, in test_bad_inputs.py's one table.

- ``CLUSTER_BAD_INPUTS``: toil_cluster option overrides (on top of a valid launch) and the message each must give
  (test_toil_cluster.py::test_bad_input_fails_before_any_change);
- ``POOL_BAD_INPUTS``: toil_nodepool options (on top of cluster and zone) and their messages
  (test_toil_nodepool.py::test_bad_input_fails_before_any_change);
- ``INVENTORY_BAD_CONFIGS``: toil_ec2 inventory configurations by name, with their messages
  (test_toil_ec2_inventory.py::test_bad_configuration_is_a_clear_error).
"""

from __future__ import annotations

CLUSTER_BAD_INPUTS = [
    ({"name": "Tcl_Bad"}, "must be lowercase"),
    ({"cluster_type": "mesos"}, "Toil has deprecated Mesos"),
    ({"job_store_patterns": ["My_Lab-*"]}, "Invalid job store name pattern 'My_Lab-*'"),
    ({"zone": "us-east-1a", "region": "us-west-2"}, "is not in the region us-west-2"),
    ({"zone": "us-west-2z"}, "is not a zone of this region"),
    ({"key_pair_name": "no-such-key"}, "Key pair 'no-such-key' does not exist"),
    ({"leader_node_type": "t9.bogus"}, "Unknown instance type 't9.bogus'"),
    ({"leader_node_type": "t2.micro"}, "at least 2 vCPUs"),
    ({"leader_node_type": None}, "leader_node_type is required"),
    ({"ssh_cidrs": ["10.0.0.1/8"]}, "is not a network in CIDR notation"),
    ({"s3_buckets": ["Not_A_Bucket"]}, "Not_A_Bucket"),
    ({"leader_storage": 4}, "at least 8 GiB"),
    ({"image_id": "ami-00000000000000000"}, "does not exist"),
    ({"image_id": "ami-0d12e1ac5d5e4a003"}, "is arm64, but the instance type runs x86_64"),
    ({"vpc_subnet": "subnet-00000000000000000"}, "does not exist"),
    ({"aws_ec2_profile_arn": "my-profile"}, "is not an instance profile ARN"),
    ({"tags": {"clusterName": "other"}}, "cannot be overridden"),
    ({"zone": None}, "No availability zone"),
    # issue #16: what Python's parsing let through (digits of other scripts, `$` before a newline, no upper bound)
    ({"leader_storage": "٨٠"}, "leader_storage: '٨٠' is not a number written in ASCII digits"),
    ({"leader_storage": 100000}, "leader_storage must be at most 16384 GiB"),
    ({"wait_timeout": -1}, "wait_timeout must not be negative"),
    ({"region": "us-west-2\n"}, "is not an AWS region name"),
    ({"aws_ec2_profile_arn": "arn:aws:iam::123456789012:instance-profile/p\n"}, "is not an instance profile ARN"),
    ({"worker_node_types": ["m5.large", "t9.bogus"]}, "Unknown instance type 't9.bogus'"),
]

POOL_BAD_INPUTS = [
    ({"node_types": "m5.large:-1", "count": 1}, "spot bid must be a positive number"),
    # issue #16: digits of other scripts, no upper bound, labels that would override the collection's own
    ({"node_types": "m5.large", "count": "٣"}, "count: '٣' is not a number written in ASCII digits"),
    ({"node_types": "m5.large:١.٥", "count": 1}, "the spot bid '١.٥' is not a number"),
    ({"node_types": "m5.large", "count": 100000}, "count must be at most 5000 nodes"),
    ({"node_types": "m5.large", "min_size": 0, "max_size": 100000}, "max_size must be at most 5000 nodes"),
    ({"node_types": "m5.large", "count": 1, "node_storage": 100000}, "node_storage must be at most 16384 GiB"),
    ({"node_types": "m5.large", "count": 1, "wait_timeout": -5}, "wait_timeout must not be negative"),
    ({"node_types": "m5.large", "count": 1, "labels": {"toil.cluster/pool": "other"}}, "'toil.cluster/pool' is set by this collection"),
    ({"node_types": "m5.large", "count": 1, "labels": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}}, "is set by this collection"),
    # issue #18: the kubelet's own architecture label, which the scaler packs pinned pods by
    ({"node_types": "m5.large", "count": 1, "labels": {"kubernetes.io/arch": "arm64"}}, "'kubernetes.io/arch' is set by each node's kubelet"),
    ({"node_types": "m5.large", "count": 1, "labels": {"team": "a\n"}}, "is not a Kubernetes label value"),
    ({"node_types": "m5.large", "count": 1, "region": "us-west-2\n"}, "is not an AWS region name"),
    ({"node_types": "m5.large", "min_size": 3, "max_size": 1}, "min_size 3 is larger than max_size 1"),
    ({"node_types": "m5.large", "count": -1}, "negative"),
    ({"node_types": "m5.large", "count": 1, "min_size": 0}, "not both"),
    ({"node_types": "m5.large", "count": 1, "cluster": "no-such-cluster"}, "Unknown cluster 'no-such-cluster'"),
    ({"node_types": "m5.large", "count": 1, "labels": {"bad key!": "x"}}, "is not a Kubernetes label key"),
    # issue #18: instance types by requirements (checked before, and found before, anything is changed)
    ({"node_types": {"requirements": {"vcpus": 4}}, "count": 1}, "needs a name: its instance types are found only when it runs"),
    ({"name": "r", "node_types": {"requirements": {"vcpus": "16-4"}}, "count": 1}, "is not a range from a smaller to a larger number"),
    ({"name": "r", "node_types": {"requirements": {"vcpus": 4, "gpus": 0}}, "count": 1}, "requirements.gpus: 0 allows no GPU"),
    ({"name": "r", "node_types": {"requirements": {"vcpus": 4, "fpgas": 1}}, "count": 1}, "Unknown key(s) fpgas in requirements"),
    ({"name": "r", "node_types": {"requirements": {"vcpus": 4}, "instance_types": ["m5.large"]}, "count": 1}, "instance_types or requirements, not both"),
    ({"name": "r", "node_types": {"requirements": {"vcpus": 4, "exclude": ["t*\n"]}}, "count": 1}, "is not an instance type pattern"),
    ({"node_types": "m5.large", "count": 1, "authorized_keys": ["not a key"]}, "is not an OpenSSH public key"),
    ({"node_types": "m5.large", "count": 1, "terminate_instance_ids": ["i-nope"]}, "is not an instance ID"),
    ({"node_types": "t9.bogus", "count": 1}, "Unknown instance type 't9.bogus'"),
    ({"node_types": "m5.large", "count": 1, "cluster": "Bad_Name"}, "must be lowercase"),
    # A valid key, a carriage return, then cloud-config: the old check let it through to a root runcmd (issue #16).
    (
        {
            "node_types": "m5.large",
            "count": 1,
            "authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIve15EbVdcnoqsbxij3RkWlH+w6ir6lGNs2noJH7ahV me@host\rruncmd: [touch /root/pwned]"],
        },
        "is not an OpenSSH public key",
    ),
]

INVENTORY_BAD_CONFIGS = {
    "unknown-option": ({"regions": ["us-west-2"], "hostname": ["public_ip"]}, "unknown option(s) hostname"),
    "bad-region": ({"regions": ["us-west2"]}, "'us-west2' is not an AWS region name"),
    "bad-cluster": ({"clusters": ["My_Cluster"]}, "Invalid cluster name 'My_Cluster'"),
    "bad-hostname": ({"hostnames": ["tag:Name"]}, "Invalid value ['tag:Name'] for config 'hostnames'"),
    "bad-node-type": ({"node_types": ["master"]}, "Invalid value ['master'] for config 'node_types'"),
    # issue #16
    "region-newline": ({"regions": ["us-west-2\n"]}, "is not an AWS region name"),
    "ssh-user-space": ({"regions": ["us-west-2"], "ssh_user": "ad min"}, "ssh_user: 'ad min' is not a login name"),
    "ssh-user-option": ({"regions": ["us-west-2"], "ssh_user": "-oProxyCommand=id"}, "is not a login name"),
    "include-stopped-maybe": ({"regions": ["us-west-2"], "include_stopped": "maybe"}, "include_stopped must be true or false, not 'maybe'"),
}
