"""A real boto3 EC2 client whose HTTP layer is a Python function: no network, no moto.

``FakeEC2(answer)``: ``answer(action, params) -> (status, xml bytes)`` for each request botocore sends
(``params`` is the form-encoded request, e.g. ``{"Action": "DescribeInstances", "MaxResults": "1000",
"Filter.1.Name": ...}``). botocore signs, retries (standard mode), emits its events and parses as it
would against EC2, so the inventory's hooks and error handling run for real. ``requests`` records every
request's params in order.
"""

from __future__ import annotations

import urllib.parse

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_BOTOCORE = botocore.session.Session(session_vars={"config_file": (None, None, "/dev/null", None), "credentials_file": (None, None, "/dev/null", None)})


class _Raw:
    def __init__(self, body):
        self._body = body

    def stream(self, **_kwargs):
        yield self._body


class FakeEC2:
    def __init__(self, answer, region="us-west-2", max_attempts=10):
        self.answer = answer
        self.requests = []
        # One botocore session for every fake (its service models load once); the credentials are per client.
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=region, botocore_session=_BOTOCORE)
        config = Config(retries={"mode": "standard", "max_attempts": max_attempts})
        self.client = session.client("ec2", endpoint_url="http://127.0.0.1:9", config=config)
        self.client.meta.events.register("before-send.ec2", self._send)

    def _send(self, request, **_kwargs):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        params = {key: values[0] for key, values in urllib.parse.parse_qs(body).items()}
        self.requests.append(params)
        status, payload = self.answer(params["Action"], params)
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(payload))

    def actions(self):
        return [params["Action"] for params in self.requests]


def filters_of(params):
    """{"instance.group-name": [...], ...} from a request's Filter.N.Name / Filter.N.Value.M params, in order."""
    found = {}
    index = 1
    while f"Filter.{index}.Name" in params:
        values = []
        value = 1
        while f"Filter.{index}.Value.{value}" in params:
            values.append(params[f"Filter.{index}.Value.{value}"])
            value += 1
        found[params[f"Filter.{index}.Name"]] = values
        index += 1
    return found


def error_xml(code, message="injected"):
    return f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r</RequestID></Response>".encode()


def _escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def instance_xml(
    instance_id,
    *,
    groups=(),
    tags=None,
    state="running",
    launch_time="2025-01-01T00:00:00.000Z",
    private_ip="10.0.0.1",
    public_ip=None,
    private_dns=None,
    instance_type="t3.large",
    zone="us-west-2a",
    lifecycle=None,
    spot_request=None,
    http_tokens="optional",
    hop_limit=1,
    eni_groups=("eni-only-group",),
    eni_tags=None,
):
    """One ``instancesSet/item`` as EC2 writes it, with a network interface carrying its own groups, tags and IP."""
    parts = [
        f"<instanceId>{instance_id}</instanceId>",
        "<imageId>ami-12345678</imageId>",
        f"<instanceState><code>16</code><name>{state}</name></instanceState>",
        f"<privateDnsName>{private_dns or ''}</privateDnsName>",
        f"<dnsName>{'ec2-' + public_ip.replace('.', '-') + '.compute.amazonaws.com' if public_ip else ''}</dnsName>",
        "<reason/>",
        "<keyName>me</keyName>",
        "<amiLaunchIndex>0</amiLaunchIndex>",
        "<productCodes/>",
        f"<instanceType>{instance_type}</instanceType>",
        f"<launchTime>{launch_time}</launchTime>",
        f"<placement><availabilityZone>{zone}</availabilityZone><groupName/><tenancy>default</tenancy></placement>",
        "<monitoring><state>disabled</state></monitoring>",
        "<subnetId>subnet-1</subnetId>",
        "<vpcId>vpc-1</vpcId>",
        f"<privateIpAddress>{private_ip}</privateIpAddress>" if private_ip else "",
        f"<ipAddress>{public_ip}</ipAddress>" if public_ip else "",
        "<groupSet>" + "".join(f"<item><groupId>sg-{i}</groupId><groupName>{_escape(g)}</groupName></item>" for i, g in enumerate(groups)) + "</groupSet>",
        "<architecture>x86_64</architecture>",
        "<rootDeviceType>ebs</rootDeviceType>",
        "<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName>"
        "<ebs><volumeId>vol-1</volumeId><status>attached</status></ebs></item></blockDeviceMapping>",
        f"<instanceLifecycle>{lifecycle}</instanceLifecycle>" if lifecycle else "",
        f"<spotInstanceRequestId>{spot_request}</spotInstanceRequestId>" if spot_request else "",
        "<virtualizationType>hvm</virtualizationType>",
        "<clientToken>abc</clientToken>",
    ]
    if tags is not None:
        parts.append("<tagSet>" + "".join(f"<item><key>{_escape(k)}</key><value>{_escape(v)}</value></item>" for k, v in tags.items()) + "</tagSet>")
    parts.append(
        "<networkInterfaceSet><item><networkInterfaceId>eni-1</networkInterfaceId><subnetId>subnet-1</subnetId>"
        "<privateIpAddress>192.168.99.99</privateIpAddress>"
        "<groupSet>" + "".join(f"<item><groupId>sg-e{i}</groupId><groupName>{g}</groupName></item>" for i, g in enumerate(eni_groups)) + "</groupSet>"
        "<attachment><attachmentId>eni-attach-1</attachmentId><deviceIndex>0</deviceIndex><status>attached</status></attachment>"
        + ("<tagSet>" + "".join(f"<item><key>{k}</key><value>{v}</value></item>" for k, v in (eni_tags or {}).items()) + "</tagSet>" if eni_tags else "")
        + "</item></networkInterfaceSet>"
    )
    parts.append(
        f"<metadataOptions><state>applied</state><httpTokens>{http_tokens}</httpTokens>"
        f"<httpPutResponseHopLimit>{hop_limit}</httpPutResponseHopLimit><httpEndpoint>enabled</httpEndpoint></metadataOptions>"
    )
    return "<item>" + "".join(parts) + "</item>"


def page_xml(reservations, next_token=None, namespace=True):
    """A DescribeInstances answer; ``reservations`` is a list of lists of instance_xml items."""
    body = "".join(
        f"<item><reservationId>r-{i}</reservationId><ownerId>123456789012</ownerId>"
        f"<groupSet><item><groupId>sg-r</groupId><groupName>reservation-level</groupName></item></groupSet>"
        f"<instancesSet>{''.join(items)}</instancesSet></item>"
        for i, items in enumerate(reservations)
    )
    xmlns = f' xmlns="{NS}"' if namespace else ""
    token = f"<nextToken>{next_token}</nextToken>" if next_token else ""
    head = f'<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse{xmlns}><requestId>req</requestId>'
    return f"{head}<reservationSet>{body}</reservationSet>{token}</DescribeInstancesResponse>".encode()


def security_groups_xml(groups):
    """A DescribeSecurityGroups answer; ``groups`` is [(name, description)]."""
    items = "".join(
        f"<item><ownerId>123456789012</ownerId><groupId>sg-{i}</groupId><groupName>{name}</groupName>"
        f"<groupDescription>{description}</groupDescription><vpcId>vpc-1</vpcId><ipPermissions/><ipPermissionsEgress/></item>"
        for i, (name, description) in enumerate(groups)
    )
    head = f'<DescribeSecurityGroupsResponse xmlns="{NS}"><requestId>req</requestId>'
    return f"{head}<securityGroupInfo>{items}</securityGroupInfo></DescribeSecurityGroupsResponse>".encode()
