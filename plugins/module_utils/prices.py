# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What a node costs per hour (USD): on-demand from the AWS Price List, spot from the spot price history.

On-demand: the Price List Query API (``pricing:GetProducts``, ServiceCode ``AmazonEC2``; its endpoints are only in
us-east-1, eu-central-1 and ap-south-1), one call per instance type with TERM_MATCH filters on ``instanceType``,
``location`` (the region's name as the Price List writes it, "US East (N. Virginia)"; ``regionCode`` for a region
not in REGION_LOCATIONS), ``operatingSystem`` Linux, ``tenancy`` Shared, ``preInstalledSw`` NA and ``capacitystatus``
Used: the filters of AWS's own examples (aws-cli's pricing get-products, the Terraform aws_pricing_product docs),
which leave one product. The answer's ``PriceList`` is a list of JSON *strings*, each
``{"product": {"attributes": {...}}, "terms": {"OnDemand": {<offer>: {"priceDimensions": {<rate>:
{"unit": "Hrs", "pricePerUnit": {"USD": "0.0960000000"}}}}}, "Reserved": {...}}}`` (parse_price_list).

When the Price List cannot be read (no pricing:GetProducts, no route to its endpoint, an answer that does not parse,
or moto, which has no Price List) the run goes on with price_table.py, a table built from the Price List by
tools/build_price_table.py with each region's date and source, and says so in a warning. In a region the table does
not cover no price is made up: the warning says its nodes go unpriced, which the callers make explicit (a
``max_hourly_cost`` is refused before any change, the "cheapest" packing is not tried, costs are reported as null).

Spot: DescribeSpotPriceHistory with StartTime now, which answers each zone's price in effect now; a type's spot price
is the highest of its zones' latest (the scaler does not know which zone EC2 will pick), never above the pool's bid
(EC2 never charges more than the maximum price); without history, the on-demand price (capped by the bid), as a
spot request's default maximum price is the on-demand price.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

try:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError
except ImportError:  # AnsibleAWSModule reports the missing botocore
    BotoCoreError = ClientError = ResponseParserError = Exception

from ansible_collections.toil.cluster.plugins.module_utils import price_table
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

PRICING_REGION = "us-east-1"
# The Price List's ``location`` of each region the bundled table covers, and a few more.
REGION_LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-south-1": "Asia Pacific (Mumbai)",
}
# No instance costs this much per hour (the largest, u7in-32tb.224xlarge, about 400 USD): a larger figure is not a price.
MOST_PLAUSIBLE_PRICE = 1000.0
SPOT_PRODUCT = "Linux/UNIX"
# A PriceBook's source when neither the Price List nor the bundled table has the region's prices.
NO_PRICES = "none"


def price_filters(instance_type, region):
    """GetProducts' filters for the Linux, shared-tenancy, no-software, used-capacity price of ``instance_type``."""
    place = ("location", REGION_LOCATIONS[region]) if region in REGION_LOCATIONS else ("regionCode", region)
    pairs = (("instanceType", instance_type), place, ("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"))
    return [{"Type": "TERM_MATCH", "Field": name, "Value": value} for name, value in pairs]


def checked_price(value, what):
    """A price from AWS or from a variable: a finite number of USD per hour, 0 to MOST_PLAUSIBLE_PRICE."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ToilInputError(f"{what}: {value!r} is not a price in USD per hour.") from None
    if isinstance(value, bool) or not math.isfinite(price) or not 0 <= price <= MOST_PLAUSIBLE_PRICE:
        raise ToilInputError(f"{what}: {value!r} is not a price in USD per hour (0 to {MOST_PLAUSIBLE_PRICE:g}).")
    return price


def validate_hourly_cost(value, what):
    """A budget in USD per hour (``max_hourly_cost``): a finite number, 0 or more."""
    try:
        cost = float(value)
    except (TypeError, ValueError):
        cost = math.nan
    if isinstance(value, bool) or not math.isfinite(cost) or cost < 0:
        raise ToilInputError(f"{what} must be a number of US dollars per hour, 0 or more (such as 12.5), got {value!r}.")
    return cost


def parse_price_list(price_list, instance_type):
    """The hourly on-demand price in a GetProducts ``PriceList`` for ``instance_type``; None when it has none.

    Only products of that instance type count, and only their ``OnDemand`` terms' dimensions priced per hour
    (``Hrs``) in USD; several (which the filters should prevent) give the highest. Raises ToilInputError on an
    entry that is not the documented shape.
    """
    found = []
    for text in price_list:
        try:
            item = json.loads(text) if isinstance(text, str) else text
            if item["product"]["attributes"].get("instanceType") != instance_type:
                continue
            offers = item.get("terms", {}).get("OnDemand", {})
            dimensions = [d for offer in offers.values() for d in offer["priceDimensions"].values()]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ToilInputError(f"The Price List's answer for {instance_type} is not a GetProducts price item ({type(error).__name__}: {error}).") from None
        for dimension in dimensions:
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            if dimension.get("unit") == "Hrs" and usd is not None:
                found.append(checked_price(usd, f"The Price List's price of {instance_type}"))
    positive = [p for p in found if p > 0]  # a 0.00 dimension is a free-tier or reservation artefact, not the rate
    return max(positive) if positive else None


def read_on_demand(pricing, instance_types, region):
    """{instance type: USD per hour} from the Price List (``pricing``: a client in PRICING_REGION); a type without a
    price is left out. Lets AWS's errors through."""
    prices = {}
    for instance_type in sorted(set(instance_types)):
        answer = pricing.get_products(ServiceCode="AmazonEC2", Filters=price_filters(instance_type, region), FormatVersion="aws_v1", MaxResults=100)
        price = parse_price_list(answer.get("PriceList") or [], instance_type)
        if price is not None:
            prices[instance_type] = price
    return prices


