#!/usr/bin/env bash
# `make demo`: a Toil cluster's life on the embedded AWS endpoint (`python -m harness.endpoint run` runs this script
# with the endpoint's environment), with the collection's playbooks as a user runs them:
#   launch (leader, a static pool, a ranged spot pool; provisioning only), the toil_ec2 inventory graph, one
#   scaler cycle on a sample demand (plan, then apply), the new pool sizes, `toil clean` of a job store, destroy,
#   and proof that nothing is left.
# Nothing connects to the addresses the endpoint hands out (real-looking 54.x): launch_cluster runs with
# provision_only and autoscale configures no host, so no play ever targets a node; the only inventory with
# hosts is localhost. tests/integration/test_demo.py runs this script in a loopback-only network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AWS_ENDPOINT_URL:?run through the embedded endpoint: make demo}"
export AWS_REGION=${AWS_REGION:-us-west-2}
# Readable output: results as YAML, no skipped hosts, no cows; no colour when piped.
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_NOCOWS=1
export ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true  # a failed inventory source fails, never reads as empty
# launch_cluster and autoscale import configure_cluster, whose plays find no node to configure here: say nothing.
export ANSIBLE_HOST_PATTERN_MISMATCH=ignore
JOBSTORE_LAYOUT=${DEMO_JOBSTORE_LAYOUT:-s3}  # s3 (Toil 9.1+) or sdb (Toil 9.0): tools/demo/aws.py
[ -t 1 ] || export ANSIBLE_NOCOLOR=1

DEMO_WORKDIR=$(mktemp -d)
trap 'rm -rf "$DEMO_WORKDIR"' EXIT
LOCALHOST=inventory/localhost.yml
CLUSTER=tools/demo/cluster.yml
started=$SECONDS
step=0

bold='' plain=''
if [ -t 1 ]; then bold=$'\e[1m' plain=$'\e[0m'; fi
section() {  # a numbered heading with the seconds since the start
    step=$((step + 1))
    printf '\n%s== %d. %s%s  (%ds)\n' "$bold" "$step" "$1" "$plain" $((SECONDS - started))
}

play() {  # play PLAYBOOK ARGS...: ansible-playbook on the controller's localhost
    ansible-playbook -i "$LOCALHOST" "$@"
}

demo_aws() {  # tools/demo/aws.py COMMANDS...: it builds the job store and checks for leaks with the test harness
    PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" python tools/demo/aws.py "$@"
}

echo "toil.cluster demo against the embedded AWS endpoint at $AWS_ENDPOINT_URL (region $AWS_REGION)"

section "What the user has: an EC2 key pair (launch-cluster's --keyPairName), a job store a failed workflow left"
ssh-keygen -q -t ed25519 -N "" -C demo-key -f "$DEMO_WORKDIR/demo-key"
demo_aws key-pair import demo-key "$DEMO_WORKDIR/demo-key.pub" jobstore make demo-store "$JOBSTORE_LAYOUT"

section "Launch the cluster (toil.cluster.launch_cluster, provision_only: AWS resources, no host configured)"
play toil.cluster.launch_cluster -e @"$CLUSTER" -e provision_only=true

section "The cluster as Ansible sees it (ansible-inventory -i tools/demo/demo.toil_ec2.yml --graph)"
ansible-inventory -i tools/demo/demo.toil_ec2.yml --graph
ansible-inventory -i tools/demo/demo.toil_ec2.yml --list >"$DEMO_WORKDIR/inventory.json"

section "One scaler cycle on a sample demand: the plan (toil.cluster.autoscale, plan_only)"
demo_aws demand tools/demo/demand.yml "$DEMO_WORKDIR/inventory.json" >"$DEMO_WORKDIR/demand.yml"
echo "-- the demand (tools/demo/demand.yml's pods; the inventory's workers as nodes):"
cat "$DEMO_WORKDIR/demand.yml"
play toil.cluster.autoscale -e @"$CLUSTER" -e @"$DEMO_WORKDIR/demand.yml" -e plan_only=true \
    -e scaler_state_path="$DEMO_WORKDIR/scaler-state.json"

section "The same cycle, applied (toil.cluster.autoscale; provision_only: the new nodes are not configured)"
play toil.cluster.autoscale -e @"$CLUSTER" -e @"$DEMO_WORKDIR/demand.yml" -e plan_only=false -e provision_only=true \
    -e scaler_state_path="$DEMO_WORKDIR/scaler-state.json" -e scaler_metrics_path="$DEMO_WORKDIR/scaler.prom"
echo "-- the scaler's metrics textfile (what Toil's dashboard plots):"
grep -v '^#' "$DEMO_WORKDIR/scaler.prom"

section "The new pool sizes (toil.cluster.status)"
play toil.cluster.status -e @"$CLUSTER"

section "toil clean of the job store (toil.cluster.toil_jobstore: check mode, then for real, then again)"
play tools/demo.yml
if [ "$JOBSTORE_LAYOUT" = sdb ]; then demo_aws jobstore unregister; fi

section "Destroy the cluster (toil.cluster.destroy_cluster)"
play toil.cluster.destroy_cluster -e @"$CLUSTER"

section "Remove the key pair, and prove that nothing is left (the leak check, tests/harness/leaks.py)"
demo_aws key-pair delete demo-key leaks "$AWS_REGION"

echo
echo "demo finished in $((SECONDS - started)) s"
