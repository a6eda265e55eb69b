"""The kubernetes role's spot interruption handler (roles/kubernetes/files/toil_interruption_handler.py), driven
against the IMDS stand-in (harness.imds) and the Kubernetes API stand-in (harness.kube_api) over real HTTP(S), with
a client certificate of the cluster CA in the handler's RBAC group: what it may do is what the role's ClusterRole
grants. Time is the test's (a fake clock and sleep): no test waits."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Generator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from harness import kube_api
from harness.imds import Imds
from harness.paths import REPO

ROLE = REPO / "roles" / "kubernetes"
NODE = "ip-10-0-0-7.us-west-2.compute.internal"


def load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("toil_interruption_handler", ROLE / "files" / "toil_interruption_handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


handler = load_handler()


class Clock:
    """Wall time that moves only when the handler sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep = lambda: None

    def wall(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()


@pytest.fixture
def lab(tmp_path: Path) -> Generator[tuple[kube_api.KubeApi, Imds, dict], None, None]:
    certs = tmp_path / "pki"
    ca, _cert, _key = kube_api.make_certificates(str(certs))
    crt, key = kube_api.sign_client_certificate(str(certs), "toil.cluster:interruption-handler", kube_api.INTERRUPTION_HANDLERS)
    with kube_api.KubeApi(cert_dir=str(certs), client_ca=ca, mark_unschedulable=False) as api, Imds() as imds:
        api.add_node(NODE, taints=[{"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"}])
        config = {"node": NODE, "server": api.url, "ca": ca, "cert": str(crt), "key": str(key), "poll_seconds": 1, "retry_seconds": 2}
        yield api, imds, config


def new_handler(config: dict, imds: Imds, clock: Clock, **overrides: object) -> handler.Handler:
    path = Path(config["ca"]).parent / "config.json"
    path.write_text(json.dumps({**config, **overrides}))
    checked = handler.load_config(str(path))
    return handler.Handler(checked, handler.Imds(imds.url), handler.Kube(checked), sleep=clock.sleep, wall=clock.wall)


def pod_names(api: kube_api.KubeApi) -> set[str]:
    return {p["metadata"]["name"] for p in api.objects("pods")}


def test_nothing_announced_changes_nothing(lab: tuple) -> None:
    api, imds, config = lab
    before = api.get("nodes", NODE)
    assert new_handler(config, imds, Clock(1e9)).poll() is None
    assert api.get("nodes", NODE) == before
    assert [c for c in api.calls() if not c.startswith("GET")] == []


def test_an_interruption_cordons_taints_and_evicts_waiting_for_a_budget(lab: tuple) -> None:
    api, imds, config = lab
    api.add_pod("web-1", node=NODE, phase="Running", owner="ReplicaSet/web", labels={"app": "web"})
    api.add_pod("toil-job-1", node=NODE, phase="Running", owner="Job/toil-job-1", annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"})
    api.add_pod("db-0", node=NODE, phase="Running", owner="StatefulSet/db", labels={"app": "db"})
    api.add_pod("fluentd-x", node=NODE, phase="Running", owner="DaemonSet/fluentd")
    api.add_pod("done", node=NODE, phase="Succeeded", owner="Job/done")
    api.add_pod("elsewhere", node="other-node", phase="Running", owner="ReplicaSet/web")
    api.create("poddisruptionbudgets", {"metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    moment = imds.announce("terminate", seconds=120)
    clock = Clock(handler.parse_time(moment) - 120)
    evictions_of_db = []

    def budget_released_after_two_refusals() -> None:
        evictions_of_db.append(sum(c.endswith("/pods/db-0/eviction") for c in api.calls()))
        assert "db-0" in pod_names(api)  # refused, never deleted past its budget
        if len(evictions_of_db) == 2:
            api.delete("poddisruptionbudgets", "db")

    clock.on_sleep = budget_released_after_two_refusals
    notice = new_handler(config, imds, clock).poll()

    assert notice == handler.Notice("spot-itn", "terminate", handler.parse_time(moment))
    node = api.get("nodes", NODE)
    assert node["spec"]["unschedulable"] is True
    assert node["spec"]["taints"] == [
        {"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"},  # another's taint is kept
        {"key": "aws-node-termination-handler/spot-itn", "value": str(handler.parse_time(moment)), "effect": "NoSchedule"},
    ]
    assert pod_names(api) == {"fluentd-x", "done", "elsewhere"}  # DaemonSet and finished pods go with the node
    assert evictions_of_db == [1, 2] and clock.sleeps == [2.0, 2.0]
    assert any(c == "POST /api/v1/namespaces/default/pods/toil-job-1/eviction" for c in api.calls())
    assert not any(c.startswith("DELETE") for c in api.calls())  # only the Eviction API


def test_a_budget_that_never_allows_leaves_the_pod_at_the_notices_time(lab: tuple) -> None:
    api, imds, config = lab
    api.add_pod("db-0", node=NODE, phase="Running", owner="StatefulSet/db", labels={"app": "db"})
    api.create("poddisruptionbudgets", {"metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    moment = imds.announce("stop", seconds=10)
    clock = Clock(handler.parse_time(moment) - 10)
    handler_ = new_handler(config, imds, clock)
    assert handler_.poll().action == "stop"
    assert "db-0" in pod_names(api) and clock.now >= handler.parse_time(moment)
    assert len(clock.sleeps) == 5  # retried every 2 s until the stop
    calls = len(api.calls())
    handler_.poll()  # the same notice again: acted on once
    assert [c for c in api.calls()[calls:] if "eviction" in c or c.startswith("PATCH")] == []


@pytest.mark.parametrize("drain_on_rebalance", [False, True])
def test_a_rebalance_recommendation_does_what_the_setting_says(lab: tuple, drain_on_rebalance: bool) -> None:
    api, imds, config = lab
    api.add_pod("web-1", node=NODE, phase="Running", owner="ReplicaSet/web")
    imds.recommend_rebalance()
    before = api.get("nodes", NODE)
    notice = new_handler(config, imds, Clock(1e9), drain_on_rebalance=drain_on_rebalance).poll()
    assert notice.kind == "rebalance"
    node = api.get("nodes", NODE)
    if drain_on_rebalance:
        assert node["spec"]["unschedulable"] is True
        assert [t["key"] for t in node["spec"]["taints"]] == ["example.com/gpu", "aws-node-termination-handler/rebalance-recommendation"]
        assert "web-1" not in pod_names(api)
    else:
        assert node == before and "web-1" in pod_names(api)


def test_an_interruption_after_a_recommendation_is_acted_on_too(lab: tuple) -> None:
    api, imds, config = lab
    imds.recommend_rebalance()
    handler_ = new_handler(config, imds, Clock(1e9), drain_on_rebalance=True)
    handler_.poll()
    imds.announce()
    assert handler_.poll().kind == "spot-itn"
    keys = [t["key"] for t in api.get("nodes", NODE)["spec"]["taints"]]
    assert keys == ["example.com/gpu", "aws-node-termination-handler/rebalance-recommendation", "aws-node-termination-handler/spot-itn"]


def test_an_api_error_during_the_drain_has_the_next_poll_drain_again(lab: tuple) -> None:
    api, imds, config = lab
    api.add_pod("web-1", node=NODE, phase="Running", owner="ReplicaSet/web")
    imds.announce()
    handler_ = new_handler(config, imds, Clock(1e9))
    real_call, failures = handler_.kube.call, []

    def first_eviction_fails(method: str, path: str, *args: object) -> object:
        if path.endswith("/eviction") and not failures:
            failures.append(path)
            raise handler.ApiError(503, "the API server is restarting")
        return real_call(method, path, *args)

    handler_.kube.call = first_eviction_fails
    with pytest.raises(handler.ApiError):
        handler_.poll()
    assert "web-1" in pod_names(api)
    handler_.poll()
    assert "web-1" not in pod_names(api) and failures


def test_an_expired_session_gets_a_new_token(lab: tuple) -> None:
    _api, imds, config = lab
    handler_ = new_handler(config, imds, Clock(1e9))
    handler_.poll()
    imds.expire_tokens()
    imds.announce()
    assert handler_.poll().kind == "spot-itn"
    puts = [r for r in imds.requests if r.startswith("PUT")]
    assert puts == ["PUT /latest/api/token 200"] * 2
    assert "GET /latest/meta-data/spot/instance-action 401" in imds.requests


@pytest.mark.parametrize(
    "body",
    ['{"action": "terminate", "time": "soon\\n--evil"}', '{"action": "reboot", "time": "2026-01-01T00:00:00Z"}', "<html>", '["terminate"]'],
)
def test_a_notice_not_understood_is_a_termination_now_and_nothing_of_it_reaches_the_api(lab: tuple, body: str) -> None:
    api, imds, config = lab
    imds.set_document("/latest/meta-data/spot/instance-action", body)
    clock = Clock(1_900_000_000)
    notice = new_handler(config, imds, clock).poll()
    assert notice == handler.Notice("spot-itn", "terminate", 1_900_000_000 + 120)
    assert api.get("nodes", NODE)["spec"]["taints"][-1]["value"] == "1900000120"


def test_its_certificate_may_do_only_what_its_cluster_role_grants(lab: tuple) -> None:
    api, _imds, config = lab
    api.add_pod("web-1", node=NODE, phase="Running", owner="ReplicaSet/web")
    kube = handler.Kube(config)
    for method, path in [
        ("DELETE", "/api/v1/namespaces/default/pods/web-1"),
        ("GET", "/api/v1/namespaces/kube-system/secrets"),
        ("DELETE", f"/api/v1/nodes/{NODE}"),
        ("PATCH", "/api/v1/namespaces/default/pods/web-1"),
    ]:
        with pytest.raises(handler.ApiError) as refused:
            kube.call(method, path, {} if method == "PATCH" else None, "application/merge-patch+json")
        assert refused.value.status == 403, (method, path)
    assert "web-1" in pod_names(api)


def test_the_stand_ins_rules_are_the_roles_cluster_role() -> None:
    documents = list(yaml.safe_load_all((ROLE / "templates" / "interruption-handler-rbac.yml.j2").read_text()))
    role = next(d for d in documents if d["kind"] == "ClusterRole")
    binding = next(d for d in documents if d["kind"] == "ClusterRoleBinding")
    rules = {(tuple(r["verbs"]), group, resource) for r in role["rules"] for group in r["apiGroups"] for resource in r["resources"]}
    assert rules == set(kube_api.INTERRUPTION_HANDLER_RULES)
    assert binding["subjects"] == [{"kind": "Group", "name": kube_api.INTERRUPTION_HANDLERS, "apiGroup": "rbac.authorization.k8s.io"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"node": "node\n--kubeconfig=/x"}, "node must be a Node name"),
        ({"node": "../etc"}, "node must be a Node name"),
        ({"server": "http://10.0.0.1:6443"}, "server must be"),
        ({"server": "https://10.0.0.1:6443/api?x=1"}, "server must be"),
        ({"server": "https://10.0.0.1:6443n"}, "server must be"),
        ({"server": "https://user@10.0.0.1:6443"}, "server must be"),
        ({"ca": "relative/ca.crt"}, "ca must be an absolute path"),
        ({"poll_seconds": 0}, "poll_seconds must be"),
        ({"drain_on_rebalance": "yes"}, "drain_on_rebalance must be"),
    ],
)
def test_bad_configuration_stops_with_a_message_before_any_request(tmp_path: Path, capsys: pytest.CaptureFixture, change: dict, message: str) -> None:
    config = {"node": NODE, "server": "https://10.0.0.1:6443", "ca": "/etc/ca.crt", "cert": "/etc/c.crt", "key": "/etc/c.key", **change}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(handler.ConfigError, match=message):
        handler.load_config(str(tmp_path / "config.json"))
    assert handler.main(["--config", str(tmp_path / "config.json")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("endpoint", ["file:///etc/passwd", "http://169.254.169.254/latest?x", "169.254.169.254", "http://169.254.169.254:80n"])
def test_a_bad_metadata_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(handler.ConfigError, match="AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        handler.metadata_endpoint({"AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint})
    assert handler.metadata_endpoint({}) == "http://169.254.169.254"
