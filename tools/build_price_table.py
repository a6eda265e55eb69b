"""Build plugins/module_utils/price_table.py, the scaler's fallback on-demand prices, from the AWS Price List.

Each region's prices come from one source, which the table records with their date (DATES, SOURCES); a type without a
price in a region is left out of that region. Check the diff before committing.

From the Price List itself:

    PYTHONPATH=.venv/collections .venv/bin/python tools/build_price_table.py [--regions us-east-1,...] [--types m5.large,...]

needs AWS credentials allowed pricing:GetProducts and a route to api.pricing.us-east-1.amazonaws.com. It asks the
Price List, with the filters the scaler uses (prices.price_filters: Linux, shared tenancy, no pre-installed software,
capacity status Used), for every type of TYPES in every region of REGIONS, and rewrites the table dated today.

From tables generated from the Price List by others (no AWS access needed), either or both:

    git --git-dir=<karpenter-provider-aws> show <sha>:pkg/providers/pricing/zz_generated.pricing_aws.go > prices.go
    git --git-dir=<ec2instances.info> show <sha>:opszero-app/instances.json > instances.json
    PYTHONPATH=.venv/collections .venv/bin/python tools/build_price_table.py \
        --from-karpenter prices.go --karpenter-commit <sha> \
        --from-ec2instances instances.json --ec2instances-commit <sha> --ec2instances-date "$(git log -1 --format=%cs <sha>)"

Karpenter (aws/karpenter-provider-aws, Apache-2.0) generates zz_generated.pricing_aws.go from the Price List's
on-demand Linux prices: a Go map {region: {instance type: USD per hour}} under a "// generated at <time>" line; it has
held only us-east-1 since 2023. ec2instances.info (vantage-sh/ec2instances.info, MIT) reads every region's prices from
the Price List (GetProducts: capacity status Used, shared tenancy, no licence; its "linux" platform is Linux with no
pre-installed software, the scaler's filters) into its instances.json; opszero-app/instances.json, in its pull request
#735, is that file flattened to {"data": [{"instance-type", "region", "ondemand", ...}]}, one entry per type,
architecture and region, and carries no date: --ec2instances-date is its commit's. Only prices are taken (facts,
attributed in SOURCES). Both parsers are strict: a file not in the expected shape is refused before anything is
written. A wanted region is read from Karpenter's file when it has it (the newer), else from ec2instances.info's; one
in neither keeps the current table's prices, date and source; one nowhere is left out of the table, and the scaler
then has no fallback price there (prices.py).
"""

from __future__ import annotations

import argparse
import json
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
EC2INSTANCES_FILE = "vantage-sh/ec2instances.info opszero-app/instances.json (pull request #735)"
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


# ec2instances.info's flattened export: these keys in every entry, prices as decimal strings ("0": no USD price).
_EXPORT_KEYS = {"instance-type", "arch", "memory", "vCPU", "GPU", "GPU_memory", "current-generation", "region", "ondemand", "spot_avg"}
_TYPE = re.compile(r"[a-z0-9-]+\.[a-z0-9-]+")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+(?:-[a-z0-9]+)*")  # a region, or a local or Wavelength zone's group
_USD = re.compile(r"\d{1,3}(?:\.\d{1,10})?")  # under 1000 USD an hour, as every instance type (prices.MOST_PLAUSIBLE_PRICE)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_ec2instances(text):
    """{region: {instance type: USD per hour}} from ec2instances.info's flattened export (opszero-app/instances.json).
    Raises ValueError, naming the entry, on anything not in its shape; an entry priced "0" (ec2instances.info's mark
    for no USD price in the Price List) is no price; one type priced twice differently in a region is refused."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {"data"} or not isinstance(document["data"], list) or not document["data"]:
        raise ValueError('not the flattened export: {"data": [an entry per instance type, architecture and region]}')
    regions = {}
    for number, entry in enumerate(document["data"]):
        if not isinstance(entry, dict) or set(entry) != _EXPORT_KEYS:
            raise ValueError(f"entry {number}: not an entry of the export (keys {sorted(_EXPORT_KEYS)}): {str(entry)[:80]!r}")
        instance_type, region, usd = entry["instance-type"], entry["region"], entry["ondemand"]
        for value, shape, what in ((instance_type, _TYPE, "an instance type"), (region, _REGION, "a region"), (usd, _USD, "a price in USD")):
            if not isinstance(value, str) or not shape.fullmatch(value):
                raise ValueError(f"entry {number}: not {what}: {str(value)[:80]!r}")
        if float(usd) == 0:
            continue
        known = regions.setdefault(region, {}).setdefault(instance_type, float(usd))
        if known != float(usd):
            raise ValueError(f"entry {number}: {instance_type} in {region} priced {known} and {usd}")
    if not any(regions.values()):
        raise ValueError("no prices at all: not a whole export")
    return regions


def _source_name(region):
    return "_SOURCE_" + region.upper().replace("-", "_")


def render(regions, dates, sources):
    """The table module's text: ON_DEMAND {region: {instance type: USD per hour}} and each region's DATES and SOURCES.
    Regions with the same prices (us-east-1, us-east-2 and us-west-2, mostly) share one table, and those of one source
    one sentence, written once."""
    tables, names, texts, text_names = {}, {}, {}, {}
    for region, prices in sorted(regions.items()):
        names[region] = tables.setdefault(tuple(sorted(prices.items())), "_" + region.upper().replace("-", "_"))
        text_names[region] = texts.setdefault(sources[region], _source_name(region))
    lines = [
        "# -*- coding: utf-8 -*-",
        "# Copyright: toil.cluster contributors",
        "# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)",
        '"""On-demand hourly prices (USD, Linux, shared tenancy) for when the AWS Price List cannot be read (prices.py).',
        "",
        "Each region's prices come from the Price List, read on its DATES day, by the way its SOURCES says. Written by",
        'tools/build_price_table.py; do not edit by hand, rebuild it."""',
        "",
    ]
    lines += [f"{name} = {text!r}  # noqa: E501 - one sentence" for text, name in texts.items()]
    lines.append("DATES = {" + ", ".join(f"{region!r}: {dates[region]!r}" for region in names) + "}")
    lines.append("SOURCES = {" + ", ".join(f"{region!r}: {text_names[region]}" for region in names) + "}")
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
    parser.add_argument("--from-ec2instances", metavar="FILE", help="ec2instances.info's flattened export instead of the Price List")
    parser.add_argument("--ec2instances-commit", metavar="SHA", help="the vantage-sh/ec2instances.info commit FILE was taken from")
    parser.add_argument("--ec2instances-date", metavar="YYYY-MM-DD", help="that commit's date (git log -1 --format=%%cs SHA)")
    args = parser.parse_args(argv)
    wanted = [region for region in args.regions.split(",") if region]
    types = {t for t in args.types.split(",") if t}
    if args.from_karpenter or args.from_ec2instances:
        return write(*from_generated(parser, args, wanted, types))
    import boto3  # noqa: PLC0415 - only this tool needs AWS credentials

    from ansible_collections.toil.cluster.plugins.module_utils.prices import PRICING_REGION, read_on_demand  # noqa: PLC0415

    pricing = boto3.client("pricing", region_name=PRICING_REGION)
    regions = {region: read_on_demand(pricing, sorted(types), region) for region in wanted}
    for region, prices in regions.items():
        print(f"{region}: {len(prices)} of {len(types)} types priced", file=sys.stderr)
    today = datetime.now(UTC).date().isoformat()
    return write(regions, dict.fromkeys(regions, today), dict.fromkeys(regions, "AWS Price List Query API (GetProducts), read by tools/build_price_table.py"))


