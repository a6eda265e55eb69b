#!/usr/bin/env bash
# The main job of `make demo`, run by tools/embedded_aws.py with the embedded endpoint's
# environment: plan a Toil cluster the way `toil launch-cluster` would be asked to make it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== toil.cluster demo against the embedded AWS endpoint at ${AWS_ENDPOINT_URL:?run through tools/embedded_aws.py}"
ansible-playbook -i inventory/localhost.yml playbooks/plan.yml \
    -e toil_cluster_name=demo \
    -e toil_zone=us-west-2a \
    -e toil_key_pair_name=demo-key \
    -e toil_leader_node_type=t3.large \
    -e toil_node_types=c5.4xlarge/c5a.4xlarge:0.42,t3.large \
    -e toil_workers=0-4,2 \
    -e '{"toil_tags": {"Project": "demo"}}'
