#!/usr/bin/env bash
# The main job of `make demo`, run by tools/embedded_aws.py with the embedded endpoint's environment:
# plan a cluster as `toil launch-cluster` would be asked to make it, then launch, inspect and destroy it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== toil.cluster demo against the embedded AWS endpoint at ${AWS_ENDPOINT_URL:?run through tools/embedded_aws.py}"
DEMO_WORKDIR=$(mktemp -d)
export DEMO_WORKDIR
trap 'rm -rf "$DEMO_WORKDIR"' EXIT
ansible-playbook -i inventory/localhost.yml playbooks/plan.yml \
    -e toil_cluster_name=demo \
    -e toil_zone=us-west-2a \
    -e toil_key_pair_name=demo-key \
    -e toil_leader_node_type=t3.large \
    -e toil_node_types=c5.4xlarge/c5a.4xlarge:0.42,t3.large \
    -e toil_workers=0-4,2 \
    -e '{"toil_tags": {"Project": "demo"}}'
ansible-playbook -i inventory/localhost.yml tools/demo.yml
