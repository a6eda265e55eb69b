# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Job store locators (reference section 4, "Locator", "Bucket" and "History")."""

from __future__ import annotations

import re

import pytest

from ansible_collections.toil.cluster.plugins.module_utils import jobstore_locator as jobstore
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import (
    JOBSTORE_NAME_MAX,
    JOBSTORE_NAME_MIN,
    known_regions,
    parse_jobstore_locator,
    validate_jobstore_name,
)

REGIONS = {"us-west-2", "eu-west-1"}

GOOD_NAMES = ["abc", "my-store", "a-b-c", "0x0", "123", "a" * JOBSTORE_NAME_MAX]
BAD_NAMES = {
    # name: the meaningful part of our message
    "": "between 3 and 56 characters: '' has 0",
    "ab": "between 3 and 56 characters: 'ab' has 2",
    "a" * (JOBSTORE_NAME_MAX + 1): f"between 3 and 56 characters: 'a{{57}}' has {JOBSTORE_NAME_MAX + 1}",
    "-abc": "Invalid AWS job store name '-abc': use only digits, lowercase letters and '-', not starting or ending with '-'",
    "abc-": "Invalid AWS job store name 'abc-'",
    "Abc": "Invalid AWS job store name 'Abc'",
    "a_b": "Invalid AWS job store name 'a_b'",
    "a.b": "Invalid AWS job store name 'a.b'",
    "a b": "Invalid AWS job store name 'a b'",
    "a--b": "AWS job store names may not contain '--': 'a--b'",
    "my---store": "may not contain '--'",
}


# --- aws:<region>:<name> ---------------------------------------------------------------------


def test_aws_locator_and_the_names_behind_it():
    parsed = parse_jobstore_locator("aws:us-west-2:my-store", REGIONS)
    assert parsed.as_dict() == {
        "kind": "aws",
        "locator": "aws:us-west-2:my-store",
        "region": "us-west-2",
        "name": "my-store",
        "path": None,
        "bucket": "my-store--toil",  # Toil >= 9.1
        "legacy_bucket": "my-store--files",  # Toil <= 9.0
        "legacy_domains": ["my-store--jobs", "my-store--files"],
    }


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_job_store_names(name):
    assert validate_jobstore_name(name) == name
    parsed = parse_jobstore_locator(f"aws:us-west-2:{name}", REGIONS)
    assert parsed.name == name
    assert len(parsed.bucket) <= 63  # S3's limit


@pytest.mark.parametrize(("name", "message"), BAD_NAMES.items())
def test_bad_job_store_names(name, message):
    with pytest.raises(ToilInputError, match=message):
        validate_jobstore_name(name)
    with pytest.raises(ToilInputError, match=message):
        parse_jobstore_locator(f"aws:us-west-2:{name}", REGIONS)


@pytest.mark.parametrize("name", ["abc\n", "my-store\n"])
def test_a_trailing_newline_is_not_part_of_a_name(name):
    with pytest.raises(ToilInputError, match="Invalid AWS job store name"):
        validate_jobstore_name(name)


def test_job_store_name_length_limits_come_from_s3():
    assert JOBSTORE_NAME_MIN == 3
    assert JOBSTORE_NAME_MAX + len("--toil") == 62  # Toil's own limit, under S3's 63


@pytest.mark.parametrize("locator", ["aws:us-west-2", "aws:", "aws:us-west-2:a:b", "aws:us-west-2:my-store:"])
def test_aws_locator_has_a_region_and_a_name(locator):
    with pytest.raises(ToilInputError, match=f"Invalid AWS job store locator '{locator}': expected 'aws:<region>:<name>'"):
        parse_jobstore_locator(locator, REGIONS)


@pytest.mark.parametrize("region", ["mars-1", "us-west-2a", "US-WEST-2", ""])
def test_aws_locator_region_must_be_known(region):
    with pytest.raises(ToilInputError, match=f"AWS region '{region}' in job store locator 'aws:{region}:my-store' is not one of: eu-west-1, us-west-2"):
        parse_jobstore_locator(f"aws:{region}:my-store", REGIONS)


def test_the_region_check_comes_before_the_name_check():
    with pytest.raises(ToilInputError, match="AWS region 'mars-1'"):
        parse_jobstore_locator("aws:mars-1:A_B", REGIONS)


def test_an_empty_region_set_skips_the_region_check():
    assert parse_jobstore_locator("aws:minio-local:my-store", set()).region == "minio-local"
    with pytest.raises(ToilInputError, match="may not contain '--'"):
        parse_jobstore_locator("aws:minio-local:my--store", set())


def test_regions_default_to_botocores():
    regions = known_regions()
    assert {"us-east-1", "us-west-2", "eu-north-1", "ap-southeast-3", "us-gov-west-1", "cn-north-1"} <= regions
    assert parse_jobstore_locator("aws:eu-north-1:my-store").region == "eu-north-1"
    with pytest.raises(ToilInputError, match="AWS region 'mars-1' .* is not one of: .*us-west-2"):
        parse_jobstore_locator("aws:mars-1:my-store")


def test_without_botocore_any_region_is_accepted(monkeypatch):
    monkeypatch.setattr(jobstore, "botocore", None)
    assert known_regions() is None
    assert parse_jobstore_locator("aws:mars-1:my-store").region == "mars-1"


# --- file job stores and other locators ------------------------------------------------------


