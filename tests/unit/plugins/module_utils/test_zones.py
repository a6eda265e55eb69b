# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Zones and regions (reference section 1, "Zone and name validation")."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.zones import ZONE_ENV_VAR, resolve_zone, zone_to_region

ZONES = {
    "us-west-2a": "us-west-2",
    "us-east-1f": "us-east-1",
    "eu-central-1b": "eu-central-1",
    "ap-southeast-2c": "ap-southeast-2",
    "me-south-1a": "me-south-1",
    "sa-east-1a": "sa-east-1",
    "xx-yyy-10z": "xx-yyy-10",  # the rule is syntactic: any region, any letter
}

BAD_ZONES = [
    "us-west-2",  # a region, no zone letter
    "us-west-2ab",
    "US-WEST-2A",
    "us-west-0a",  # region numbers start at 1
    "us-west-02a",
    "uswest-2a",
    "u-west-2a",
    "us--2a",
    "us-gov-west-1a",  # GovCloud's three-part names do not match Toil's regex
    "us-east-1-bos-1a",  # Local Zones neither
    "usw2-az1",  # a zone ID, not a name
    " us-west-2a",
    "us-west-2a ",
    "us-west-2a\n",
    "",
]


@pytest.mark.parametrize(("zone", "region"), ZONES.items())
def test_zone_to_region_drops_the_zone_letter(zone, region):
    assert zone_to_region(zone) == region


@pytest.mark.parametrize("zone", [*BAD_ZONES, None, 5, ["us-west-2a"]])
def test_zone_to_region_refuses_anything_but_region_plus_letter(zone):
    with pytest.raises(ToilInputError, match=r"(?s)Can't extract a region from availability zone .*: expected a region followed by one letter"):
        zone_to_region(zone)


def test_zone_to_region_message_names_the_zone():
    with pytest.raises(ToilInputError, match="'us-west-2'"):
        zone_to_region("us-west-2")


@pytest.mark.parametrize(
    ("zone", "environ", "expected"),
    [
        ("us-west-2a", {}, ("us-west-2a", "us-west-2")),
        ("us-west-2a", {ZONE_ENV_VAR: "eu-west-1b"}, ("us-west-2a", "us-west-2")),  # the option wins
        (None, {ZONE_ENV_VAR: "eu-west-1b"}, ("eu-west-1b", "eu-west-1")),
        ("", {ZONE_ENV_VAR: "eu-west-1b"}, ("eu-west-1b", "eu-west-1")),
    ],
)
def test_resolve_zone_takes_the_option_then_toil_aws_zone(zone, environ, expected):
    assert resolve_zone(zone, environ) == expected


@pytest.mark.parametrize("environ", [{}, {ZONE_ENV_VAR: ""}, {"AWS_DEFAULT_REGION": "us-west-2"}])
def test_resolve_zone_fails_when_neither_is_set(environ):
    with pytest.raises(ToilInputError, match="No availability zone: set the zone option or the TOIL_AWS_ZONE environment variable"):
        resolve_zone(None, environ)


@pytest.mark.parametrize(("zone", "environ"), [("us-west-2", {}), (None, {ZONE_ENV_VAR: "us-west-2"})])
def test_resolve_zone_checks_the_zone_it_chose(zone, environ):
    with pytest.raises(ToilInputError, match="Can't extract a region from availability zone 'us-west-2'"):
        resolve_zone(zone, environ)


def test_resolve_zone_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv(ZONE_ENV_VAR, "ap-northeast-1c")
    assert resolve_zone() == ("ap-northeast-1c", "ap-northeast-1")
    monkeypatch.delenv(ZONE_ENV_VAR)
    with pytest.raises(ToilInputError, match="No availability zone"):
        resolve_zone()


# --- differential: the real Toil -------------------------------------------------------------


@pytest.mark.toil("zone_to_region", param="zone")
@pytest.mark.parametrize("zone", [*ZONES, *(zone for zone in BAD_ZONES if zone != "us-west-2a\n")])
def test_zone_to_region_agrees_with_toil(zone, toil):
    theirs = toil("zone_to_region", zone)
    if "error" in theirs:
        assert theirs["error"] == "ValueError"
        with pytest.raises(ToilInputError):
            zone_to_region(zone)
    else:
        assert zone_to_region(zone) == theirs["value"]


@pytest.mark.toil("zone_to_region", arg="us-west-2a\n")
def test_difference_a_trailing_newline_is_not_a_zone(toil):
    """Toil's ``re.match`` with ``$`` lets ``us-west-2a\\n`` through (then EC2 refuses it)."""
    assert toil("zone_to_region", "us-west-2a\n") == {"value": "us-west-2"}
    with pytest.raises(ToilInputError, match="Can't extract a region"):
        zone_to_region("us-west-2a\n")


def _launch(*extra, env=None):
    """``toil launch-cluster c --leaderNodeType t2.medium --keyPairName k EXTRA`` in ``env``."""
    return {"argv": ["c", "--leaderNodeType", "t2.medium", "--keyPairName", "k", *extra], "env": env or {}}


LAUNCH_NO_ZONE = _launch()
LAUNCH_ENV_ZONE = _launch(env={ZONE_ENV_VAR: "eu-west-1b"})
LAUNCH_BOTH_ZONES = _launch("-z", "us-west-2a", env={ZONE_ENV_VAR: "eu-west-1b"})


@pytest.mark.toil("launch_cluster", arg=LAUNCH_NO_ZONE)
@pytest.mark.toil("launch_cluster", arg=LAUNCH_ENV_ZONE)
@pytest.mark.toil("launch_cluster", arg=LAUNCH_BOTH_ZONES)
def test_zone_precedence_agrees_with_launch_cluster(toil):
    assert toil("launch_cluster", LAUNCH_NO_ZONE)["error"] == "RuntimeError"
    with pytest.raises(ToilInputError):
        resolve_zone(None, {})
    assert resolve_zone(None, LAUNCH_ENV_ZONE["env"])[0] == toil("launch_cluster", LAUNCH_ENV_ZONE)["value"]["zone"] == "eu-west-1b"
    assert resolve_zone("us-west-2a", LAUNCH_BOTH_ZONES["env"])[0] == toil("launch_cluster", LAUNCH_BOTH_ZONES)["value"]["zone"] == "us-west-2a"
