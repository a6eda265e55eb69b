#!/usr/bin/python3
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""toil.cluster's spot interruption handler: cordons, taints and drains this node when EC2 announces it is leaving.

Installed by the role toil.cluster.kubernetes on spot workers (systemd unit toil-interruption-handler); standard
library only, so it needs nothing on the node but Debian's python3. It does, for a Toil cluster, what
aws-node-termination-handler does in IMDS mode (which needs its container image; see docs/scaling.md).

What the instance metadata service (IMDS) answers, per the EC2 user guide ("Use the Instance Metadata Service to
access instance metadata", "Spot Instance interruption notices", "EC2 instance rebalance recommendations"):

- IMDSv2 session: ``PUT /latest/api/token`` with header ``X-aws-ec2-metadata-token-ttl-seconds`` (1 to 21600)
  answers a token (text); every read then carries ``X-aws-ec2-metadata-token``. A read with an expired or unknown
  token is ``401 Unauthorized``; a PUT without the TTL header, or with a TTL outside 1..21600, is ``400``. Instances
  that require IMDSv2 (HttpTokens=required, what toil.cluster launches) answer a read without a token ``401`` too.
- ``GET /latest/meta-data/spot/instance-action``: ``404 Not Found`` until EC2 has decided to interrupt the Spot
  Instance, then ``{"action": "terminate" | "stop" | "hibernate", "time": "2017-09-18T08:22:00Z"}`` (the time, in
  UTC, when the action happens: about two minutes after the notice).
- ``GET /latest/meta-data/events/recommendations/rebalance``: ``404`` until EC2 sees an elevated risk of
  interruption, then ``{"noticeTime": "2020-11-05T08:22:00Z"}``; it can arrive before, with, or without an
  interruption notice.

Both answers are validated here (known action, a time in that exact form) before anything is done with them; a
notice whose body is not understood is still a notice (the 200 is what AWS guarantees), handled as a termination
now. Only values this program builds reach the Kubernetes API: the taint key and effect are constants, its value
the notice time as epoch seconds.

On an interruption notice (and on a rebalance recommendation when ``drain_on_rebalance``) it, through the Kubernetes
API with its own client certificate (a user of group toil.cluster:interruption-handlers, bound by the role to a
ClusterRole that may get and patch nodes, list pods and create pods/eviction, nothing else. The kubelet's own
system:node identity would not do: it may cordon its Node and evict the pods bound to it, but the NodeRestriction
admission plugin refuses a node that modifies its own taints, plugin/pkg/admission/noderestriction/admission.go):

1. marks the Node: ``spec.unschedulable`` (cordon) and the taint ``aws-node-termination-handler/spot-itn`` (or
   ``.../rebalance-recommendation``), effect NoSchedule, the keys aws-node-termination-handler writes, so that the
   scaler (which counts such a node as leaving and launches its replacement), kubernetes-mixin's alerts and other
   tools read one convention, whichever handler runs. A merge patch carrying the Node's resourceVersion, retried on
   409 Conflict: other taints are kept.
2. evicts its pods through the Eviction API (policy/v1), DaemonSet, mirror and finished pods excepted (they go with
   the node). A 429 (a PodDisruptionBudget refuses) is retried every ``retry_seconds`` until the action's time:
   a pod is never deleted past its budget. Toil's jobs are evicted too: their ``safe-to-evict: "false"`` annotation
   is cluster-autoscaler's, not the Eviction API's, and the node is going anyway; Toil's Kubernetes batch system
   finds the pod vanished and reports the job failed with EXIT_STATUS_UNAVAILABLE, and Toil's leader runs it again
   (``--retryCount``; with ``--enableUnlimitedPreemptibleRetries`` such a loss does not count).

Configuration: a JSON file (``--config``, written by the role) with ``node`` (the Node's name), ``server`` (the API
server's URL), ``ca``, ``cert``, ``key`` (PEM files), ``poll_seconds``, ``retry_seconds`` and
``drain_on_rebalance``. The metadata endpoint is ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (the AWS SDKs' setting),
by default ``http://169.254.169.254``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

LOG = logging.getLogger("toil-interruption-handler")
DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL = 21600  # IMDSv2's longest session; renewed a minute before it ends
SPOT_TAINT = "aws-node-termination-handler/spot-itn"
REBALANCE_TAINT = "aws-node-termination-handler/rebalance-recommendation"
ACTIONS = ("terminate", "stop", "hibernate")
IMDS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
NOTICE_SECONDS = 120  # an interruption's notice, when its time is not understood


class ConfigError(Exception):
    """The configuration is not usable: the handler stops before it asks anything."""


@dataclass(frozen=True)
class Notice:
    """What IMDS announced: ``kind`` spot-itn or rebalance, the action, and when (epoch seconds)."""

    kind: str
    action: str
    at: int

    @property
    def taint_key(self):
        return SPOT_TAINT if self.kind == "spot-itn" else REBALANCE_TAINT


def parse_time(text):
    """IMDS's time (``2017-09-18T08:22:00Z``) as epoch seconds, or None when it is not in that form."""
    if not isinstance(text, str) or not IMDS_TIME.match(text):
        return None
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def parse_instance_action(body, now):
    """The notice of a 200 from spot/instance-action; a body not understood is a termination in NOTICE_SECONDS."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    action = data.get("action") if isinstance(data, dict) else None
    at = parse_time(data.get("time")) if isinstance(data, dict) else None
    if action not in ACTIONS or at is None:
        LOG.warning("spot/instance-action answered %r, not the documented form: handled as a termination now", body[:200])
        return Notice("spot-itn", "terminate", int(now) + NOTICE_SECONDS)
    return Notice("spot-itn", action, at)


def parse_rebalance(body, now):
    """The notice of a 200 from events/recommendations/rebalance (no action: the instance is at risk, not leaving)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    at = parse_time(data.get("noticeTime")) if isinstance(data, dict) else None
    if at is None:
        LOG.warning("events/recommendations/rebalance answered %r, not the documented form", body[:200])
        at = int(now)
    return Notice("rebalance", "rebalance", at)


def load_config(path):
    """The handler's settings, checked: a ConfigError names what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the configuration {path}: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    node = config.get("node")
    if not isinstance(node, str) or len(node) > 253 or not DNS_SUBDOMAIN.match(node):
        raise ConfigError(f"{path}: node must be a Node name (a DNS subdomain), not {node!r}")
    server = config.get("server")
    parsed = _host_and_port(server)
    if parsed is None or parsed.scheme != "https":
        raise ConfigError(f"{path}: server must be the API server's https://HOST:PORT, not {server!r}")
    for key in ("ca", "cert", "key"):
        if not isinstance(config.get(key), str) or not os.path.isabs(config[key]):
            raise ConfigError(f"{path}: {key} must be an absolute path")
    for key, default in (("poll_seconds", 5), ("retry_seconds", 5)):
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 60:
            raise ConfigError(f"{path}: {key} must be a number of seconds from 0.1 to 60, not {value!r}")
        config[key] = float(value)
    if not isinstance(config.get("drain_on_rebalance", False), bool):
        raise ConfigError(f"{path}: drain_on_rebalance must be true or false")
    config["server"] = f"https://{parsed.netloc}"
    return config


def _host_and_port(url):
    """``urlsplit(url)`` when it is SCHEME://HOST[:PORT] and nothing more (a numeric port), else None."""
    parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    try:
        if parsed is None or not parsed.hostname or parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.username:
            return None
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return None
    return parsed


def metadata_endpoint(environ=None):
    """The IMDS base URL from AWS_EC2_METADATA_SERVICE_ENDPOINT (http or https, a host, nothing else)."""
    environ = os.environ if environ is None else environ
    endpoint = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT
    parsed = _host_and_port(endpoint)
    if parsed is None or parsed.scheme not in ("http", "https"):
        raise ConfigError(f"AWS_EC2_METADATA_SERVICE_ENDPOINT must be http://HOST[:PORT], not {endpoint!r}")
    return f"{parsed.scheme}://{parsed.netloc}"


class Imds:
    """An IMDSv2 session: a token asked for with a TTL, renewed before it ends and after a 401."""

    def __init__(self, endpoint, opener=urllib.request.urlopen, clock=time.monotonic):
        self.endpoint, self._open, self._clock = endpoint, opener, clock
        self._token, self._expires = None, 0.0

    def _new_token(self):
        request = urllib.request.Request(self.endpoint + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)})
        with self._open(request, timeout=2) as answer:
            self._token = answer.read().decode("ascii", "replace").strip()
        self._expires = self._clock() + TOKEN_TTL - 60

    def get(self, path):
        """``(status, body)`` of a GET of ``/latest/meta-data/<path>``; 404 is an answer, not an error."""
        for attempt in (1, 2):
            if self._token is None or self._clock() >= self._expires:
                self._new_token()
            request = urllib.request.Request(f"{self.endpoint}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": self._token})
            try:
                with self._open(request, timeout=2) as answer:
                    return answer.status, answer.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as error:
                if error.code == 401 and attempt == 1:  # the token expired or IMDS restarted: a new session
                    self._token = None
                    continue
                return error.code, ""
        return 401, ""

    def notice(self, now):
        """The interruption notice, else the rebalance recommendation, else None."""
        status, body = self.get("spot/instance-action")
        if status == 200:
            return parse_instance_action(body, now)
        status, body = self.get("events/recommendations/rebalance")
        if status == 200:
            return parse_rebalance(body, now)
        return None


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Kube:
    """The few Kubernetes API calls the handler makes, with its client certificate."""

    def __init__(self, config, opener=None):
        self.server = config["server"]
        if opener is None:
            context = ssl.create_default_context(cafile=config["ca"])
            context.load_cert_chain(config["cert"], config["key"])
            handler = urllib.request.HTTPSHandler(context=context)
            opener = urllib.request.build_opener(handler).open
        self._open = opener

    def call(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data, {"Content-Type": content_type, "Accept": "application/json"}, method=method)
        try:
            with self._open(request, timeout=10) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            try:
                message = json.loads(text).get("message", text)
            except (ValueError, AttributeError):
                message = text
            raise ApiError(error.code, message) from None


