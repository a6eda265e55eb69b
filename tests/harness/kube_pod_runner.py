"""The scheduler, the kubelets and the job controller of the Kubernetes API stand-in's cluster (TESTS only): pods
that Toil's Kubernetes batch system creates are bound to a registered node they fit and their container command
runs, here, as a local process.

The real Toil (``.venv-toil``, ``--batchSystem kubernetes``) talks to the stand-in (harness.kube_api) as to a
cluster: it creates a Job per Toil job and reads their status. What runs each pod is this module:

- Scheduler (kube-scheduler's filters NodeResourcesFit, NodeUnschedulable, NodeAffinity, TaintToleration): a
  pending pod goes to a Ready node that is not cordoned, not a control-plane node (kubeadm taints them
  ``node-role.kubernetes.io/control-plane:NoSchedule`` and Toil's pods do not tolerate it), whose labels meet
  the pod's ``nodeSelector`` and required node affinity (operators In, NotIn, Exists, DoesNotExist), and whose
  allocatable cpu, memory, ephemeral-storage and pod count hold the pod's requests next to those of the
  pods already running there. No node fits: the pod stays Pending and Unschedulable (as the stand-in marks
  it), which is the demand the collection's scaler reads. The first fitting node by name is taken; scoring
  is not reproduced.
- Kubelet: the bound pod goes Running (Ready), its first container's ``command`` + ``args`` runs with the
  container's ``env`` as a process of this machine, its output becomes the pod's log, and the pod ends
  Succeeded or Failed with the container's ``terminated`` state and exit code, as the kubelet reports it.
  A pod of a node that is deleted, or a pod deleted while it runs, has its process killed.
  Not reproduced: images (the command runs with the Toil of ``.venv-toil`` on PATH instead of in the
  appliance), volumes (Toil's work directory is given as a local path with ``--workDir``), resource limits.
- Job controller (Toil's Jobs have ``backoffLimit: 0``): the Job's status gets ``active`` while its pod runs,
  then ``succeeded: 1``, ``completionTime`` and a Complete condition, or ``failed: 1`` and a Failed condition
  (reason BackoffLimitExceeded).

Only pods with a container ``command`` are run (Toil's always have one); Toil-shaped pods the tests make
(harness.kube_workloads) are left to the test. ``placements`` records where each pod ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "n": 1e-9, "u": 1e-6, "m": 1e-3,
            "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}  # fmt: skip
QUANTITY = re.compile(r"^([+-]?[0-9.]+)(e[+-]?[0-9]+|[EPTGMk]i?|[num]|Ki)?$")
RESOURCES = ("cpu", "memory", "ephemeral-storage")


def quantity(value: Any) -> float:
    """A Kubernetes resource quantity ("1", "500m", "2Gi", "2147483648", "1e3") as a number."""
    match = QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix.startswith("e"):
        return number * 10 ** int(suffix[1:])
    return number * SUFFIXES.get(suffix, 1)


def requests_of(pod: Mapping[str, Any]) -> dict[str, float]:
    total = dict.fromkeys(RESOURCES, 0.0)
    for container in pod["spec"].get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            if name in total:
                total[name] += quantity(value)
    return total


def _expression_holds(labels: Mapping[str, str], expression: Mapping[str, Any]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"node affinity operator {operator} is not reproduced by the pod runner")


def affinity_allows(pod: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    spec = pod["spec"]
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    # The terms are ORed, the expressions of a term ANDed.
    return not terms or any(all(_expression_holds(labels, e) for e in term.get("matchExpressions") or []) for term in terms)


def node_schedulable(node: Mapping[str, Any]) -> bool:
    labels = node["metadata"].get("labels") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in (node.get("status") or {}).get("conditions") or [])
    no_schedule = [t for t in node["spec"].get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
    return ready and not node["spec"].get("unschedulable") and CONTROL_PLANE not in labels and not no_schedule


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class PodRunner:
    """``with PodRunner(kube, path=[...]) as runner:`` schedules and runs the command pods of ``kube`` (a
    harness.kube_api.KubeApi) until the block ends; ``runner.placements`` is ``{pod name: node name}``."""

    def __init__(self, kube: Any, path: list[str | Path], namespace: str = "default", interval: float = 0.2) -> None:
        self.kube, self.namespace, self.interval = kube, namespace, interval
        self.path = os.pathsep.join([*(str(p) for p in path), os.environ.get("PATH", "")])
        self.placements: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> PodRunner:
        loop = threading.Thread(target=self._loop, name="pod-runner", daemon=True)
        loop.start()
        self._threads.append(loop)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
        for thread in list(self._threads):
            thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._schedule()
                self._kill_orphans()
            except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
                self.errors.append(f"{type(error).__name__}: {error}")
            self._stop.wait(self.interval)

    def _used(self, pods: list[dict[str, Any]], node: str) -> dict[str, float]:
        used = dict.fromkeys([*RESOURCES, "pods"], 0.0)
        for pod in pods:
            if pod["spec"].get("nodeName") == node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                for name, value in requests_of(pod).items():
                    used[name] += value
                used["pods"] += 1
        return used

    def _fits(self, pod: dict[str, Any], node: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
        if not node_schedulable(node) or not affinity_allows(pod, node["metadata"].get("labels") or {}):
            return False
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        used, wanted = self._used(pods, node["metadata"]["name"]), {**requests_of(pod), "pods": 1.0}
        return all(used[name] + value <= quantity(allocatable.get(name, "0")) for name, value in wanted.items() if value)

    def _schedule(self) -> None:
        pods = self.kube.objects("pods", self.namespace)
        nodes = sorted(self.kube.objects("nodes"), key=lambda n: n["metadata"]["name"])
        for pod in pods:
            containers = pod["spec"].get("containers") or []
            if pod["spec"].get("nodeName") or not containers or not containers[0].get("command"):
                continue
            node = next((n for n in nodes if self._fits(pod, n, pods)), None)
            if node is None:
                continue  # stays Pending and Unschedulable: demand for the scaler
            name, node_name = pod["metadata"]["name"], node["metadata"]["name"]
            self.kube.store.bind(self.namespace, name, {"target": {"kind": "Node", "name": node_name}})
            pod["spec"]["nodeName"] = node_name  # counted in this pass's fit of the next pods
            self.placements[name] = node_name
            thread = threading.Thread(target=self._run, args=(pod, node_name), name=f"kubelet-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _kill_orphans(self) -> None:
        """A pod deleted, or whose node is deleted, no longer runs (its kubelet is gone or told so)."""
        live_pods = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in self.kube.objects("pods", self.namespace)}
        live_nodes = {n["metadata"]["name"] for n in self.kube.objects("nodes")}
        with self._lock:
            for name, process in self.processes.items():
                if process.poll() is None and (name not in live_pods or live_pods[name] not in live_nodes):
                    process.kill()

    def _set_status(self, kind: str, name: str, change: Any) -> bool:
        current = self.kube.get(kind, name, namespace=self.namespace)
        if current is None:
            return False
        status = current.get("status") or {}
        change(status)
        self.kube.update_status(kind, name, status, namespace=self.namespace)
        return True

    def _run(self, pod: dict[str, Any], node: str) -> None:
        name, container = pod["metadata"]["name"], pod["spec"]["containers"][0]
        job = (pod["metadata"].get("labels") or {}).get("job-name")
        started = now()

        def running(status: dict[str, Any]) -> None:
            status.update(phase="Running", startTime=started)
            status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != "Ready"] + [{"type": "Ready", "status": "True"}]
            status["containerStatuses"] = [{"name": container["name"], "ready": True, "restartCount": 0, "image": container.get("image", ""),
                                            "imageID": "", "state": {"running": {"startedAt": started}}}]  # fmt: skip

        if not self._set_status("pods", name, running):
            return
        if job:
            self._set_status("jobs", job, lambda s: s.update(active=1, startTime=started))
        env = {"PATH": self.path, "HOME": os.environ.get("HOME", "/root"), **{e["name"]: e.get("value", "") for e in container.get("env") or []}}
        with self._lock:
            if self._stop.is_set():
                return
            process = subprocess.Popen([*container["command"], *(container.get("args") or [])], env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)  # fmt: skip
            self.processes[name] = process
        output = process.communicate()[0]
        code, finished = process.returncode, now()
        if code < 0:
            code = 128 - code  # killed by a signal: the container runtime reports 128 + the signal
        self.kube.set_log(name, output, namespace=self.namespace)

        def terminated(status: dict[str, Any]) -> None:
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != "Ready"] + [{"type": "Ready", "status": "False"}]
            state = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": started, "finishedAt": finished}
            status["containerStatuses"] = [{"name": container["name"], "ready": False, "restartCount": 0, "image": container.get("image", ""),
                                            "imageID": "", "state": {"terminated": state}}]  # fmt: skip

        if not self._set_status("pods", name, terminated) or not job:
            return

        def job_done(status: dict[str, Any]) -> None:
            status.pop("active", None)
            status.update({"succeeded": 1, "completionTime": finished} if code == 0 else {"failed": 1})
            kind, reason = ("Complete", None) if code == 0 else ("Failed", "BackoffLimitExceeded")
            status["conditions"] = [{"type": kind, "status": "True", "lastTransitionTime": finished, **({"reason": reason} if reason else {})}]

        self._set_status("jobs", job, job_done)
