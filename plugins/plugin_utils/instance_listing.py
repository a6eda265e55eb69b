# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Listing the Toil nodes of several regions for the ``toil_ec2`` inventory (controller side only).

Per region, paginated DescribeInstances (pages of 1,000) filtered server-side by the clusters'
security groups (``instance.group-name``, always the first filter), the instance state and the
``Owner`` tag: every instance ``toil destroy-cluster`` would act on; then the same with the clusters'
names as ``tag:clusterName`` instead of the groups, for the instances that claim a cluster from
outside its group. ``build_inventory`` keeps only members (group *and* tag, ``nodes.is_member``) and
warns of the rest (strays: Toil's workers for the moment before it tags them, or an instance placed
in, or tagged for, a cluster it is not part of). With ``clusters`` given, their names are the groups and nothing else is asked;
without, one DescribeSecurityGroups first finds the groups with Toil's description (Toil and this
collection both use it). Regions run in parallel threads. Each page's XML is read directly for the
fields used (``parse_describe_instances``), several times cheaper than botocore's generic parser on
thousands of instances; botocore's answer is used whenever the raw page is not seen.

The records it returns are module_utils/inventory.py's (``record_from_boto3`` makes the same from
botocore's answer), which ``build_inventory`` turns into hosts.
"""

from __future__ import annotations

import io
import threading
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.toil.cluster.plugins.module_utils.inventory import TEXT_FIELDS, InventoryConfigError, iso_time, record_from_boto3
from ansible_collections.toil.cluster.plugins.module_utils.nodes import states
from ansible_collections.toil.cluster.plugins.module_utils.security_group import TOIL_SECURITY_GROUP_DESCRIPTION
from ansible_collections.toil.cluster.plugins.module_utils.tags import TAG_CLUSTER_NAME, TAG_OWNER

MAX_RESULTS = 1000  # DescribeInstances' largest page
FILTER_VALUES_MAX = 200  # EC2 refuses more filter values in one request


class InventoryQueryError(RuntimeError):
    """An AWS call failed (after botocore's retries): the inventory must fail, not come out partial."""

    def __init__(self, region, action, error):
        super().__init__(f"{action} in {region} failed: {error}")
        self.region = region
        self.action = action
        self.error = error


def _text(element):
    return element.text if element is not None else None


def _record_from_xml(instance, ns):
    record = {}
    strip = len(ns)
    for child in instance:
        name = child.tag[strip:]
        key = TEXT_FIELDS.get(name)
        if key is not None:
            if child.text:
                record[key] = child.text
        elif name == "instanceState":
            record["State"] = _text(child.find(ns + "name"))
        elif name == "launchTime":
            record["LaunchTime"] = iso_time(child.text)
        elif name == "placement":
            record["AvailabilityZone"] = _text(child.find(ns + "availabilityZone"))
        elif name == "groupSet":
            record["SecurityGroups"] = [_text(item.find(ns + "groupName")) for item in child]
        elif name == "tagSet":
            record["Tags"] = [{"Key": _text(item.find(ns + "key")), "Value": _text(item.find(ns + "value")) or ""} for item in child]
        elif name == "metadataOptions":
            tokens, hops = child.find(ns + "httpTokens"), child.find(ns + "httpPutResponseHopLimit")
            if tokens is not None:
                record["HttpTokens"] = tokens.text
            if hops is not None and hops.text:
                record["HttpPutResponseHopLimit"] = int(hops.text)
    return record


def parse_describe_instances(body):
    """One DescribeInstances page (the XML EC2 answers) -> (instance records, next token or None).

    Streamed: each instance's elements are dropped once read, so a page of thousands of instances never
    exists as a whole tree. An instance is an ``item`` with a direct ``instanceId`` child; only direct
    children are read, so a network interface's own groups and tags are never taken for the instance's.
    """
    records = []
    token = None
    ns = item = instance_id = next_token = None
    for _event, element in ET.iterparse(io.BytesIO(body), events=("end",)):
        if ns is None:
            ns = element.tag[: element.tag.index("}") + 1] if element.tag.startswith("{") else ""
            item, instance_id, next_token = ns + "item", ns + "instanceId", ns + "nextToken"
        tag = element.tag
        if tag == item:
            if element.find(instance_id) is not None:
                records.append(_record_from_xml(element, ns))
                element.clear()
        elif tag == next_token:
            token = element.text or None
    return records, token


_EMPTY_PAGE = b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><reservationSet/></DescribeInstancesResponse>'


class RawPages:
    """A botocore ``before-parse`` hook that keeps DescribeInstances' raw XML for ``parse_describe_instances``.

    botocore then parses an empty page instead of the real one; errors (status >= 300) are left to
    botocore untouched, so its retries and exceptions work as usual. Per thread, so one client can
    serve several listings at once.
    """

    EVENT = "before-parse.ec2.DescribeInstances"

    def __init__(self):
        self._local = threading.local()

    def install(self, ec2):
        ec2.meta.events.register(self.EVENT, self, unique_id=f"toil-ec2-raw-pages-{id(self)}")
        return ec2

    def __call__(self, response_dict=None, **_kwargs):
        if not getattr(self._local, "armed", False) or response_dict is None:
            return
        body = response_dict.get("body")
        if response_dict.get("status_code") == 200 and isinstance(body, bytes) and body:
            self._local.body = body
            response_dict["body"] = _EMPTY_PAGE

    def arm(self):
        self._local.armed = True
        self._local.body = None

    def take(self):
        body = getattr(self._local, "body", None)
        self._local.armed = False
        self._local.body = None
        return body


def describe_instances(ec2, filters, raw=None):
    """Every instance matching ``filters``, reading every page (1,000 reservations at a time)."""
    records = []
    token = None
    while True:
        request = {"Filters": filters, "MaxResults": MAX_RESULTS}
        if token:
            request["NextToken"] = token
        if raw is not None:
            raw.arm()
        try:
            page = ec2.describe_instances(**request)
        finally:
            body = raw.take() if raw is not None else None
        if body is not None:
            found, token = parse_describe_instances(body)
        else:
            found = [record_from_boto3(i) for reservation in page.get("Reservations", []) for i in reservation.get("Instances", [])]
            token = page.get("NextToken")
        records.extend(found)
        if not token:
            return records


def list_security_groups(ec2):
    """(name, description) of every security group in the region."""
    groups = []
    for page in ec2.get_paginator("describe_security_groups").paginate(PaginationConfig={"PageSize": MAX_RESULTS}):
        groups.extend((group["GroupName"], group.get("Description", "")) for group in page["SecurityGroups"])
    return groups


def _chunks(values, size):
    return [values[i : i + size] for i in range(0, len(values), size)]


def plan_queries(groups, clusters=(), owners=(), include_stopped=False):
    """(the clusters' security group names, [DescribeInstances filter lists]) for one region.

    ``groups`` is ``list_security_groups``' answer, needed only when no ``clusters`` are named. One
    request per membership half (group, then ``clusterName`` tag) lists every cluster's instances; only
    more than 200 filter values (EC2's limit per request) split them.
    """
    toil_made = {name for name, description in groups or () if description == TOIL_SECURITY_GROUP_DESCRIPTION}
    cluster_groups = sorted(set(clusters) or toil_made)
    common = [{"Name": "instance-state-name", "Values": states(include_stopped)}]
    if owners:
        common.append({"Name": "tag:" + TAG_OWNER, "Values": list(owners)})
    budget = FILTER_VALUES_MAX - sum(len(f["Values"]) for f in common)
    if budget < 1:
        raise InventoryConfigError(f"owners: at most {FILTER_VALUES_MAX - 10} owners can be asked for at once.")
    chunks = _chunks(cluster_groups, budget)
    by_group = [[{"Name": "instance.group-name", "Values": chunk}, *common] for chunk in chunks]
    by_tag = [[{"Name": "tag:" + TAG_CLUSTER_NAME, "Values": chunk}, *common] for chunk in chunks]
    return cluster_groups, by_group + by_tag


def query_regions(clients, clusters=(), owners=(), include_stopped=False, max_workers=16):
    """``{region: {"cluster_groups": [...], "instances": [records]}}`` for ``clients`` (region -> EC2 client).

    Regions run in parallel threads; the first failure is raised as ``InventoryQueryError`` once every
    call has returned, so no partial answer ever escapes.
    """
    regions = list(clients)
    if not regions:
        return {}
    raw = {region: RawPages() for region in regions}
    for region in regions:
        raw[region].install(clients[region])

    def groups_of(region):
        if clusters:
            return None  # the named clusters are the groups: nothing to ask
        try:
            return list_security_groups(clients[region])
        except Exception as error:  # botocore's, after its retries
            raise InventoryQueryError(region, "DescribeSecurityGroups", error) from error

    def instances_of(region, filters):
        try:
            return describe_instances(clients[region], filters, raw[region])
        except Exception as error:
            raise InventoryQueryError(region, "DescribeInstances", error) from error

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(regions)))) as pool:
        groups = dict(zip(regions, pool.map(groups_of, regions), strict=True))
        plans = {region: plan_queries(groups[region], clusters, owners, include_stopped) for region in regions}
        jobs = [(region, pool.submit(instances_of, region, filters)) for region in regions for filters in plans[region][1]]
        listings = [(region, job.result()) for region, job in jobs]
    result = {region: {"cluster_groups": plans[region][0], "instances": []} for region in regions}
    seen = set()
    for region, records in listings:
        for record in records:
            if record.get("InstanceId") and record["InstanceId"] not in seen:
                seen.add(record["InstanceId"])
                result[region]["instances"].append(record)
    return result