def node_path(node):
    return "/api/v1/nodes/" + urllib.parse.quote(node, safe="")


def mark_node(kube, node, notice):
    """Cordon and taint the Node (merge patch with its resourceVersion, again on 409); other taints are kept."""
    for _attempt in range(5):
        current = kube.call("GET", node_path(node))
        taints = [t for t in (current.get("spec") or {}).get("taints") or [] if t.get("key") != notice.taint_key]
        taints.append({"key": notice.taint_key, "value": str(notice.at), "effect": "NoSchedule"})
        patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "spec": {"unschedulable": True, "taints": taints}}
        try:
            kube.call("PATCH", node_path(node), patch, "application/merge-patch+json")
            return
        except ApiError as error:
            if error.status != 409:
                raise
    raise ApiError(409, f"node {node} kept changing while it was being marked")


def _skipped(pod):
    """DaemonSet, mirror (static) and finished pods: they go with the node, as kubectl drain leaves them."""
    metadata = pod.get("metadata") or {}
    owners = metadata.get("ownerReferences") or []
    return (
        (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        or any(o.get("kind") == "DaemonSet" and o.get("controller") for o in owners)
        or "kubernetes.io/config.mirror" in (metadata.get("annotations") or {})
    )


def pods_to_evict(kube, node):
    selector = urllib.parse.urlencode({"fieldSelector": f"spec.nodeName={node}"})
    listing = kube.call("GET", f"/api/v1/pods?{selector}")
    return [pod for pod in listing.get("items") or [] if not _skipped(pod)]


def evict(kube, pod):
    """One Eviction (policy/v1): True when the pod is evicted or gone, False when a PodDisruptionBudget refuses (429)."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
    path = f"/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/pods/{urllib.parse.quote(name, safe='')}/eviction"
    try:
        kube.call("POST", path, body)
    except ApiError as error:
        if error.status == 404:
            return True
        if error.status == 429:
            LOG.info("eviction of %s/%s refused for now (%s): retried", namespace, name, error)
            return False
        raise
    LOG.info("evicted %s/%s", namespace, name)
    return True


def drain(kube, node, notice, deadline, *, retry_seconds, sleep=time.sleep, wall=time.time):
    """Evict the node's pods until none is left or ``deadline`` (epoch seconds) has passed; returns the pods left."""
    while True:
        left = [pod for pod in pods_to_evict(kube, node) if not evict(kube, pod)]
        if not left:
            return []
        if wall() >= deadline:
            names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in left)
            LOG.warning("the %s time has come with pods left on %s: %s", notice.kind, node, names)
            return left
        sleep(retry_seconds)


