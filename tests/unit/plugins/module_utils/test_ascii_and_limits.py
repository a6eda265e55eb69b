"""Numbers, names and options that Python's own parsing lets through (issue #16, bad input): digits of other
scripts (``int("٣") == 3``), superscripts, a trailing newline (``$`` matches before it), numbers beyond AWS's
and Kubernetes' limits, and Toil options abbreviated past the playbook's check. Each is refused with a clear
message by the rule's one home (limits, quantities, node_specs, zones, names, toil_options)."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.cluster import validate_spec
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.limits import (
    MAX_POOL_NODES,
    MAX_VOLUME_GIB,
    ascii_float,
    ascii_int,
    check_module_numbers,
)
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_user_name
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import normalize_worker_pool, parse_node_type, parse_worker_count, worker_pools
from ansible_collections.toil.cluster.plugins.module_utils.quantities import byte_count, millicores
from ansible_collections.toil.cluster.plugins.module_utils.toil_options import check_toil_options, managed_option
from ansible_collections.toil.cluster.plugins.module_utils.zones import resolve_region, validate_region

# Each of these is a digit (or a number) to Python's int(), float(), Decimal() or re's \d.
NOT_ASCII_DIGITS = ["٣", "١٠", "３", "۳", "३", "٣\n", "3\n", "²", "1²", "٠.٥"]


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_numbers_in_other_scripts_are_refused(text):
    with pytest.raises(ToilInputError, match="ASCII digits"):
        ascii_int(text, "count")
    with pytest.raises(ToilInputError, match="ASCII digits"):
        ascii_float(text, "bid")


@pytest.mark.parametrize(("text", "value"), [("3", 3), (" 3 ", 3), ("+3", 3), ("-3", -3), (7, 7)])
def test_ascii_numbers_are_read(text, value):
    assert ascii_int(text, "count") == value
    assert ascii_float(text, "bid") == value


@pytest.mark.parametrize("value", [True, None, "1e999", "nan", "inf", float("nan")])
def test_what_is_not_a_finite_number(value):
    with pytest.raises(ToilInputError):
        ascii_float(value, "bid")


@pytest.mark.parametrize("value", [True, None, 1.5, "1.5", "1e3"])
def test_what_is_not_a_whole_number(value):
    with pytest.raises(ToilInputError):
        ascii_int(value, "count")


@pytest.mark.parametrize("text", ["١", "１", "²", "1\n", "٥٠٠m", "4Gі"])  # the last: a Cyrillic i
def test_quantities_are_ascii(text):
    with pytest.raises(ToilInputError, match="not a Kubernetes quantity"):
        millicores(text)


@pytest.mark.parametrize("text", ["1e400", "9Ei", "1e999999999", 1e300])
def test_quantities_fit_kubernetes_int64(text):
    with pytest.raises(ToilInputError, match="Kubernetes quantity"):
        byte_count(text)


def test_quantities_still_read_what_kubernetes_writes():
    assert millicores("500m") == 500 and millicores(" 2 ") == 2000 and byte_count("4Gi") == 4 * 2**30 and byte_count("1e3") == 1000


@pytest.mark.parametrize("spec", NOT_ASCII_DIGITS + ["٣-٥", "0-٣"])
def test_worker_counts_are_ascii(spec):
    with pytest.raises(ToilInputError, match="is not a number of nodes"):
        parse_worker_count(spec)


@pytest.mark.parametrize("spec", ["100000", "0-100000", str(MAX_POOL_NODES + 1), MAX_POOL_NODES + 1])
def test_worker_counts_have_kubernetes_limit(spec):
    with pytest.raises(ToilInputError, match=f"more than {MAX_POOL_NODES} nodes"):
        parse_worker_count(spec)


def test_largest_pool_is_accepted():
    assert parse_worker_count(str(MAX_POOL_NODES)) == (MAX_POOL_NODES, MAX_POOL_NODES, True)
    assert worker_pools("m5.large", f"0-{MAX_POOL_NODES}")[0].max_size == MAX_POOL_NODES


@pytest.mark.parametrize("pool", [{"node_types": "m5.large", "count": 100000}, {"node_types": "m5.large", "min_size": 0, "max_size": 100000}])
def test_pool_mappings_have_the_limit(pool):
    with pytest.raises(ToilInputError, match="more than 5000"):
        normalize_worker_pool(pool)


@pytest.mark.parametrize("bid", ["١.٥", "０.５", "0.5\u00b2"])
def test_spot_bids_are_ascii(bid):
    with pytest.raises(ToilInputError, match="is not a number"):
        parse_node_type(f"m5.large:{bid}")


@pytest.mark.parametrize("region", ["us-west-2\n", "us-west-2 ", "us-west-٢", "US-WEST-2", "us-west2", ""])
def test_regions_are_matched_whole(region):
    with pytest.raises(ToilInputError, match="is not an AWS region name"):
        validate_region(region)
    with pytest.raises(ToilInputError):
        resolve_region(None, region or "x", environ={})


@pytest.mark.parametrize("zone", ["us-west-2a\n", "us-west-٢a"])
def test_zones_are_matched_whole(zone):
    with pytest.raises(ToilInputError):
        resolve_region(zone, None, environ={})


@pytest.mark.parametrize("user", ["ad min", "admin\n", "-oProxyCommand=x", "root;id", "", "ädmin", "a" * 33, 5])
def test_ssh_users_are_login_names(user):
    with pytest.raises(ToilInputError, match="is not a login name"):
        validate_user_name(user)


@pytest.mark.parametrize("user", ["admin", "core", "ec2-user", "_svc", "a.b"])
def test_ordinary_login_names(user):
    assert validate_user_name(user) == user


@pytest.mark.parametrize(
    ("option", "managed"),
    [
        ("--batchSystem", "--batchSystem"),
        ("--batchSys", "--batchSystem"),
        ("--batchS=slurm", "--batchSystem"),
        ("--bat", "--batchSystem"),
        ("--jobSt", "--jobStore"),
        ("--jobstore=file:/x", "--jobstore"),
        ("--resta", "--restart"),
        ("--metrics", "--metrics"),
        ("--metrics=true", "--metrics"),
        ("--met", "--metrics"),
    ],
)
def test_abbreviations_of_managed_toil_options_are_refused(option, managed):
    assert managed_option(option) == managed
    with pytest.raises(ToilInputError, match=f"may not set {managed}"):
        check_toil_options(["--retryCount", "2", option, "x"])


@pytest.mark.parametrize("options", [[], ["--retryCount", "2"], ["--batchLogsDir", "/x"], ["-b"], ["--maxCores=2"], ["--mesosRole", "r"], ["--metricsX"]])
def test_other_toil_options_pass(options):
    assert check_toil_options(options) == options


def test_metrics_is_refused_with_what_to_do_instead():
    with pytest.raises(ToilInputError, match="metrics: true"):
        check_toil_options(["--metrics", "true"])


def test_toil_options_must_be_strings():
    with pytest.raises(ToilInputError, match="list of strings"):
        check_toil_options("--batchSystem slurm")


SPEC = {
    "count": {"type": "int"},
    "node_storage": {"type": "int"},
    "wait_timeout": {"type": "int"},
    "beta_inertia": {"type": "float"},
    "pools": {"type": "list", "elements": "dict", "options": {"max_size": {"type": "int"}, "node_storage": {"type": "int"}}},
    "s3_endpoint": {"type": "dict", "options": {"port": {"type": "int"}}},
}


@pytest.mark.parametrize(
    ("raw", "converted", "message"),
    [
        ({"count": "٣"}, {"count": 3}, "count: '٣' is not a number written in ASCII digits"),
        ({"beta_inertia": "٠.٥"}, {"beta_inertia": 0.5}, "beta_inertia: '٠.٥'"),
        ({"count": 100000}, {"count": 100000}, "count must be at most 5000 nodes"),
        ({"node_storage": 100000}, {"node_storage": 100000}, f"node_storage must be at most {MAX_VOLUME_GIB} GiB"),
        ({"node_storage": 4}, {"node_storage": 4}, "node_storage must be at least 8 GiB"),
        ({"wait_timeout": -1}, {"wait_timeout": -1}, "wait_timeout must not be negative"),
        ({"wait_timeout": 10**9}, {"wait_timeout": 10**9}, "wait_timeout must be at most 86400 seconds"),
        ({"pools": [{"max_size": "٣"}]}, {"pools": [{"max_size": 3}]}, r"pools\[0\].max_size: '٣'"),
        ({"pools": [{"max_size": 1}, {"max_size": 100000}]}, {"pools": [{"max_size": 1}, {"max_size": 100000}]}, r"pools\[1\].max_size must be at most 5000"),
        ({"s3_endpoint": {"port": "٩٠٠٠"}}, {"s3_endpoint": {"port": 9000}}, "s3_endpoint.port: '٩٠٠٠'"),
    ],
)
def test_module_numbers(raw, converted, message):
    with pytest.raises(ToilInputError, match=message):
        check_module_numbers(SPEC, raw, converted)


def test_module_numbers_in_bounds_pass():
    check_module_numbers(
        SPEC, {"count": "3", "node_storage": 50, "pools": [{"max_size": 5000}]}, {"count": 3, "node_storage": 50, "pools": [{"max_size": 5000}]}
    )


LAUNCH = {"name": "c1", "zone": "us-west-2a", "leader_node_type": "t3.large", "key_pair_name": "k"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"leader_storage": 100000}, "at most 16384 GiB"),
        ({"leader_storage": "٨٠"}, "ASCII digits"),
        ({"worker_node_types": ["m5.large", "not a type"]}, "is not an EC2 instance type name"),
        ({"aws_ec2_profile_arn": "arn:aws:iam::123456789012:instance-profile/p\n"}, "is not an instance profile ARN"),
        ({"aws_ec2_profile_arn": "arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:instance-profile/p"}, "is not an instance profile ARN"),
        ({"aws_ec2_extra_security_group_ids": ["sg-0123456789abcdef0\n"]}, "is not a security group ID"),
    ],
)
def test_cluster_spec_refuses(override, message):
    with pytest.raises(ToilInputError, match=message):
        validate_spec({**LAUNCH, **override}, environ={})


def test_cluster_spec_keeps_worker_types_once():
    assert validate_spec({**LAUNCH, "worker_node_types": ["m5.large", "t3.large", "m5.large"]}, environ={}).worker_node_types == ("m5.large", "t3.large")
