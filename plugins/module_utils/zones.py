# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Availability zones and regions, as Toil reads them (src/toil/lib/aws/__init__.py)."""

from __future__ import annotations

import os
import re

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

ZONE_ENV_VAR = "TOIL_AWS_ZONE"
# Toil's zone_to_region regex: a region, then one letter.
_AVAILABILITY_ZONE = re.compile(r"([a-z]{2}-[a-z]+-[1-9][0-9]*)([a-z])")
# A region as EC2 spells it (us-west-2, us-gov-west-1); always fullmatch: `$` would accept a trailing newline.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def validate_region(region):
    """``region`` if it is spelled like an AWS region, else a clear error (before any call is made to it)."""
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ToilInputError(f"'{region}' is not an AWS region name (like us-west-2).")
    return region


def zone_to_region(zone):
    """``us-west-2a`` -> ``us-west-2``; anything else is refused, as Toil does."""
    match = _AVAILABILITY_ZONE.fullmatch(zone) if isinstance(zone, str) else None
    if not match:
        raise ToilInputError(f"Can't extract a region from availability zone '{zone}': expected a region followed by one letter, like 'us-west-2a'.")
    return match.group(1)


def resolve_zone(zone=None, environ=None):
    """The zone to use: ``zone``, else ``$TOIL_AWS_ZONE``; an error when neither is set.

    Returns ``(zone, region)``.
    """
    environ = os.environ if environ is None else environ
    chosen = zone or environ.get(ZONE_ENV_VAR)
    if not chosen:
        raise ToilInputError(f"No availability zone: set the zone option or the {ZONE_ENV_VAR} environment variable.")
    return chosen, zone_to_region(chosen)


def resolve_region(zone=None, region=None, environ=None):
    """The region to search: ``zone``'s, else ``region``, else ``$TOIL_AWS_ZONE``'s, else None."""
    if zone:
        return zone_to_region(zone)
    if region:
        return validate_region(region)
    environ = os.environ if environ is None else environ
    env_zone = environ.get(ZONE_ENV_VAR)
    return zone_to_region(env_zone) if env_zone else None
