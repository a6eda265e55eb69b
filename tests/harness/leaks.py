"""List what a Toil cluster may have left behind on an AWS endpoint (the embedded moto one in tests).

    from harness.leaks import leftover_resources, format_leftovers

    leftovers = leftover_resources(endpoint, "us-west-2")   # {} means clean
    assert not leftovers, format_leftovers(leftovers)

Kinds and the identifiers reported (sorted):

==========================  ========================================================================
instances                   instance ids, state pending/running/shutting-down/stopping/stopped
                            (terminated instances stay visible for a while, in moto and AWS alike)
security_groups             group ids, every group except each VPC's ``default``
iam_roles                   role names, except AWS service-linked roles (path /aws-service-role/)
iam_instance_profiles       instance profile names
iam_policies                ARNs of customer-managed policies (Scope=Local)
s3_buckets                  bucket names
sdb_domains                 SimpleDB domain names
launch_templates            launch template names
autoscaling_groups          auto scaling group names (also while "Delete in progress")
spot_instance_requests      spot request ids in state open or active
volumes                     EBS volume ids not deleting/deleted
subnets                     subnet ids, except the default VPC's default ones (DefaultForAz)
network_acls                network ACL ids, except each VPC's default one (IsDefault)
==========================  ========================================================================

Fixture kinds, only with ``include_fixtures=True`` (tests create these on purpose as fixtures):
``key_pairs`` (key names) and ``iam_users`` (user names).

If a listing call fails, the failure is reported under ``listing_errors`` instead of being taken for
"clean". Regional kinds are listed in every region given; with more than one region their ids are
prefixed ``<region>/``. IAM and S3 are global and listed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

KINDS = (
    "instances",
    "security_groups",
    "iam_roles",
    "iam_instance_profiles",
    "iam_policies",
    "s3_buckets",
    "sdb_domains",
    "launch_templates",
    "autoscaling_groups",
    "spot_instance_requests",
    "volumes",
    "subnets",
    "network_acls",
)
FIXTURE_KINDS = ("key_pairs", "iam_users")
LISTING_ERRORS = "listing_errors"

LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
LIVE_SPOT_REQUEST_STATES = ["open", "active"]
GONE_VOLUME_STATES = {"deleting", "deleted"}
AWS_MANAGED_ROLE_PATHS = ("/aws-service-role/", "/aws-reserved/")

ClientFactory = Callable[[str, str], Any]


def client_factory(source: Any, endpoint_url: str | None = None) -> ClientFactory:
    """Turn what the caller gave into ``f(service, region) -> client (or None to skip the service)``.

    Accepted: an object with ``boto3_client(service, region)`` (EmbeddedAWS); a boto3 Session or
    anything with ``client(service, region)`` (the tests' ``aws`` fixture); a mapping of service or
    (service, region) to client (services it lacks are skipped); a callable ``f(service, region)``.
    """
    if hasattr(source, "boto3_client"):
        return source.boto3_client
    if isinstance(source, Mapping):
        return lambda service, region: source.get((service, region), source.get(service))
    if hasattr(source, "client"):
        if endpoint_url is not None:
            return lambda service, region: source.client(service, region, endpoint_url=endpoint_url)
        return source.client
    if callable(source):
        return source
    raise TypeError(f"cannot get AWS clients from {type(source).__name__}")


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item under ``key`` across all pages (moto pages DescribeInstances at 100 reservations)."""
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key) or []
    else:
        yield from getattr(client, operation)(**kwargs).get(key) or []


# Each lister: (service, global?, function(client) -> ids)
def _instances(ec2: Any) -> list[str]:
    filters = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
    return [
        inst["InstanceId"]
        for res in _pages(ec2, "describe_instances", "Reservations", Filters=filters)
        for inst in res.get("Instances", [])
        # Filter again: the state filter is not trusted to be implemented everywhere.
        if inst.get("State", {}).get("Name") in LIVE_INSTANCE_STATES
    ]


def _security_groups(ec2: Any) -> list[str]:
    return [g["GroupId"] for g in _pages(ec2, "describe_security_groups", "SecurityGroups") if g.get("GroupName") != "default"]


def _key_pairs(ec2: Any) -> list[str]:
    return [k["KeyName"] for k in ec2.describe_key_pairs().get("KeyPairs", [])]


def _launch_templates(ec2: Any) -> list[str]:
    return [t["LaunchTemplateName"] for t in _pages(ec2, "describe_launch_templates", "LaunchTemplates")]


def _spot_requests(ec2: Any) -> list[str]:
    filters = [{"Name": "state", "Values": LIVE_SPOT_REQUEST_STATES}]
    return [
        r["SpotInstanceRequestId"]
        for r in _pages(ec2, "describe_spot_instance_requests", "SpotInstanceRequests", Filters=filters)
        if r.get("State") in LIVE_SPOT_REQUEST_STATES
    ]


def _volumes(ec2: Any) -> list[str]:
    return [v["VolumeId"] for v in _pages(ec2, "describe_volumes", "Volumes") if v.get("State") not in GONE_VOLUME_STATES]