class Handler:
    """One poll of IMDS and what it calls for; ``handled`` remembers what was done (a notice is acted on once)."""

    def __init__(self, config, imds, kube, sleep=time.sleep, wall=time.time):
        self.config, self.imds, self.kube, self.sleep, self.wall = config, imds, kube, sleep, wall
        self.handled = set()

    def poll(self):
        notice = self.imds.notice(self.wall())
        if notice is None or notice.kind in self.handled:
            return notice
        node = self.config["node"]
        if notice.kind == "rebalance" and not self.config.get("drain_on_rebalance"):
            LOG.info("rebalance recommendation for %s (notice time %s): drain_on_rebalance is off, nothing done", node, notice.at)
            self.handled.add(notice.kind)
            return notice
        LOG.warning("%s for %s (%s at %s): cordoning, tainting %s and draining", notice.kind, node, notice.action, notice.at, notice.taint_key)
        mark_node(self.kube, node, notice)
        # An interruption's pods may wait for their budgets until its time; a recommendation's, one notice's length.
        deadline = notice.at if notice.kind == "spot-itn" else self.wall() + NOTICE_SECONDS
        drain(self.kube, node, notice, deadline, retry_seconds=self.config["retry_seconds"], sleep=self.sleep, wall=self.wall)
        self.handled.add(notice.kind)  # only now: an API error on the way has the next poll mark and drain again
        return notice

    def run(self):
        while True:
            try:
                self.poll()
            except (OSError, http.client.HTTPException, ApiError, KeyError, ValueError) as error:  # IMDS or the API away for a moment
                LOG.warning("poll failed: %s", error)
            self.sleep(self.config["poll_seconds"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default="/etc/toil-cluster/interruption-handler/config.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_config(args.config)
        endpoint = metadata_endpoint()
        kube = Kube(config)
    except (ConfigError, OSError, ssl.SSLError) as error:
        LOG.error("%s", error)
        return 2
    LOG.info("watching %s for node %s (drain on rebalance: %s)", endpoint, config["node"], config.get("drain_on_rebalance", False))
    Handler(config, Imds(endpoint), kube).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
