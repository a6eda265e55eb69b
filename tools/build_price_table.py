"""Build plugins/module_utils/price_table.py, the scaler's fallback on-demand prices, from the AWS Price List.

Two inputs; either way a type without a price in a region is left out of that region. Check the diff before committing.

From the Price List itself:

    PYTHONPATH=.venv/collections .venv/bin/python tools/build_price_table.py [--regions us-east-1,...] [--types m5.large,...]

needs AWS credentials allowed pricing:GetProducts and a route to api.pricing.us-east-1.amazonaws.com. It asks the
Price List, with the filters the scaler uses (prices.price_filters: Linux, shared tenancy, no pre-installed software,
capacity status Used), for every type of TYPES in every region of REGIONS, and rewrites the table dated today, its
SOURCE saying so.

From the Price List as Karpenter's generator read it (no AWS access needed):

    git --git-dir=<karpenter-provider-aws> show <sha>:pkg/providers/pricing/zz_generated.pricing_aws.go > prices.go
    .venv/bin/python tools/build_price_table.py --from-karpenter prices.go --karpenter-commit <sha>

Karpenter (aws/karpenter-provider-aws, Apache-2.0) generates that file from the Price List's on-demand Linux prices: a Go
map {region: {instance type: USD per hour}} under a "// generated at <time>" line. Only its prices are taken (facts,
attributed in SOURCE), dated by that line. The parser is strict: any line it does not know the shape of is refused.
Karpenter's file has held only us-east-1 since 2023; a region of REGIONS it lacks keeps the current table's prices, and
SOURCE names those regions and where their prices came from.
"""

from __future__ import annotations

import argparse
import pprint
import re
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


KARPENTER_FILE = "aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go"
_GENERATED = re.compile(r"// generated at (\d{4}-\d{2}-\d{2})T\d{2}:\d{2}:\d{2}Z(?: for [a-z0-9-]+)?")
_MAP_START = re.compile(r"var InitialOnDemandPricesAWS = map\[string\]map\[ec2types\.InstanceType\]float64\{")
_REGION_START = re.compile(r'"([a-z]{2}(?:-[a-z]+)+-\d)": \{')
_ENTRY = re.compile(r'"([a-z0-9-]+\.[a-z0-9-]+)": (\d+\.\d+),')
# Lines before the map that carry no data: blank, build tag and comments, package and import clauses.
_PREAMBLE = re.compile(r'(|//.*|package \w+|import \w+ "[^"]+")')


def parse_karpenter(text):
    """(generation date, {region: {instance type: USD per hour}}) from Karpenter's zz_generated.pricing_aws.go. Raises
    ValueError, naming the line, on anything not in the generated file's shape: a partial or altered file must not
    become the table."""
    date, regions, region, in_map, closed, in_comment = None, {}, None, False, False, False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if closed and line:
            raise ValueError(f"line {number}: text after the price map: {line[:80]!r}")
        if not in_map and (in_comment or line.startswith("/*")):  # the licence header
            in_comment = not line.endswith("*/")
        elif not in_map:
            if generated := _GENERATED.fullmatch(line):
                date = generated.group(1)
            elif _MAP_START.fullmatch(line):
                in_map = True
            elif not _PREAMBLE.fullmatch(line):
                raise ValueError(f"line {number}: not Karpenter's generated price file: {line[:80]!r}")
        elif not line or line.startswith("//"):
            continue
        elif region is None and (start := _REGION_START.fullmatch(line)):
            region = start.group(1)
            if region in regions:
                raise ValueError(f"line {number}: region {region} twice")
            regions[region] = {}
        elif region is None and line == "}":
            closed = True
        elif region is not None and line == "},":
            region = None
        elif region is not None:
            rest = _ENTRY.sub("", line).strip() if line.endswith(",") else None
            if rest is None or rest:
                raise ValueError(f'line {number}: not a list of "type": price entries: {line[:80]!r}')
            for instance_type, usd in _ENTRY.findall(line):
                if instance_type in regions[region] or float(usd) <= 0:
                    raise ValueError(f"line {number}: {instance_type} twice or priced {usd}")
                regions[region][instance_type] = float(usd)
        else:
            raise ValueError(f"line {number}: unexpected {line[:80]!r}")
    if date is None or not closed or not regions or not all(regions.values()):
        raise ValueError("no generation date, an unclosed map, or a region without prices: not a whole generated file")
    return date, regions


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
    parser.add_argument("--from-karpenter", metavar="FILE", help="Karpenter's zz_generated.pricing_aws.go instead of the Price List")
    parser.add_argument("--karpenter-commit", metavar="SHA", help="the aws/karpenter-provider-aws commit FILE was taken from")
    args = parser.parse_args(argv)
    if args.from_karpenter:
        if not re.fullmatch(r"[0-9a-f]{40}", args.karpenter_commit or ""):
            parser.error("--from-karpenter needs --karpenter-commit, the full 40-hex commit the file was taken from")
        try:
            date, table, source = from_karpenter(Path(args.from_karpenter).read_text(encoding="utf-8"), args.karpenter_commit, args)
        except (OSError, ValueError) as error:
            parser.error(f"{args.from_karpenter}: {error}")
        return write(table, date, source)
    import boto3  # noqa: PLC0415 - only this tool needs AWS credentials

    from ansible_collections.toil.cluster.plugins.module_utils.prices import PRICING_REGION, read_on_demand  # noqa: PLC0415

    pricing = boto3.client("pricing", region_name=PRICING_REGION)
    types = [t for t in args.types.split(",") if t]
    regions = {region: read_on_demand(pricing, types, region) for region in args.regions.split(",") if region}
    for region, prices in regions.items():
        print(f"{region}: {len(prices)} of {len(types)} types priced", file=sys.stderr)
    today = datetime.now(UTC).date().isoformat()
    return write(regions, today, f"AWS Price List Query API (GetProducts), read {today} by tools/build_price_table.py")


def from_karpenter(text, commit, args):
    """(date, table, SOURCE) for --from-karpenter: the wanted types of the wanted regions Karpenter's file has; the
    current table's prices for a wanted region it lacks, named in SOURCE."""
    from ansible_collections.toil.cluster.plugins.module_utils import price_table  # noqa: PLC0415 - the table being replaced

    date, karpenter = parse_karpenter(text)
    types = {t for t in args.types.split(",") if t}
    wanted = [region for region in args.regions.split(",") if region]
    table = {region: {t: usd for t, usd in karpenter[region].items() if t in types} for region in wanted if region in karpenter}
    kept = [region for region in wanted if region not in karpenter and region in price_table.ON_DEMAND]
    table.update({region: price_table.ON_DEMAND[region] for region in kept})
    for region in wanted:
        print(f"{region}: {len(table.get(region, {}))} of {len(types)} types priced{' (kept)' if region in kept else ''}", file=sys.stderr)
    read = ", ".join(region for region in wanted if region in karpenter)
    source = f"{read}: AWS Price List, as read by Karpenter's generator ({KARPENTER_FILE} at commit {commit}, generated {date})"
    if kept:
        previous = price_table.SOURCE.split(", whose source: ", 1)[-1]  # a rebuild names the first source, not nested ones
        source += f"; {', '.join(kept)}: not in Karpenter's file, kept from the previous table, whose source: {previous}"
    return date, table, source


def write(regions, date, source):
    TABLE.write_text(render(regions, date, source), encoding="utf-8")
    subprocess.run(["ruff", "format", str(TABLE)], check=False)  # the project's layout
    return 0


if __name__ == "__main__":
    sys.exit(main())
