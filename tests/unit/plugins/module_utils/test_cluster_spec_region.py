"""toil_cluster's zone and region: destroying needs only the region (destroy_cluster -e region=..., issue #19);
launching still needs a zone, and a region that does not match the zone is still refused."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.cluster import validate_spec
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError


def test_destroying_takes_a_region_without_a_zone():
    spec = validate_spec({"name": "lab", "state": "absent", "region": "eu-west-1"}, environ={})
    assert (spec.zone, spec.region) == (None, "eu-west-1")


def test_the_region_given_wins_over_toil_aws_zone_when_destroying():
    spec = validate_spec({"name": "lab", "state": "absent", "region": "eu-west-1"}, environ={"TOIL_AWS_ZONE": "us-west-2a"})
    assert spec.region == "eu-west-1"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "lab", "state": "absent", "region": "eu-west-1; id"}, "is not an AWS region name"),
        ({"name": "lab", "state": "present", "region": "eu-west-1", "leader_node_type": "t3.large", "key_pair_name": "k"}, "No availability zone"),
        ({"name": "lab", "state": "absent", "zone": "us-west-2a", "region": "eu-west-1"}, "is not in the region eu-west-1"),
    ],
)
def test_what_is_still_refused(params, message):
    with pytest.raises(ToilInputError, match=message):
        validate_spec(params, environ={})