def read_spot(ec2, instance_types, now=None):
    """{instance type: the highest of its zones' spot prices now} from DescribeSpotPriceHistory (Linux/UNIX)."""
    if not instance_types:
        return {}
    latest = {}  # (type, zone) -> (timestamp, price)
    paginator = ec2.get_paginator("describe_spot_price_history")
    for page in paginator.paginate(InstanceTypes=sorted(set(instance_types)), ProductDescriptions=[SPOT_PRODUCT], StartTime=now or datetime.now(UTC)):
        for point in page.get("SpotPriceHistory", []):
            key = (point.get("InstanceType"), point.get("AvailabilityZone"))
            if key[0] not in instance_types:
                continue
            price = checked_price(point.get("SpotPrice"), f"The spot price of {key[0]} in {key[1]}")
            if key not in latest or point["Timestamp"] > latest[key][0]:
                latest[key] = (point["Timestamp"], price)
    prices = {}
    for (instance_type, _zone), (_when, price) in latest.items():
        prices[instance_type] = max(price, prices.get(instance_type, 0.0))
    return prices


@dataclass
class PriceBook:
    """One run's prices (USD per hour) of the instance types it sizes, and where they came from."""

    region: str
    on_demand: dict = field(default_factory=dict)
    spot: dict = field(default_factory=dict)
    source: str = "price list"  # or "bundled table (<date>)", or NO_PRICES

    def node_price(self, instance_types, preemptible, bid=None):
        """What one node of a pool costs at most: the dearest of its instance types (EC2 may give any), spot ones at
        their spot price under the bid. None when one of them has no price."""
        prices = []
        for instance_type in instance_types:
            on_demand = self.on_demand.get(instance_type)
            if not preemptible:
                price = on_demand
            else:
                price = self.spot.get(instance_type, on_demand)
                if bid is not None:
                    price = bid if price is None else min(price, bid)
            if price is None:
                return None
            prices.append(price)
        return max(prices) if prices else None

    def missing(self, instance_types):
        return sorted(t for t in set(instance_types) if t not in self.on_demand)


def refuse_unpriced_budget(region, unpriced):
    """A ``max_hourly_cost`` cannot be kept without prices: counting an unpriced node as free would let a budget in USD
    pass unseen. ``unpriced``: what has no price, such as "pool gpu (p9.huge)"."""
    raise ToilInputError(
        f"max_hourly_cost: no on-demand price in {region} for {'; '.join(unpriced)}: neither the AWS Price List nor the bundled"
        " table has one. Allow pricing:GetProducts (with a route to its endpoint), drop max_hourly_cost, or use instance types with a price."
    )


def bundled_prices(region, instance_types):
    """The bundled table's on-demand prices of ``instance_types`` in ``region`` (those it has)."""
    table = price_table.ON_DEMAND.get(region, {})
    return {t: table[t] for t in instance_types if t in table}


def bundled_fallback(region):
    """(PriceBook source, what the warning says) when the Price List cannot be read in ``region``."""
    if region not in price_table.ON_DEMAND:
        return NO_PRICES, (
            f"the bundled table has no prices for {region} (only for {', '.join(sorted(price_table.ON_DEMAND))}), so its"
            " nodes have no price: a max_hourly_cost is refused, the cheapest packing is not tried and costs are null."
        )
    date = price_table.DATES[region]
    return f"bundled table ({date})", f"on-demand prices in {region} come from the bundled table, of {date} ({price_table.SOURCES[region]})."


def read_prices(pricing, ec2, region, instance_types, spot_types, warn, now=None):
    """The run's PriceBook: on-demand from the Price List, else (with a warning) from the bundled table; spot from
    the spot price history (without it, with a warning: the on-demand price under the bid)."""
    types = sorted(set(instance_types))
    book = PriceBook(region=region)
    try:
        if pricing is None:
            raise ToilInputError("no Price List client")
        book.on_demand = read_on_demand(pricing, types, region)
    except (BotoCoreError, ClientError, ResponseParserError, ToilInputError, ValueError) as error:
        reason = getattr(error, "response", {}).get("Error", {}).get("Code") or str(error)
        book.source, fallback = bundled_fallback(region)
        warn(
            f"The AWS Price List could not be read ({reason}): {fallback}"
            f" For live prices, allow pricing:GetProducts and a route to api.pricing.{PRICING_REGION}.amazonaws.com."
        )
    for instance_type, price in bundled_prices(region, [t for t in types if t not in book.on_demand]).items():
        book.on_demand[instance_type] = price
    if spot_types:
        try:
            book.spot = read_spot(ec2, set(spot_types), now)
        except (BotoCoreError, ClientError, ToilInputError) as error:
            warn(f"The spot price history could not be read ({error}): spot nodes are priced at their on-demand price under the bid.")
    return book
