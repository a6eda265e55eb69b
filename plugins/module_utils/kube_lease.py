# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""One scaler at a time: a ``coordination.k8s.io/v1`` Lease, taken as client-go's leader election takes it.

client-go (k8s.io/client-go/tools/leaderelection, ``tryAcquireOrRenew`` with a ``LeaseLock``): get the Lease;
none: create it with ``holderIdentity`` = us, ``leaseDurationSeconds``, ``acquireTime`` = ``renewTime`` = now;
held by someone else and still valid: do nothing, try again later; else update it (a PUT carrying the
resourceVersion read, so a concurrent update loses with 409 Conflict) with us as holder, ``leaseTransitions``
+1 when the holder changes. The holder renews ``renewTime`` well within the duration and, on release, writes
the Lease with no holder and ``leaseDurationSeconds`` 1. client-go times a Lease from when *it* saw the record
change (``observedTime``), which only works for a process that keeps watching; a scaler run lives a minute, so
here a Lease is also expired when its ``renewTime`` + ``leaseDurationSeconds`` is past on this machine's clock
(the schedulers' clocks must agree within seconds: NTP). While waiting, client-go's rule applies too: a record
that did not change for ``leaseDurationSeconds`` is expired.

Without Kubernetes (``demand`` given), :class:`FileLock` is the same promise on one machine: an exclusive
``flock`` on ``<state_path>.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_client import ApiException, KubeError, Urllib3HTTPError, api_message, k8s_client

LEASE_NAMESPACE = "kube-system"
POLL_SECONDS = 2.0  # client-go's RetryPeriod in cluster-autoscaler


class LeaseHeldError(KubeError):
    """Another run holds the Lease (its holder named in the message)."""


class LeaseLostError(KubeError):
    """This run's Lease was taken over or could not be renewed in time: it must stop changing things."""


def lease_name(cluster):
    return f"toil-scaler-{cluster}"


def holder_identity():
    """Unique per run, as client-go's callers make it: host name, then a random UUID."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time(moment):
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_datetime(value):
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _spec(lease):
    spec = lease.spec
    return {
        "holder": getattr(spec, "holder_identity", None) or "",
        "duration": getattr(spec, "lease_duration_seconds", None) or 0,
        "acquired": _as_datetime(getattr(spec, "acquire_time", None)),
        "renewed": _as_datetime(getattr(spec, "renew_time", None)),
        "transitions": getattr(spec, "lease_transitions", None) or 0,
    }


class KubeLease:
    """The scaler's Lease for one run: ``acquire`` (waiting up to ``wait`` seconds), ``still_held``, ``release``.

    A daemon thread renews it every third of ``duration`` (client-go renews every RetryPeriod and gives up after
    RenewDeadline, two thirds of the duration); once a renewal is refused or the deadline passes, the Lease is
    lost and ``still_held`` raises.
    """

    def __init__(
        self, coordination_v1, cluster, duration=60, wait=30, identity=None, namespace=LEASE_NAMESPACE, clock=time.monotonic, now=None, sleep=time.sleep
    ):
        self.api = coordination_v1
        self.name = lease_name(cluster)
        self.namespace = namespace
        self.duration = int(duration)
        self.wait = wait
        self.identity = identity or holder_identity()
        self.clock = clock
        self.now = now or (lambda: datetime.now(UTC))
        self.sleep = sleep
        self.version = None  # resourceVersion of our last write
        self.acquired_at = None
        self.transitions = 0
        self.lost = None  # why the Lease was lost
        self.held = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.last_renewal = None

    # ------------------------------------------------------------------ the record
    def _body(self, holder, duration, acquired, renewed, transitions, version=None):
        metadata = {"name": self.name, "namespace": self.namespace}
        if version:
            metadata["resourceVersion"] = version
        spec = {"leaseDurationSeconds": duration, "acquireTime": micro_time(acquired), "renewTime": micro_time(renewed), "leaseTransitions": transitions}
        if holder:
            spec["holderIdentity"] = holder
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def _try_once(self, observed):
        """One tryAcquireOrRenew. Returns None when acquired, else the holder's record (a dict)."""
        now = self.now()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            try:
                created = self.api.create_namespaced_lease(self.namespace, self._body(self.identity, self.duration, now, now, 0))
            except ApiException as create_error:
                if create_error.status == 409:  # another run created it first: its record names it
                    return self._winner({"holder": "", "duration": 0, "renewed": None, "version": None})
                raise
            self._held(created, now, 0)
            return None
        record = _spec(lease)
        record["version"] = lease.metadata.resource_version
        if record["version"] != observed.get("version"):
            observed.update(version=record["version"], since=self.clock())
        if record["holder"] and record["holder"] != self.identity and self._valid(record, observed, now):
            return record
        transitions = record["transitions"] + (0 if record["holder"] == self.identity else 1)
        body = self._body(self.identity, self.duration, now, now, transitions, record["version"])
        try:
            replaced = self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as error:
            if error.status == 409:  # someone else wrote it since we read it: its record names it
                return self._winner(record)
            raise
        self._held(replaced, now, transitions)
        return None

    def _winner(self, fallback):
        """The record of the run whose write beat ours (read again), so a refusal can name it."""
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException:
            return fallback
        record = _spec(lease)
        record["version"] = lease.metadata.resource_version
        return record

    def _valid(self, record, observed, now):
        """Still held: renewed within its duration by the clock, and (client-go) not unchanged for that long while watched."""
        duration = timedelta(seconds=record["duration"] or 0)
        by_clock = record["renewed"] is not None and record["renewed"] + duration > now
        by_watch = self.clock() - observed["since"] < duration.total_seconds()
        return by_clock and by_watch

    def _held(self, lease, now, transitions):
        self.version = lease.metadata.resource_version
        self.acquired_at = now
        self.transitions = transitions
        self.held = True
        self.last_renewal = self.clock()

    # ------------------------------------------------------------------ the run's use
    def acquire(self):
        """Take the Lease, waiting up to ``wait`` seconds for its holder; raises LeaseHeldError naming the holder."""
        deadline = self.clock() + self.wait
        observed = {}
        try:
            while True:
                record = self._try_once(observed)
                if record is None:
                    break
                if self.clock() >= deadline:
                    renewed = record["renewed"].isoformat() if record.get("renewed") else "never"
                    raise LeaseHeldError(
                        f"Another toil_scaler run is scaling this cluster: Lease {self.namespace}/{self.name} is held by "
                        f"{record['holder'] or 'a run that just took it'} (renewed {renewed}, for {record['duration']} s); "
                        f"this run waited {self.wait} s and changed nothing. Raise lease_wait to wait longer."
                    )
                self.sleep(min(POLL_SECONDS, max(deadline - self.clock(), 0.01)))
        except ApiException as error:
            raise KubeError(f"The Kubernetes API refused the scaler's Lease {self.namespace}/{self.name}: {api_message(error)}") from None
        except Urllib3HTTPError as error:
            raise KubeError(f"Cannot reach the Kubernetes API for the scaler's Lease: {error}") from None
        self._thread = threading.Thread(target=self._renew_loop, name="toil-scaler-lease", daemon=True)
        self._thread.start()
        return self

    def renew(self):
        """One renewal: our record with a new renewTime, on our resourceVersion (a 409 means someone took it)."""
        now = self.now()
        body = self._body(self.identity, self.duration, self.acquired_at, now, self.transitions, self.version)
        with self._lock:
            if self.lost or not self.held:
                return
            try:
                lease = self.api.replace_namespaced_lease(self.name, self.namespace, body)
            except ApiException as error:
                if error.status == 409:
                    self.lost = f"Lease {self.namespace}/{self.name} was taken over by another run"
                elif self.clock() - self.last_renewal > self.duration * 2 / 3:
                    self.lost = f"Lease {self.namespace}/{self.name} could not be renewed: {api_message(error)}"
                return
            except Urllib3HTTPError as error:
                if self.clock() - self.last_renewal > self.duration * 2 / 3:
                    self.lost = f"Lease {self.namespace}/{self.name} could not be renewed: {error}"
                return
            self.version = lease.metadata.resource_version
            self.last_renewal = self.clock()

    def _renew_loop(self):
        while not self._stop.wait(max(self.duration / 3, 0.2)):
            self.renew()
            if self.lost:
                return

    def still_held(self):
        """Raise LeaseLostError when this run may no longer change anything."""
        if self.lost is None and self.held and self.clock() - self.last_renewal > self.duration * 2 / 3:
            self.lost = f"Lease {self.namespace}/{self.name} was not renewed for {self.duration * 2 // 3} s"
        if self.lost:
            raise LeaseLostError(f"{self.lost}: this run stopped before its next change.")

    def release(self):
        """Give the Lease up as client-go does (no holder, leaseDurationSeconds 1), so the next run need not wait."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            if not self.held or self.lost:
                return
            self.held = False
            now = self.now()
            with contextlib.suppress(ApiException, Urllib3HTTPError):  # else it expires by itself
                self.api.replace_namespaced_lease(self.name, self.namespace, self._body(None, 1, now, now, self.transitions, self.version))

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def coordination_client(core_v1):
    """CoordinationV1Api on the same connection as ``core_v1``."""
    return k8s_client.CoordinationV1Api(core_v1.api_client)


class FileLock:
    """Without Kubernetes: an exclusive flock on ``<state_path>.lock``, waiting up to ``wait`` seconds.

    It keeps two runs on the same machine (the same state file) apart; runs on different machines with
    explicit demand share nothing to lock.
    """

    def __init__(self, state_path, wait=30, clock=time.monotonic, sleep=time.sleep):
        self.path = f"{state_path}.lock"
        self.wait = wait
        self.clock = clock
        self.sleep = sleep
        self.handle = None

    def acquire(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self.handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        deadline = self.clock() + self.wait
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self.clock() >= deadline:
                    self.handle.seek(0)
                    holder = self.handle.read().strip() or "another process"
                    self.handle.close()
                    self.handle = None
                    raise ToilInputError(
                        f"Another toil_scaler run holds {self.path} ({holder}); this run waited {self.wait} s and changed nothing. "
                        "Raise lease_wait to wait longer."
                    ) from None
                self.sleep(min(POLL_SECONDS, max(deadline - self.clock(), 0.01)))
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{holder_identity()} pid {os.getpid()}\n")
        self.handle.flush()
        return self

    def still_held(self):
        return None

    def release(self):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