def generated_inputs(parser, args):
    """[(date, {region: prices}, source)] of the generated files given, Karpenter's (the newer) first; a file that is
    not in its expected shape stops the tool before anything is written."""
    inputs = []
    if args.from_karpenter:
        if not re.fullmatch(r"[0-9a-f]{40}", args.karpenter_commit or ""):
            parser.error("--from-karpenter needs --karpenter-commit, the full 40-hex commit the file was taken from")
        try:
            date, regions = parse_karpenter(Path(args.from_karpenter).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"{args.from_karpenter}: {error}")
        read = f"as read by Karpenter's generator ({KARPENTER_FILE} at commit {args.karpenter_commit}, generated {date})"
        inputs.append((date, regions, f"AWS Price List, {read}"))
    if args.from_ec2instances:
        if not re.fullmatch(r"[0-9a-f]{40}", args.ec2instances_commit or "") or not _DATE.fullmatch(args.ec2instances_date or ""):
            parser.error("--from-ec2instances needs --ec2instances-commit, the full 40-hex commit the file was taken from, and --ec2instances-date, its date")
        try:
            regions = parse_ec2instances(Path(args.from_ec2instances).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"{args.from_ec2instances}: {error}")
        date = args.ec2instances_date
        read = f"as read by ec2instances.info's scraper ({EC2INSTANCES_FILE} at commit {args.ec2instances_commit}, {date})"
        inputs.append((date, regions, f"AWS Price List, {read}"))
    return inputs


def from_generated(parser, args, wanted, types):
    """(table, dates, sources) for the wanted types of the wanted regions: each region from the first input that has
    it, else the current table's (with its own date and source), else left out."""
    from ansible_collections.toil.cluster.plugins.module_utils import price_table  # noqa: PLC0415 - the table being replaced

    inputs = generated_inputs(parser, args)
    table, dates, sources = {}, {}, {}
    for region in wanted:
        found = next(((date, regions[region], source) for date, regions, source in inputs if region in regions), None)
        if found:
            dates[region], prices, sources[region] = found
            table[region] = {t: usd for t, usd in prices.items() if t in types}
        elif region in price_table.ON_DEMAND:
            table[region], dates[region], sources[region] = price_table.ON_DEMAND[region], price_table.DATES[region], price_table.SOURCES[region]
        how = "read" if found else "kept from the current table" if region in table else "in no source: left out"
        print(f"{region}: {len(table.get(region, {}))} of {len(types)} types priced ({how})", file=sys.stderr)
    return table, dates, sources


def write(regions, dates, sources):
    TABLE.write_text(render(regions, dates, sources), encoding="utf-8")
    subprocess.run(["ruff", "format", str(TABLE)], check=False)  # the project's layout
    return 0


if __name__ == "__main__":
    sys.exit(main())
