"""The demo's direct AWS calls (plain boto3 at AWS_ENDPOINT_URL): what a user has before using the collection,
and the final proof.

    python tools/demo/aws.py key-pair import NAME PUBLIC_KEY_FILE   # the EC2 key pair (launch-cluster's --keyPairName)
    python tools/demo/aws.py key-pair delete NAME
    python tools/demo/aws.py jobstore make NAME [s3|sdb]   # a job store shaped like Toil's, with a few items
    python tools/demo/aws.py jobstore unregister           # delete the toil-registry domain `make NAME sdb` made
    python tools/demo/aws.py demand DEMAND_FILE INVENTORY_JSON   # the demand's pods, plus the workers as nodes
    python tools/demo/aws.py leaks [REGION ...]            # harness.leaks, key pairs and IAM users included
Several commands may follow each other in one call (leaks last).

Job store layouts (toil_jobstore handles both), made by harness.jobstores (tests/harness/jobstores.py), as the
tests make them:
  s3   Toil 9.1 and later (the default): one bucket ``<name>--toil``. The demo's is a workflow that failed: its
       config, environment, root job return value, the jobs left over, two files and ``failed.log``.
  sdb  Toil 9.0 and older: the ``<name>--jobs`` and ``<name>--files`` SimpleDB domains (two jobs, three files), the
       versioned bucket ``<name>--files`` (each file written twice) and the ``<name>`` entry in the region's
       ``toil-registry``, set last. ``toil-registry`` is shared by a region's stores, so toil_jobstore removes only
       the entry; moto lacks SimpleDB DeleteAttributes, so on the embedded endpoint the entry stays marked
       exists=False, with a warning about moto's error. The demo uses s3 (Toil 9.6's layout) unless
       DEMO_JOBSTORE_LAYOUT=sdb.

This script imports the test harness (``harness``): tools/demo.sh runs it with PYTHONPATH=tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
import yaml

from harness.jobstores import REGISTRY, failed_run, make_job_store
from harness.leaks import FIXTURE_KINDS, KINDS, format_leftovers, leftover_resources

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2"
NODE_STORAGE = "50Gi"  # launch_cluster's node_storage (the root volume), which the demo keeps


def import_key_pair(name: str, public_key_file: str) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    fingerprint = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=Path(public_key_file).read_bytes())["KeyFingerprint"]
    print(f"imported key pair {name} ({fingerprint})")


def delete_key_pair(name: str) -> None:
    boto3.client("ec2", region_name=REGION).delete_key_pair(KeyName=name)
    print(f"deleted key pair {name}")


def make_store(name: str, layout: str) -> None:
    store = make_job_store(boto3.session.Session(), name, layout=layout, region=REGION, objects=failed_run() if layout == "s3" else None)
    if layout == "s3":
        summary = f"bucket {store.bucket}, {store.objects} objects ({store.bytes} bytes), {store.jobs} jobs left, failed.log"
        print(f"made job store {store.locator} (Toil 9.6 layout): {summary}")
    else:
        jobs_domain, files_domain, registry = store.domains
        print(
            f"made job store {store.locator} (Toil 9.0 layout): SimpleDB domains {jobs_domain}, {files_domain} ({store.jobs} jobs, "
            f"{store.objects} files), its entry in {registry}, versioned bucket {store.bucket} ({store.versions} versions, {store.bytes} bytes)"
        )


def unregister() -> None:
    boto3.client("sdb", region_name=REGION).delete_domain(DomainName=REGISTRY)
    print(f"deleted the {REGISTRY} domain the demo made (a region's Toil 9.0 stores share it, so toil_jobstore keeps it)")


def _plain(value):
    """ansible-inventory --list (ansible-core 2.19) writes strings from a plugin as {"__ansible_unsafe": "..."}."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def demand(demand_file: str, inventory_json: str) -> None:
    """The sample pods, and the cluster's workers as Kubernetes would list them (``ansible-inventory --list`` of a
    toil_ec2 source): allocatable = the instance type's vCPUs and memory and the root volume, nothing requested yet,
    just joined."""
    wanted = yaml.safe_load(Path(demand_file).read_text())["demand"]
    hostvars = _plain(yaml.safe_load(Path(inventory_json).read_text()))["_meta"]["hostvars"]
    workers = sorted((v for v in hostvars.values() if v["toil_node_type"] == "worker"), key=lambda v: v["toil_instance_id"])
    types = {v["toil_instance_type"] for v in workers}
    shapes = {}
    if types:
        for item in boto3.client("ec2", region_name=REGION).describe_instance_types(InstanceTypes=sorted(types))["InstanceTypes"]:
            shapes[item["InstanceType"]] = {
                "cpu": str(item["VCpuInfo"]["DefaultVCpus"]),
                "memory": f"{item['MemoryInfo']['SizeInMiB']}Mi",
                "ephemeral_storage": NODE_STORAGE,
            }
    nodes = [
        {"instance_id": v["toil_instance_id"], "pool": v["toil_pool"], "allocatable": shapes[v["toil_instance_type"]], "requested": {}, "idle_seconds": 0}
        for v in workers
    ]
    print(yaml.safe_dump({"demand": {"pods": wanted["pods"], "nodes": nodes}}, sort_keys=False, default_flow_style=None, width=120), end="")


def leaks(regions: list[str]) -> int:
    regions = regions or [REGION]
    leftovers = leftover_resources(boto3.session.Session(), regions, include_fixtures=True)
    if leftovers:
        print(format_leftovers(leftovers))
        return 1
    kinds = ", ".join(k.replace("_", " ") for k in KINDS + FIXTURE_KINDS)
    print(f"nothing is left in {', '.join(regions)}: no {kinds}")
    return 0


def main(argv: list[str]) -> int:
    """Run the commands given one after the other (one process: boto3 is imported once)."""
    rest = list(argv)
    while rest:
        match rest:
            case ["key-pair", "import", name, public_key_file, *rest]:
                import_key_pair(name, public_key_file)
            case ["key-pair", "delete", name, *rest]:
                delete_key_pair(name)
            case ["jobstore", "make", name, "sdb", *rest]:
                make_store(name, "sdb")
            case ["jobstore", "make", name, "s3", *rest] | ["jobstore", "make", name, *rest]:
                make_store(name, "s3")
            case ["jobstore", "unregister", *rest]:
                unregister()
            case ["demand", demand_file, inventory_json, *rest]:
                demand(demand_file, inventory_json)
            case ["leaks", *regions]:
                return leaks(regions)
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
