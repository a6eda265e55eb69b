"""Build plugins/module_utils/price_table.py, the scaler's fallback on-demand prices, from the AWS Price List.

    PYTHONPATH=.venv/collections .venv/bin/python tools/build_price_table.py [--regions us-east-1,...] [--types m5.large,...]

needs AWS credentials allowed pricing:GetProducts and a route to api.pricing.us-east-1.amazonaws.com. It asks the
Price List, with the filters the scaler uses (prices.price_filters: Linux, shared tenancy, no pre-installed software,
capacity status Used), for every type of TYPES in every region of REGIONS, and rewrites the table dated today, its
SOURCE saying so. A type without a price in a region is left out of that region. Check the diff before committing it.
"""

from __future__ import annotations

import argparse
import pprint
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "plugins" / "module_utils" / "price_table.py"
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1")
_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_BURSTABLE = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
# The collection's defaults and tests' types and the common families (c/m/r/i/g/p/t) in their usual sizes.
TYPES = tuple(
    sorted(
        {f"{family}.{size}" for family in ("t2", "t3", "t3a", "t4g") for size in _BURSTABLE}
        | {f"{family}.{size}" for family in ("m5", "m5a", "m6i", "c5a", "c6i", "r5", "r6i") for size in _SIZES}
        | {f"m6g.{size}" for size in ("medium", *_SIZES[:-1])}
        | {f"{family}.{size}" for family in ("c5", "c5d") for size in ("large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge")}
        | {f"i3.{size}" for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")}
        | {f"g4dn.{size}" for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")}
        | {
            "m4.large",
            "m4.xlarge",
            "m4.2xlarge",
            "m4.4xlarge",
            "m4.16xlarge",
            "m5.metal",
            "c4.large",
            "c4.8xlarge",
            "g4ad.xlarge",
            "g5.xlarge",
            "g5.2xlarge",
            "p2.xlarge",
            "p2.16xlarge",
        }
        | {"p3.2xlarge", "p3.8xlarge", "p3.16xlarge", "p4d.24xlarge", "x1e.xlarge", "r3.8xlarge"}
    )
)


def render(regions, date, source):
    """The table module's text: ON_DEMAND {region: {instance type: USD per hour}}, its date and its source. Regions with
    the same prices (us-east-1, us-east-2 and us-west-2, mostly) share one table, written once."""
    tables, names = {}, {}
    for region, prices in sorted(regions.items()):
        key = tuple(sorted(prices.items()))
        if key not in tables:
            tables[key] = "_" + region.upper().replace("-", "_")
        names[region] = tables[key]
    lines = [
        "# -*- coding: utf-8 -*-",
        "# Copyright: toil.cluster contributors",
        "# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)",
        '"""On-demand hourly prices (USD, Linux, shared tenancy) for when the AWS Price List cannot be read (prices.py).',
        "",
        'Written by tools/build_price_table.py; do not edit by hand, rebuild it."""',
        "",
        f"PRICES_DATE = {date!r}",
        f"SOURCE = {source!r}  # noqa: E501 - one sentence",
    ]
    for key, name in tables.items():
        lines.append(f"{name} = {pprint.pformat(dict(key), width=140, sort_dicts=False)}")
    lines.append("ON_DEMAND = {" + ", ".join(f"{region!r}: {name}" for region, name in names.items()) + "}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--regions", default=",".join(REGIONS))
    parser.add_argument("--types", default=",".join(TYPES))
    args = parser.parse_args(argv)
    import boto3  # noqa: PLC0415 - only this tool needs AWS credentials

    from ansible_collections.toil.cluster.plugins.module_utils.prices import PRICING_REGION, read_on_demand  # noqa: PLC0415

    pricing = boto3.client("pricing", region_name=PRICING_REGION)
    types = [t for t in args.types.split(",") if t]
    regions = {region: read_on_demand(pricing, types, region) for region in args.regions.split(",") if region}
    for region, prices in regions.items():
        print(f"{region}: {len(prices)} of {len(types)} types priced", file=sys.stderr)
    today = datetime.now(UTC).date().isoformat()
    TABLE.write_text(render(regions, today, f"AWS Price List Query API (GetProducts), read {today} by tools/build_price_table.py"), encoding="utf-8")
    subprocess.run(["ruff", "format", str(TABLE)], check=False)  # the project's layout
    return 0


if __name__ == "__main__":
    sys.exit(main())
