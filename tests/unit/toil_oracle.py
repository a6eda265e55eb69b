# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Ask the real Toil how it parses the inputs our module_utils parse.

Run with the interpreter of the Toil venv (``.venv-toil/bin/python``), never imported by
the tests. It reads a JSON list of calls ``{"fn": NAME, "arg": ARG}`` on stdin and writes
``{"toil_version": ..., "results": [...]}`` on stdout, one result per call, in order:
``{"value": ...}`` when Toil accepted the input, ``{"error": TYPE, "message": ...}`` when
it raised (``SystemExit`` included: ``build_tag_dict_from_env`` calls ``exit(1)``).

Everything Toil logs or prints goes to stderr, so stdout holds only the answer. Nothing
here talks to AWS: the calls that would are replaced by recorders.
"""

import contextlib
import json
import os
import sys
import time
from types import SimpleNamespace
from unittest import mock

from toil.common import Config, Toil
from toil.jobStores.aws.jobStore import parse_jobstore_identifier as toil_parse_jobstore_identifier
from toil.lib.aws import build_tag_dict_from_env as toil_build_tag_dict_from_env
from toil.lib.aws import zone_to_region as toil_zone_to_region
from toil.lib.ec2nodes import EC2Regions
from toil.provisioners import check_valid_node_types as toil_check_valid_node_types
from toil.provisioners import parse_node_types as toil_parse_node_types
from toil.provisioners.abstractProvisioner import Shape
from toil.provisioners.aws import awsProvisioner
from toil.provisioners.aws import choose_spot_zone as toil_choose_spot_zone
from toil.provisioners.aws.awsProvisioner import AWSProvisioner
from toil.provisioners.clusterScaler import ClusterScaler, binPacking
from toil.utils import toilLaunchCluster
from toil.version import version as toil_version

# Environment variables that change what the functions below answer; each call starts
# without them and sees only the ones it is given.
_TOIL_ENV = ("TOIL_OWNER_TAG", "TOIL_AWS_TAGS", "TOIL_AWS_ZONE", "TOIL_AWS_REGION")


@contextlib.contextmanager
def _environ(env):
    saved = dict(os.environ)
    for key in _TOIL_ENV:
        os.environ.pop(key, None)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _node_types(parsed):
    """Toil's ``[(set, bid)]`` as JSON: the set sorted."""
    return [{"instance_types": sorted(types), "bid": bid} for types, bid in parsed]


def parse_node_types(spec):
    return _node_types(toil_parse_node_types(spec))


def check_valid_node_types(arg):
    """``parse_node_types`` then the instance-type check launch-cluster runs next."""
    with _environ({"TOIL_AWS_ZONE": arg["zone"]}):
        toil_check_valid_node_types("aws", toil_parse_node_types(arg["spec"]))
    return True


def zone_to_region(zone):
    return toil_zone_to_region(zone)


def parse_locator(locator):
    return list(Toil.parseLocator(locator))


def parse_jobstore_identifier(identifier):
    return list(toil_parse_jobstore_identifier(identifier))


def jobstore_regions(_arg):
    return sorted(EC2Regions)


def build_tag_dict_from_env(env):
    return toil_build_tag_dict_from_env(dict(env))


def create_tags_dict(tags):
    return toilLaunchCluster.create_tags_dict(list(tags))


def _provisioner(cluster_name):
    provisioner = object.__new__(AWSProvisioner)
    provisioner.clusterName = cluster_name
    return provisioner


def namespace_name(arg):
    return _provisioner(arg["cluster"])._namespace_name(arg.get("name", "toil"))


def is_our_namespaced_name(arg):
    return _provisioner(arg["cluster"])._is_our_namespaced_name(arg["name"])


class _Stop(Exception):
    """Raised where the real launchCluster would first call EC2."""