def _subnets(ec2: Any) -> list[str]:
    return [s["SubnetId"] for s in _pages(ec2, "describe_subnets", "Subnets") if not s.get("DefaultForAz")]


def _network_acls(ec2: Any) -> list[str]:
    return [a["NetworkAclId"] for a in _pages(ec2, "describe_network_acls", "NetworkAcls") if not a.get("IsDefault")]


def _roles(iam: Any) -> list[str]:
    return [r["RoleName"] for r in _pages(iam, "list_roles", "Roles") if not r.get("Path", "/").startswith(AWS_MANAGED_ROLE_PATHS)]


def _instance_profiles(iam: Any) -> list[str]:
    return [p["InstanceProfileName"] for p in _pages(iam, "list_instance_profiles", "InstanceProfiles")]


def _policies(iam: Any) -> list[str]:
    return [p["Arn"] for p in _pages(iam, "list_policies", "Policies", Scope="Local")]


def _users(iam: Any) -> list[str]:
    return [u["UserName"] for u in _pages(iam, "list_users", "Users")]


def _buckets(s3: Any) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = s3.list_buckets(**kwargs)
        names.extend(b["Name"] for b in page.get("Buckets", []))
        token = page.get("ContinuationToken")
        if not token:
            return names
        kwargs["ContinuationToken"] = token


def _sdb_domains(sdb: Any) -> list[str]:
    # An empty ListDomains answer has no DomainNames key at all.
    return list(_pages(sdb, "list_domains", "DomainNames"))


def _autoscaling_groups(autoscaling: Any) -> list[str]:
    return [g["AutoScalingGroupName"] for g in _pages(autoscaling, "describe_auto_scaling_groups", "AutoScalingGroups")]


_LISTERS: dict[str, tuple[str, bool, Callable[[Any], list[str]]]] = {
    "instances": ("ec2", False, _instances),
    "security_groups": ("ec2", False, _security_groups),
    "iam_roles": ("iam", True, _roles),
    "iam_instance_profiles": ("iam", True, _instance_profiles),
    "iam_policies": ("iam", True, _policies),
    "s3_buckets": ("s3", True, _buckets),
    "sdb_domains": ("sdb", False, _sdb_domains),
    "launch_templates": ("ec2", False, _launch_templates),
    "autoscaling_groups": ("autoscaling", False, _autoscaling_groups),
    "spot_instance_requests": ("ec2", False, _spot_requests),
    "volumes": ("ec2", False, _volumes),
    "subnets": ("ec2", False, _subnets),
    "network_acls": ("ec2", False, _network_acls),
    "key_pairs": ("ec2", False, _key_pairs),
    "iam_users": ("iam", True, _users),
}


def leftover_resources(
    session_or_clients: Any,
    region: str | Iterable[str] = "us-west-2",
    *,
    include_fixtures: bool = False,
    kinds: Iterable[str] | None = None,
    endpoint_url: str | None = None,
) -> dict[str, list[str]]:
    """Resources still present, as ``{kind: sorted ids}`` holding only non-empty kinds; ``{}`` means clean.

    ``session_or_clients``: EmbeddedAWS, the tests' ``aws`` fixture, a boto3 Session (give
    ``endpoint_url`` unless AWS_ENDPOINT_URL is set), a mapping service -> client, or a callable
    ``f(service, region) -> client``. ``kinds`` restricts the listing (default: KINDS, plus FIXTURE_KINDS
    when ``include_fixtures``).
    """
    regions = [region] if isinstance(region, str) else list(region)
    if not regions:
        raise ValueError("no region given")
    wanted = list(kinds) if kinds is not None else list(KINDS) + (list(FIXTURE_KINDS) if include_fixtures else [])
    unknown = [k for k in wanted if k not in _LISTERS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; known: {sorted(_LISTERS)}")
    make_client = client_factory(session_or_clients, endpoint_url)
    clients: dict[tuple[str, str], Any] = {}
    result: dict[str, list[str]] = {}
    errors: list[str] = []
    for kind in wanted:
        service, is_global, lister = _LISTERS[kind]
        found: list[str] = []
        for reg in regions[:1] if is_global else regions:
            try:
                if (service, reg) not in clients:
                    clients[service, reg] = make_client(service, reg)
                client = clients[service, reg]
                if client is None:
                    continue
                ids = lister(client)
            except Exception as exc:  # noqa: BLE001 - a failed listing must not read as "clean"
                errors.append(f"{kind} in {reg}: {type(exc).__name__}: {exc}")
                continue
            prefix = f"{reg}/" if len(regions) > 1 and not is_global else ""
            found.extend(prefix + i for i in ids)
        if found:
            result[kind] = sorted(set(found))
    if errors:
        result[LISTING_ERRORS] = errors
    return result


def format_leftovers(leftovers: Mapping[str, Iterable[str]]) -> str:
    """One line per kind, for assertion messages."""
    if not leftovers:
        return "no leftover AWS resources"
    return "leftover AWS resources:\n" + "\n".join(f"  {kind}: {', '.join(ids)}" for kind, ids in sorted(leftovers.items()))
