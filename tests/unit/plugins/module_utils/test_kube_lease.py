"""One scaler at a time (issue 17): the scaler's coordination.k8s.io/v1 Lease, and the state file's lock.

``FakeLeases`` answers as the API server does for Leases: read (404 when absent), create (409 AlreadyExists),
replace (409 Conflict when the body's resourceVersion is not the current one; every write bumps it), returning
the kubernetes client's V1Lease models.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_lease import FileLock, KubeLease, LeaseHeldError, LeaseLostError, micro_time

API = client.ApiClient()
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class FakeLeases:
    def __init__(self):
        self.objects = {}
        self.version = 100
        self.writes = []
        self.lock = threading.Lock()

    def _model(self, body):
        return API.deserialize(SimpleNamespace(data=json.dumps(body)), "V1Lease")

    def read_namespaced_lease(self, name, namespace):
        with self.lock:
            if (namespace, name) not in self.objects:
                raise ApiException(status=404, reason="Not Found")
            return self._model(self.objects[(namespace, name)])

    def _store(self, namespace, name, body):
        self.version += 1
        body = json.loads(json.dumps(body))
        body["metadata"]["resourceVersion"] = str(self.version)
        self.objects[(namespace, name)] = body
        self.writes.append(body)
        return self._model(body)

    def create_namespaced_lease(self, namespace, body):
        with self.lock:
            name = body["metadata"]["name"]
            if (namespace, name) in self.objects:
                raise ApiException(status=409, reason="AlreadyExists")
            return self._store(namespace, name, body)

    def replace_namespaced_lease(self, name, namespace, body):
        with self.lock:
            current = self.objects.get((namespace, name))
            if current is None:
                raise ApiException(status=404, reason="Not Found")
            wanted = body["metadata"].get("resourceVersion")
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise ApiException(status=409, reason="Conflict")
            return self._store(namespace, name, body)

    def spec(self, name="toil-scaler-c1"):
        return self.objects[("kube-system", name)]["spec"]


def held_by(api, holder, renewed, duration=60, transitions=3):
    api.create_namespaced_lease(
        "kube-system",
        {
            "metadata": {"name": "toil-scaler-c1", "namespace": "kube-system"},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": duration,
                "acquireTime": micro_time(renewed),
                "renewTime": micro_time(renewed),
                "leaseTransitions": transitions,
            },
        },
    )


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


def lease(api, clock=None, wall=NOW, **kwargs):
    clock = clock or Clock()
    kwargs.setdefault("wait", 0)
    return KubeLease(
        api, "c1", identity=kwargs.pop("identity", "me_1"), clock=clock, now=lambda: wall + timedelta(seconds=clock() - 1000), sleep=clock.sleep, **kwargs
    )


def test_first_run_creates_the_lease_then_releases_it_as_client_go_does():
    api = FakeLeases()
    held = lease(api).acquire()
    spec = api.spec()
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == ("me_1", 60, 0)
    assert spec["acquireTime"] == spec["renewTime"] == "2026-01-05T12:00:00.000000Z"
    held.still_held()
    held.release()
    spec = api.spec()
    assert "holderIdentity" not in spec and spec["leaseDurationSeconds"] == 1


def test_a_held_lease_stops_the_run_naming_the_holder_and_writing_nothing():
    api = FakeLeases()
    held_by(api, "leader-host_2b7f", NOW - timedelta(seconds=10))
    writes = len(api.writes)
    with pytest.raises(LeaseHeldError, match=r"held by leader-host_2b7f .*waited 0 s and changed nothing"):
        lease(api).acquire()
    assert len(api.writes) == writes


def test_an_expired_lease_is_taken_over_with_one_more_transition():
    api = FakeLeases()
    held_by(api, "crashed_1", NOW - timedelta(seconds=61))
    lease(api).acquire()
    assert (api.spec()["holderIdentity"], api.spec()["leaseTransitions"]) == ("me_1", 4)


def test_a_released_lease_is_taken_at_once():
    api = FakeLeases()
    held_by(api, "", NOW, duration=1)
    lease(api).acquire()
    assert api.spec()["holderIdentity"] == "me_1"


def test_a_waiting_run_takes_the_lease_when_its_holder_releases_it():
    api = FakeLeases()
    first = lease(api, identity="first_1").acquire()
    clock = Clock()
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == 2:
            first.release()
        clock.sleep(seconds)

    second = KubeLease(api, "c1", identity="second_1", wait=30, clock=clock, now=lambda: NOW, sleep=sleep)
    second.acquire()
    assert api.spec()["holderIdentity"] == "second_1" and len(calls) == 2
    second.release()


def test_a_record_unchanged_for_its_duration_while_watched_is_expired_even_if_its_clock_says_otherwise():
    """client-go's rule (observedTime): a holder whose clock runs ahead cannot block forever."""
    api = FakeLeases()
    held_by(api, "skewed_1", NOW + timedelta(minutes=30), duration=15)
    clock = Clock()
    taken = lease(api, clock=clock, wait=20)
    taken.acquire()
    assert api.spec()["holderIdentity"] == "me_1"
    assert clock() - 1000 >= 15


def test_two_runs_at_the_same_moment_exactly_one_acquires():
    api = FakeLeases()
    barrier = threading.Barrier(2)
    outcome = {}

    def attempt(name):
        run = KubeLease(api, "c1", identity=name, wait=0)
        barrier.wait()
        try:
            run.acquire()
            outcome[name] = "acquired"
        except LeaseHeldError as error:
            outcome[name] = str(error)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in ("a_1", "b_1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v == "acquired" for v in outcome.values()) == [False, True]
    winner = next(k for k, v in outcome.items() if v == "acquired")
    loser = next(k for k in outcome if k != winner)
    assert winner in outcome[loser] or "a run that just took it" in outcome[loser]


def test_a_lease_taken_over_while_running_stops_the_run():
    api = FakeLeases()
    held = lease(api, duration=15)
    held.acquire()
    held._stop.set()  # no background renewals in this test
    # Another run takes it (say our process was paused past the duration).
    body = json.loads(json.dumps(api.objects[("kube-system", "toil-scaler-c1")]))
    body["spec"]["holderIdentity"] = "thief_1"
    api.replace_namespaced_lease("toil-scaler-c1", "kube-system", body)
    held.renew()
    with pytest.raises(LeaseLostError, match="taken over by another run"):
        held.still_held()


def test_a_lease_not_renewed_within_two_thirds_of_its_duration_is_lost():
    api = FakeLeases()
    clock = Clock()
    held = lease(api, clock=clock, duration=15)
    held.acquire()
    held._stop.set()
    clock.sleep(11)
    with pytest.raises(LeaseLostError, match="not renewed"):
        held.still_held()


def test_renewals_move_renew_time_on():
    api = FakeLeases()
    clock = Clock()
    held = lease(api, clock=clock, duration=15)
    held.acquire()
    held._stop.set()
    clock.sleep(5)
    held.renew()
    assert api.spec()["renewTime"] == "2026-01-05T12:00:05.000000Z"
    assert api.spec()["acquireTime"] == "2026-01-05T12:00:00.000000Z"
    held.still_held()


def test_the_state_files_lock_without_kubernetes(tmp_path):
    state = str(tmp_path / "state.json")
    with FileLock(state, wait=0), pytest.raises(ToilInputError, match=r"Another toil_scaler run holds .*state.json.lock \(.*pid \d+\)"):
        FileLock(state, wait=0).acquire()
    with FileLock(state, wait=0):  # released
        pass