def _launch_tags(cluster_name, cluster_type, zone, leader_type, owner, key_name, user_tags):
    """Run AWSProvisioner.launchCluster up to RunInstances; return the tags it built."""
    provisioner = _provisioner(cluster_name)
    provisioner.clusterType = cluster_type
    provisioner._zone = zone
    provisioner._region = toil_zone_to_region(zone)
    provisioner._leader_subnet = "subnet-00000000"
    provisioner.aws = SimpleNamespace(resource=lambda *args, **kwargs: None)
    provisioner._createProfileArn = lambda: "arn:aws:iam::000000000000:instance-profile/x"
    provisioner._createSecurityGroups = lambda: ["sg-00000000"]
    provisioner._getBoto3BlockDeviceMappings = lambda *args, **kwargs: []
    provisioner._getIgnitionUserData = lambda *args, **kwargs: "{}"
    provisioner._discoverAMI = lambda: "ami-00000000"
    captured = {}

    def create_instances(*args, **kwargs):
        captured.update(kwargs)
        raise _Stop

    with (
        mock.patch.object(awsProvisioner, "create_instances", create_instances),
        mock.patch.object(awsProvisioner, "policy_permissions_allow", lambda *args, **kwargs: True),
        mock.patch.object(awsProvisioner, "get_policy_permissions", lambda *args, **kwargs: {}),
        contextlib.suppress(_Stop),
    ):
        provisioner.launchCluster(
            leaderNodeType=leader_type,
            leaderStorage=50,
            owner=owner,
            keyName=key_name,
            botoPath=None,
            userTags=user_tags,
            vpcSubnet=None,
            awsEc2ProfileArn=None,
            awsEc2ExtraSecurityGroupIds=None,
        )
    return {"cluster": dict(provisioner._tags), "leader": dict(captured["tags"])}


def iam_policies(arg):
    """The role Toil's ``_createProfileArn`` would make for ``cluster``/``cluster_type``.

    Runs the real method (its policy dict, ``_setup_iam_ec2_role``'s trust policy and role
    name) up to ``create_iam_role``, the first call to IAM, and returns what it was given.
    """
    provisioner = _provisioner(arg["cluster"])
    provisioner.clusterType = arg["cluster_type"]
    provisioner._region = "us-west-2"
    provisioner.aws = SimpleNamespace(client=lambda *args, **kwargs: None)
    captured = {}

    def create_iam_role(role_name, assume_role_policy_document, policies, region=None):
        captured.update(role_name=role_name, trust_policy=json.loads(assume_role_policy_document), policies=policies)
        raise _Stop

    with mock.patch.object(awsProvisioner, "create_iam_role", create_iam_role), contextlib.suppress(_Stop):
        provisioner._createProfileArn()
    return captured


def launch_cluster(arg):
    """``toil launch-cluster ARGV`` with environment ``env``, recorded instead of run.
    Runs the real ``toilLaunchCluster.main`` (option parsing, tag and owner precedence, the
    inline ``-w`` loop) with a recording cluster; its ``launchCluster`` runs the real
    ``AWSProvisioner.launchCluster`` up to the first EC2 call to capture the tags.
    """

    record = {"pools": []}

    class RecordingCluster:
        def __init__(self, provisioner, clusterName, clusterType, zone, **kwargs):
            record.update(cluster_name=clusterName, cluster_type=clusterType, zone=zone)

        def launchCluster(self, leaderNodeType, owner, keyName, userTags, **kwargs):
            record.update(owner=owner, user_tags=userTags)
            record.update(_launch_tags(record["cluster_name"], record["cluster_type"], record["zone"], leaderNodeType, owner, keyName, userTags))

        def addNodes(self, nodeTypes, numNodes, preemptible, spotBid=None):
            record["pools"].append({"instance_types": sorted(nodeTypes), "bid": spotBid, "min": numNodes, "max": numNodes, "static": True})

        def addManagedNodes(self, nodeTypes, minNodes, maxNodes, preemptible, spotBid=None):
            record["pools"].append({"instance_types": sorted(nodeTypes), "bid": spotBid, "min": minNodes, "max": maxNodes, "static": False})

    argv = ["toil launch-cluster", *arg["argv"]]
    with (
        _environ(arg.get("env")),
        mock.patch.object(sys, "argv", argv),
        mock.patch.object(toilLaunchCluster, "cluster_factory", RecordingCluster),
        mock.patch.object(toilLaunchCluster, "check_valid_node_types", lambda *args, **kwargs: None),
        mock.patch.object(toilLaunchCluster, "applianceSelf", lambda *args, **kwargs: "appliance"),
    ):
        toilLaunchCluster.main()
    return record


