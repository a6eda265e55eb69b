"""A recording (and fault-injecting) HTTP proxy in front of the embedded AWS endpoint.

Tests point a client at the proxy instead of moto to learn which AWS API calls a module made
(``calls``: ``[("ec2", "RunInstances"), ("s3", "PUT /bucket"), ...]``), for example to prove
that a re-run or a check-mode run makes no mutating call. ``fail_next(action, ...)`` makes
the next calls of an action (optionally only those with given parameters) fail the way AWS
fails them. ``client_tokens=True`` gives RunInstances and CreateFleet EC2's documented idempotency, which moto
lacks (see "EC2 ClientToken" below). ``no_capacity(instance_type, subnet)`` takes a capacity pool's capacity away
from instant fleets: the fleet reports it in its ``Errors`` and launches from the next pool (see "EC2 Fleet
capacity"). ``chaos(rate, seed)`` fails a seeded random share of every call the way AWS does under load (throttling
and 5xx); ``on_call`` sees each call before it is answered. Everything
stays on 127.0.0.1.

EC2 ClientToken (``client_tokens=True``), as EC2 documents it ("Ensuring idempotency in Amazon EC2 API
requests", docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html, and the API reference's
Run_Instance_Idempotency page):

- "If you repeat a request with the same client token, the same response is returned for each repeated
  request. The only information that might vary in the response is the state of the instance": the
  proxy answers a repeat with the first reservation (same reservation and instance IDs), each
  instance's ``instanceState`` read from the endpoint now, terminated included. Nothing is launched.
- "If you repeat a request with the same client token, but change another request parameter, Amazon EC2
  returns an IdempotentParameterMismatch error" (other than the Region or the Availability Zone): the
  proxy answers 400 ``IdempotentParameterMismatch`` and launches nothing.
- "A client token is valid for at least 24 hours after the termination of the instance. You should not
  reuse a client token in another call later on." (the issue's "7 days" is not in the text): the proxy
  keeps every token for its whole life, which is longer than any test.
- Tokens are per Region ("you can use the same client token for the same request across different
  Regions ... we launch instances in each of those Regions"): the key is (region, token).
- A request that failed launched nothing and completed nothing, so its token stays unused: only a
  successful answer is remembered. Two requests with one token at once: the second waits for the first.
- CreateFleet is one of the actions that "optionally support idempotency using a client token" (the same
  page's list): "If you retry a request that completed successfully using the same client token and the same
  parameters, the retry succeeds without performing any further actions"; other parameters give
  IdempotentParameterMismatch. An instant fleet's answer (FleetId, Instances with their IDs, Errors) carries no
  instance state, so the repeat is the first answer as it was: the first fleet's instance IDs, whatever became of
  them. An instant fleet that launched nothing has still completed successfully: its token is used. EC2 does not say
  how long it keeps a CreateFleet token; the proxy keeps it for its whole life, as for RunInstances.

EC2 Fleet capacity (``no_capacity``): an instant fleet "returns errors for any instances that could not be launched"
(docs.aws.amazon.com/AWSEC2/latest/UserGuide/instant-fleet.html): a capacity pool (an override: instance type in a
subnet) without capacity is an entry of the answer's ``Errors`` (its LaunchTemplateAndOverrides, Lifecycle, ErrorCode,
ErrorMessage) while the fleet takes the target from its other pools, and the call succeeds (HTTP 200) even when it
launched nothing. The proxy says which pools are short to the endpoint's instant-fleet emulation (harness.endpoint's
bootstrap) in the ``X-Harness-Capacity`` header of each CreateFleet it forwards; the codes EC2 uses there are
``InsufficientInstanceCapacity`` (on-demand) and ``InsufficientCapacity``/``SpotMaxPriceTooLow`` (spot).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
_REGION = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/")
# What EC2 ignores when it compares a repeated ClientToken's request with the first: the token, and the AZ.
_TOKEN_EXEMPT = re.compile(r"^(ClientToken|Placement\.AvailabilityZone)$")
# Calls that only read: a run that makes none of the others changed nothing.
READ_ONLY = re.compile(r"^(Describe|Get|List|Head|Lookup|Select)|^(GET|HEAD) ")
_ERRORS = {  # how AWS says "slow down" per service
    "ec2": (503, "RequestLimitExceeded"),
    "s3": (503, "SlowDown"),
}
# chaos(): a fifth of the faults are server errors, the rest the service's throttling answer.
_SERVER_ERROR = (500, "InternalFailure")
_SERVER_ERROR_SHARE = 0.2
_MISMATCH = "Arguments on this idempotent request are inconsistent with arguments used in previous request(s)."
_EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15"
# The EC2 actions whose ClientToken the proxy keeps (client_tokens=True); RunInstances' repeats show today's states.
_TOKEN_ACTIONS = ("RunInstances", "CreateFleet")


def _action(service, method, path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        return f"{method} {urllib.parse.urlsplit(path).path}"
    query = urllib.parse.urlsplit(path).query
    for source in (body.decode("utf-8", "replace"), query):
        action = urllib.parse.parse_qs(source).get("Action")
        if action:
            return action[0]
    return f"{method} {urllib.parse.urlsplit(path).path}"


# An instance status check as EC2 reports an instance that stopped answering (see AWSProxy.impair).
_IMPAIRED_STATUS = "<instanceStatus><details><item><name>reachability</name><status>failed</status></item></details><status>impaired</status></instanceStatus>"


class AWSProxy:
    """``AWSProxy(upstream_url)``; ``.start()``, ``.url``, ``.calls``, ``.mutating_calls()``, ``.stop()``."""

    def __init__(self, upstream_url, client_tokens=False):
        parts = urllib.parse.urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.calls = []
        self.requests = []  # (service, action, form parameters) of form-encoded calls
        self.session_tokens = []  # the X-Amz-Security-Token header of each call (None without one)
        self.client_tokens = client_tokens
        self._tokens = {}  # (region, ClientToken) -> [threading.Event, (status, reason, headers, body) or None, parameters]
        self.token_repeats = []  # (token, outcome) of every repeated ClientToken: "replayed" or "mismatch"
        self._faults = {}
        self._holds = {}
        self._capacity = []  # [instance type, subnet or None, error code, instances it can still launch]: see no_capacity
        self._impaired = set()  # instance IDs whose status checks fail: see impair
        self._chaos = None  # (rate, seed, actions or None)
        self._chaos_counts = {}  # (service, action) -> calls seen, so each call's fate depends on the seed alone
        self.injected = []  # (service, action, status, code) of every fault answered
        self.on_call = None  # callable(service, action, params), run before a call is answered
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, action, times=1, status=None, code=None, match=None, lost=False):
        """Answer the next ``times`` calls of ``action`` (those whose parameters include ``match``) with an error.

        The default error is the service's throttling answer; ``status``/``code`` choose another.
        ``lost=True``: the call is carried out first and only its answer is lost (as in ``chaos``).
        """
        with self._lock:
            self._faults.setdefault(action, []).append([times, status, code, dict(match or {}), lost])

    def chaos(self, rate, seed, actions=None, lost=0.0, keep_answers=()):
        """Fail ``rate`` of all calls (of ``actions`` only, when given), chosen by ``seed``.

        The n-th call of an action fails or not by ``(seed, service, action, n)`` alone, so a run
        repeats its faults when the calls come in the same order per action. EC2 answers 503
        RequestLimitExceeded, S3 503 SlowDown, the others 400 Throttling; a fifth of the faults are
        500 InternalFailure. ``rate=0`` turns it off. ``lost`` is the share of the faults on mutating
        calls that AWS carried out before the error reached the caller (a lost answer): the retry
        then meets what the first call did. ``keep_answers``: actions never given a lost answer.
        """
        with self._lock:
            self._chaos = (float(rate), seed, set(actions) if actions else None, float(lost), set(keep_answers)) if rate else None
            self._chaos_counts.clear()

    def _chaos_fault(self, service, action):
        if self._chaos is None:
            return None
        rate, seed, actions, lost, keep_answers = self._chaos
        if actions is not None and action not in actions:
            return None
        n = self._chaos_counts[(service, action)] = self._chaos_counts.get((service, action), 0) + 1
        draw = random.Random(f"{seed}:{service}:{action}:{n}")
        if draw.random() >= rate:
            return None
        answer = _SERVER_ERROR if draw.random() < _SERVER_ERROR_SHARE else _ERRORS.get(service, (400, "Throttling"))
        after = draw.random() < lost and not READ_ONLY.search(action) and action not in keep_answers
        return (*answer, after)

    def clear(self):
        """Forget the calls seen so far (faults and ClientTokens stay)."""
        with self._lock:
            self.calls.clear()
            self.requests.clear()

    def mutating_calls(self):
        with self._lock:
            return [(service, action) for service, action in self.calls if not READ_ONLY.search(action)]

    def _fault(self, service, action, params):
        with self._lock:
            for fault in self._faults.get(action, []):
                if fault[0] > 0 and all(params.get(k) == v for k, v in fault[3].items()):
                    fault[0] -= 1
                    break
            else:
                answer = self._chaos_fault(service, action)
                if answer:
                    self.injected.append((service, action, *answer))
                return answer
            status, code = _ERRORS.get(service, (400, "Throttling"))
            answer = (fault[1] or status, fault[2] or code, fault[4])
            self.injected.append((service, action, *answer))
            return answer

    def no_capacity(self, instance_type, subnet_id=None, code="InsufficientInstanceCapacity", left=0):
        """From now on, instant fleets can launch at most ``left`` ``instance_type`` nodes (in ``subnet_id``, or in any
        subnet) per call, and report the rest of that pool as an ``Errors`` entry with ``code`` ("EC2 Fleet capacity")."""
        with self._lock:
            self._capacity.insert(0, [instance_type, subnet_id, code, left])

    def impair(self, instance_id):
        """From now on, DescribeInstanceStatus reports ``instance_id``'s instance status check as EC2 does when the
        instance stops answering (a hung kernel, exhausted memory): ``InstanceStatus.Status`` ``impaired`` with the
        ``reachability`` detail ``failed`` (moto always reports ``ok``)."""
        with self._lock:
            self._impaired.add(instance_id)

    def _with_impaired(self, data):
        """A DescribeInstanceStatus answer with the impaired instances' status checks rewritten (see ``impair``)."""
        with self._lock:
            impaired = set(self._impaired)
        if not impaired:
            return data
        text = data.decode()
        for instance_id in impaired:
            pattern = rf"(<instanceId>{re.escape(instance_id)}</instanceId>.*?)<instanceStatus>.*?</instanceStatus>"
            text = re.sub(pattern, lambda m: m.group(1) + _IMPAIRED_STATUS, text, count=1, flags=re.S)
        return text.encode()

    def capacity_back(self):
        """Every capacity pool has capacity again."""
        with self._lock:
            self._capacity.clear()

    def hold(self, action, seconds):
        """Forward each call of ``action`` only after ``seconds``: widens a race so tests can meet it.

        A held call can be let go earlier with ``release(action)`` (a test parks a call, kills its
        caller, then releases it: AWS got the request, the caller never saw the answer).
        """
        with self._lock:
            self._holds[action] = (seconds, threading.Event())

    def release(self, action):
        """Forward the held calls of ``action`` now, and stop holding it."""
        with self._lock:
            held = self._holds.pop(action, None)
        if held:
            held[1].set()

    def count(self, action, **match):
        """How many calls of ``action`` had (at least) these form parameters."""
        with self._lock:
            return sum(1 for _s, a, p in self.requests if a == action and all(p.get(k) == v for k, v in match.items()))

    def _replay(self, region, answer):
        """The first RunInstances answer again, each instance's state as the endpoint has it now (EC2: "the only
        information that might vary in the response is the state of the instance")."""
        status, reason, headers, data = answer
        namespace = re.search(rb'xmlns="([^"]+)"', data)
        ns = namespace.group(1).decode() if namespace else _EC2_NS
        ET.register_namespace("", ns)
        root = ET.fromstring(data)
        items = root.findall(f"{{{ns}}}instancesSet/{{{ns}}}item")
        ids = [item.findtext(f"{{{ns}}}instanceId") for item in items]
        states = {}
        if ids:
            import boto3  # noqa: PLC0415 - only a test run that repeats a token needs it

            ec2 = boto3.client(
                "ec2",
                region_name=region or "us-east-1",
                endpoint_url=f"http://{self.upstream[0]}:{self.upstream[1]}",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
                for instance in reservation["Instances"]:
                    states[instance["InstanceId"]] = instance["State"]
        for item, instance_id in zip(items, ids, strict=True):
            state = states.get(instance_id)
            node = item.find(f"{{{ns}}}instanceState")
            if state is None or node is None:
                continue
            node.find(f"{{{ns}}}code").text = str(state["Code"])
            node.find(f"{{{ns}}}name").text = state["Name"]
        return status, reason, headers, b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)

    def start(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall per call

            def log_message(self, *args):  # quiet
                pass

            def _relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                match = _SERVICE.search(self.headers.get("Authorization", ""))
                service = match.group(1) if match else "unknown"
                action = _action(service, self.command, self.path, self.headers, body)
                params = {}
                if "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
                    params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
                with proxy._lock:
                    proxy.calls.append((service, action))
                    proxy.requests.append((service, action, params))
                    proxy.session_tokens.append(self.headers.get("X-Amz-Security-Token"))
                    on_call = proxy.on_call
                if on_call:
                    on_call(service, action, params)
                fault = proxy._fault(service, action, params)
                if fault and not fault[2]:
                    self._error(service, *fault[:2])
                    return
                token = params.get("ClientToken") if proxy.client_tokens and action in _TOKEN_ACTIONS else None
                if token:
                    region = (_REGION.search(self.headers.get("Authorization", "")) or [None, None])[1]
                    key = (region, token)
                    compared = {k: v for k, v in params.items() if not _TOKEN_EXEMPT.match(k)}
                    while True:
                        with proxy._lock:
                            entry = proxy._tokens.get(key)
                            first = entry is None
                            if first:
                                entry = proxy._tokens[key] = [threading.Event(), None, compared]
                        if first:
                            break
                        entry[0].wait(120)
                        if entry[1] is not None:
                            break
                        # the first request with this token failed: it completed nothing, so the token is unused
                    if not first:
                        if entry[2] != compared:
                            proxy.token_repeats.append((token, "mismatch"))
                            self._error(service, 400, "IdempotentParameterMismatch", _MISMATCH)
                        elif fault:
                            self._error(service, *fault[:2])
                        else:
                            proxy.token_repeats.append((token, "replayed"))
                            self._answer(*(proxy._replay(region, entry[1]) if action == "RunInstances" else entry[1]))
                        return
                with proxy._lock:
                    held = proxy._holds.get(action)
                if held:
                    held[1].wait(held[0])
                extra = {}
                if action == "CreateFleet":
                    with proxy._lock:
                        extra["X-Harness-Capacity"] = json.dumps(proxy._capacity)
                answer = None
                try:
                    answer = self._forward(body, extra)
                finally:
                    if token:
                        if answer is not None and answer[0] == 200:
                            entry[1] = answer
                        else:
                            with proxy._lock:
                                if proxy._tokens.get(key) is entry:
                                    del proxy._tokens[key]
                        entry[0].set()
                if fault:  # the call went through; its answer is lost
                    self._error(service, *fault[:2])
                    return
                if action == "DescribeInstanceStatus" and answer[0] == 200:
                    answer = (*answer[:3], proxy._with_impaired(answer[3]))
                self._answer(*answer)

            def _error(self, service, status, code, message="injected"):
                error = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                # S3 (REST-XML) reads a bare <Error>; EC2 and the query services accept <Errors><Error>.
                payload = (error if service == "s3" else f"<Response><Errors>{error}</Errors></Response>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _forward(self, body, extra=None):
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                headers.update(extra or {})
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = (response.status, response.reason, response.getheaders(), response.read())
                connection.close()
                return answer

            def _answer(self, status, reason, headers, data):
                self.send_response(status, reason)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
