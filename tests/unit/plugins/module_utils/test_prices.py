"""Issue 18, prices: the Price List's answer parsed, its fallback to the bundled table, spot prices under the bid."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible_collections.toil.cluster.plugins.module_utils import price_table
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.prices import NO_PRICES, PriceBook, parse_price_list, price_filters, read_prices


def price_item(instance_type="m5.large", usd="0.0960000000", unit="Hrs", location="US West (Oregon)"):
    """One PriceList entry as GetProducts returns it (a JSON string), in the shape of AWS's documented example
    (aws-cli's pricing get-products output: product.attributes, terms.OnDemand.<offer>.priceDimensions.<rate>),
    with a Reserved term beside it that must be ignored."""
    sku = "4C7N4APU9GEUZ6H6"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance_type,
                    "location": location,
                    "regionCode": "us-west-2",
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "endRange": "Inf",
                                "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2025-06-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                },
                "Reserved": {
                    f"{sku}.38NPMPTW36": {
                        "priceDimensions": {f"{sku}.38NPMPTW36.2TG2D8R56U": {"unit": "Quantity", "pricePerUnit": {"USD": "499"}}},
                        "termAttributes": {"LeaseContractLength": "1yr"},
                    }
                },
            },
            "version": "20250601000000",
            "publicationDate": "2025-06-01T00:00:00Z",
        }
    )


class PriceList:
    """A Price List client answering GetProducts from ``items`` per instance type, or raising ``error``."""

    def __init__(self, items=None, error=None):
        self.items, self.error, self.calls = items or {}, error, []

    def get_products(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        instance_type = next(f["Value"] for f in kwargs["Filters"] if f["Field"] == "instanceType")
        return {"FormatVersion": "aws_v1", "PriceList": self.items.get(instance_type, [])}


def test_the_filters_are_the_documented_ones():
    assert price_filters("m5.large", "us-west-2") == [
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"},
        {"Type": "TERM_MATCH", "Field": "location", "Value": "US West (Oregon)"},
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
    ]
    assert price_filters("m5.large", "ap-southeast-4")[1] == {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "ap-southeast-4"}


def test_the_on_demand_hourly_price_is_read_and_reserved_terms_ignored():
    assert parse_price_list([price_item()], "m5.large") == 0.096
    assert parse_price_list([price_item("m5.xlarge", "0.192")], "m5.large") is None  # another type's product
    assert parse_price_list([price_item(unit="Quantity")], "m5.large") is None
    assert parse_price_list([price_item(usd="0.0000000000"), price_item(usd="0.1")], "m5.large") == 0.1


@pytest.mark.parametrize("usd", ["-1", "nan", "inf", "1e9", "0.1; rm -rf /", ""])
def test_a_price_that_is_not_one_is_refused(usd):
    with pytest.raises(ToilInputError, match="is not a price in USD per hour"):
        parse_price_list([price_item(usd=usd)], "m5.large")


NO_DIMENSIONS = {"product": {"attributes": {"instanceType": "m5.large"}}, "terms": {"OnDemand": {"x": {}}}}


@pytest.mark.parametrize("item", ["not json", json.dumps({"terms": {}}), json.dumps(NO_DIMENSIONS)])
def test_an_answer_of_another_shape_is_refused(item):
    with pytest.raises(ToilInputError, match="is not a GetProducts price item"):
        parse_price_list([item], "m5.large")


def test_live_prices_come_from_the_price_list_and_others_from_the_table():
    pricing, warnings = PriceList({"m5.large": [price_item(usd="0.1")]}), []
    book = read_prices(pricing, None, "us-west-2", ["m5.large", "c5.large"], [], warnings.append)
    assert book.source == "price list" and not warnings
    assert book.on_demand == {"m5.large": 0.1, "c5.large": price_table.ON_DEMAND["us-west-2"]["c5.large"]}
    assert [c["ServiceCode"] for c in pricing.calls] == ["AmazonEC2", "AmazonEC2"]


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: pricing:GetProducts"}}, "GetProducts"),
        EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/"),
        None,  # no client at all
    ],
)
def test_a_price_list_out_of_reach_falls_back_to_the_table_with_a_warning(error):
    warnings = []
    book = read_prices(PriceList(error=error) if error else None, None, "us-east-1", ["m5.large", "no.such"], [], warnings.append)
    assert book.on_demand == {"m5.large": 0.096}
    assert book.source == f"bundled table ({price_table.DATES['us-east-1']})"
    assert len(warnings) == 1 and "bundled table" in warnings[0] and price_table.DATES["us-east-1"] in warnings[0]
    assert price_table.SOURCES["us-east-1"] in warnings[0]
    assert book.missing(["m5.large", "no.such"]) == ["no.such"]


def test_a_region_the_table_lacks_gets_no_made_up_price_and_a_warning_saying_what_follows():
    assert "ap-south-1" not in price_table.ON_DEMAND
    warnings = []
    book = read_prices(None, None, "ap-south-1", ["m5.large"], [], warnings.append)
    assert book.on_demand == {} and book.source == NO_PRICES and book.node_price(["m5.large"], preemptible=False) is None
    (warning,) = warnings
    assert "the bundled table has no prices for ap-south-1" in warning and "a max_hourly_cost is refused" in warning


def test_the_table_says_for_each_region_where_its_prices_come_from_and_their_date():
    assert set(price_table.DATES) == set(price_table.SOURCES) == set(price_table.ON_DEMAND)
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1"):
        assert datetime.fromisoformat(price_table.DATES[region]).year >= 2024
        assert price_table.SOURCES[region].startswith("AWS Price List, as read by") and " at commit " in price_table.SOURCES[region]
        assert {"m5.large", "c5.large", "r5.large", "t3.large", "i3.large", "g4dn.xlarge", "p3.2xlarge", "t4g.nano"} <= set(price_table.ON_DEMAND[region])
    assert not any("hand" in source for source in price_table.SOURCES.values())


class SpotHistory:
    """DescribeSpotPriceHistory's paginator as EC2 answers it: several zones and points per type."""

    def __init__(self, points):
        self.points = points

    def get_paginator(self, name):
        assert name == "describe_spot_price_history"
        return self

    def paginate(self, **kwargs):
        assert kwargs["ProductDescriptions"] == ["Linux/UNIX"]
        yield {"SpotPriceHistory": [p for p in self.points if p["InstanceType"] in kwargs["InstanceTypes"]]}


def point(zone, price, hour, instance_type="m5.large"):
    return {"AvailabilityZone": zone, "InstanceType": instance_type, "SpotPrice": price, "Timestamp": datetime(2026, 12, 4, hour, tzinfo=UTC)}


def test_spot_is_the_dearest_zones_latest_price_never_above_the_bid():
    history = SpotHistory([point("a", "0.05", 1), point("a", "0.03", 2), point("b", "0.04", 1), point("a", "0.2", 1, "c5.large")])
    book = read_prices(PriceList(), history, "us-east-1", ["m5.large", "c5.large"], ["m5.large"], print)
    assert book.spot == {"m5.large": 0.04}  # zone a's latest is 0.03, zone b's 0.04
    assert book.node_price(["m5.large"], True, bid=0.1) == 0.04
    assert book.node_price(["m5.large"], True, bid=0.035) == 0.035
    assert book.node_price(["m5.large"], False) == 0.096
    assert book.node_price(["c5.large"], True, bid=0.5) == 0.085  # no history: its on-demand price
    assert book.node_price(["m5.large", "c5.large"], False) == 0.096  # the dearest type a pool may get
    assert PriceBook("us-east-1").node_price(["m5.large"], False) is None


def test_a_spot_price_that_is_not_one_warns_and_is_not_used():
    warnings = []
    book = read_prices(PriceList(), SpotHistory([point("a", "-3", 1)]), "us-east-1", ["m5.large"], ["m5.large"], warnings.append)
    assert book.spot == {} and "spot price history could not be read" in warnings[0]