def bin_packing(arg):
    """Toil's scaler packing the queued jobs ``jobs`` onto the node types ``node_types`` (``toil launch-cluster -w``).

    The node shapes are the ones ClusterScaler builds (``setAutoscaledNodeTypes`` ->
    ``getNodeShape`` -> ``_reserve_overhead``, sorted), the job shapes the ones its
    ScalerThread builds for queued jobs (wallTime from ``getAverageRuntime``: 1 s without
    history), and the packing the call ``getEstimatedNodeCounts`` makes, with
    ``goalTime=target_time``: ``binPacking(node_shapes_after_overhead, job_shapes, goalTime)``.
    ClusterScaler itself refuses a targetTime of 0, so it is built with 1800 and the packing
    is then given ``target_time``. ``runs`` packings are timed (time.perf_counter, the call
    alone); the node counts are those of the last.
    """
    provisioner = _provisioner(None)
    provisioner._nodeStorage = arg.get("node_storage", 50)
    provisioner._nodeStorageOverrides = {}
    provisioner.setAutoscaledNodeTypes(toil_parse_node_types(arg["node_types"]))
    config = Config()
    config.targetTime = 1800
    config.maxNodes = [10**6]
    scaler = ClusterScaler(provisioner, SimpleNamespace(batchSystem=None, provisioner=None), config)
    jobs = []  # one Shape per queued job, as ScalerThread.tryRun builds them
    for job in arg["jobs"]:
        wall_time = scaler.getAverageRuntime(job["name"])
        jobs.extend(Shape(wall_time, job["memory"], job["cores"], job["disk"], job["preemptible"]) for _index in range(job["count"]))
    seconds = []
    for _index in range(arg.get("runs", 1)):
        queued = list(jobs)  # binPack sorts its argument in place
        began = time.perf_counter()
        counts, could_not_fit = binPacking(scaler.node_shapes_after_overhead, queued, arg.get("target_time", 0))
        seconds.append(time.perf_counter() - began)

    def describe(shape):
        full = scaler.without_overhead[shape]
        return {
            "instance_type": scaler.nodeShapeToType[full],
            "preemptible": shape.preemptible,
            "memory": shape.memory,
            "cores": shape.cores,
            "disk": shape.disk,
        }

    return {
        "node_shapes": [describe(shape) for shape in scaler.node_shapes_after_overhead],
        "nodes": [{**describe(shape), "count": counts[shape]} for shape in scaler.node_shapes_after_overhead],
        "could_not_fit": len(could_not_fit),  # distinct job shapes
        "seconds": seconds,
    }


def choose_spot_zone(arg):
    """Toil's spot zone for ``bid`` among ``zones`` given the price ``history`` (newest first, as EC2 answers)."""
    return toil_choose_spot_zone(arg["zones"], arg["bid"], arg["history"])


FUNCTIONS = {
    function.__name__: function
    for function in (
        parse_node_types,
        check_valid_node_types,
        zone_to_region,
        parse_locator,
        parse_jobstore_identifier,
        jobstore_regions,
        build_tag_dict_from_env,
        create_tags_dict,
        namespace_name,
        is_our_namespaced_name,
        launch_cluster,
        iam_policies,
        bin_packing,
        choose_spot_zone,
    )
}


def answer(call):
    try:
        return {"value": FUNCTIONS[call["fn"]](call.get("arg"))}
    except SystemExit as error:  # build_tag_dict_from_env: exit(1)
        return {"error": "SystemExit", "message": f"exit({error.code})"}
    except Exception as error:
        return {"error": type(error).__name__, "message": str(error)}


def main():
    calls = json.load(sys.stdin)
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        results = [answer(call) for call in calls]
    json.dump({"toil_version": toil_version, "results": results}, out)
    out.write("\n")


if __name__ == "__main__":
    main()