@pytest.mark.parametrize(
    ("locator", "path"),
    [
        ("/tmp/store", "/tmp/store"),
        ("./store", "./store"),
        ("../a:b", "../a:b"),  # path-like: ':' does not matter
        ("store", "store"),  # no ':' at all
        ("file:/tmp/store", "/tmp/store"),
        ("file:relative", "relative"),
        ("file:/a:b", "/a:b"),
    ],
)
def test_file_locators(locator, path):
    parsed = parse_jobstore_locator(locator, REGIONS)
    assert (parsed.kind, parsed.path, parsed.locator) == ("file", path, locator)
    assert (parsed.bucket, parsed.legacy_bucket, parsed.legacy_domains, parsed.region) == (None, None, [], None)


def test_file_locator_needs_a_path():
    with pytest.raises(ToilInputError, match="The file job store locator 'file:' needs a path"):
        parse_jobstore_locator("file:")


@pytest.mark.parametrize("locator", ["google:project:store", "s3:bucket", "AWS:us-west-2:my-store", "tmp:x"])
def test_unsupported_locators(locator):
    with pytest.raises(
        ToilInputError, match=re.escape(f"Unsupported job store locator '{locator}': only 'aws:<region>:<name>' and 'file:<path>' are supported")
    ):
        parse_jobstore_locator(locator, REGIONS)


@pytest.mark.parametrize("locator", [None, "", 5, ["aws:us-west-2:abc"]])
def test_locator_must_be_a_non_empty_string(locator):
    with pytest.raises(ToilInputError, match="The job store locator must be a non-empty string like 'aws:us-west-2:my-store'"):
        parse_jobstore_locator(locator)


# --- differential: the real Toil -------------------------------------------------------------

LOCATORS = [
    *(f"aws:us-west-2:{name}" for name in GOOD_NAMES),
    *(f"aws:eu-central-1:{name}" for name in BAD_NAMES),
    "aws:us-gov-west-1:my-store",
    "aws:mars-1:my-store",
    "aws:us-west-2a:my-store",
    "aws:us-west-2",
    "aws:us-west-2:a:b",
    "aws:",
    "/tmp/store",
    "./store",
    "store",
    "file:/tmp/store",
]


def _toil_parse(toil, locator):
    """Toil's answer for a locator: ``Toil.parseLocator``, then for ``aws`` the checks of
    ``parse_jobstore_identifier`` (both run when the job store is opened)."""
    kind, rest = toil("parse_locator", locator)["value"]
    if kind != "aws":
        return {"value": {"kind": kind, "path": rest}}
    answer = toil("parse_jobstore_identifier", rest)
    if "error" in answer:
        return answer
    region, bucket = answer["value"]
    return {"value": {"kind": kind, "region": region, "bucket": bucket}}


def _toil_calls(locators):
    """The oracle calls ``_toil_parse`` makes for these locators."""
    calls = [pytest.mark.toil("parse_locator", arg=locator) for locator in locators]
    calls += [pytest.mark.toil("parse_jobstore_identifier", arg=locator.split(":", 1)[1]) for locator in locators if locator.startswith("aws:")]
    return calls


def _with_toil_calls(locators):
    def decorate(test):
        for mark in _toil_calls(locators):
            test = mark(test)
        return test

    return decorate


@_with_toil_calls(LOCATORS)
@pytest.mark.toil("jobstore_regions")
@pytest.mark.parametrize("locator", LOCATORS)
def test_locators_agree_with_toil(locator, toil):
    """Same outcome as Toil, given Toil's own list of regions."""
    theirs = _toil_parse(toil, locator)
    regions = set(toil("jobstore_regions")["value"])
    if "error" in theirs:
        assert theirs["error"] == "ValueError"
        with pytest.raises(ToilInputError):
            parse_jobstore_locator(locator, regions)
        return
    ours = parse_jobstore_locator(locator, regions)
    if ours.kind == "aws":
        assert {"kind": ours.kind, "region": ours.region, "bucket": ours.bucket} == theirs["value"]
    else:
        assert {"kind": ours.kind, "path": ours.path} == theirs["value"]


@pytest.mark.toil("jobstore_regions")
def test_botocore_knows_every_region_toil_knows(toil):
    """So by default we never refuse a region Toil accepts."""
    assert set(toil("jobstore_regions")["value"]) <= known_regions()


@_with_toil_calls(["aws:eu-north-1:my-store", "aws:ap-southeast-3:my-store"])
@pytest.mark.toil("jobstore_regions")
@pytest.mark.parametrize("locator", ["aws:eu-north-1:my-store", "aws:ap-southeast-3:my-store"])
def test_difference_regions_toil_does_not_list_are_accepted(locator, toil):
    """Deliberate difference: Toil checks a static list of 17 regions (no eu-north-1);
    ours, by default, every region botocore knows."""
    assert locator.split(":")[1] not in toil("jobstore_regions")["value"]
    assert _toil_parse(toil, locator)["error"] == "ValueError"
    assert parse_jobstore_locator(locator).region == locator.split(":")[1]


@_with_toil_calls(["aws:us-west-2:abc\n"])
def test_difference_a_trailing_newline_is_not_part_of_the_name(toil):
    """Toil's ``re.match`` with ``$`` accepts ``abc\\n`` and asks S3 for ``abc\\n--toil``."""
    assert _toil_parse(toil, "aws:us-west-2:abc\n") == {"value": {"kind": "aws", "region": "us-west-2", "bucket": "abc\n--toil"}}
    with pytest.raises(ToilInputError, match="Invalid AWS job store name"):
        parse_jobstore_locator("aws:us-west-2:abc\n", REGIONS)


@_with_toil_calls(["file:"])
def test_difference_an_empty_file_locator_is_refused(toil):
    """Toil reads ``file:`` as a file job store at the empty path; ours asks for a path."""
    assert _toil_parse(toil, "file:") == {"value": {"kind": "file", "path": ""}}
    with pytest.raises(ToilInputError, match="needs a path"):
        parse_jobstore_locator("file:")
