"""Rewrite the generated JSON blocks of docs/iam.md from plugins/module_utils/iam_policies.py.

Run after changing a policy: `make iam-docs` (`PYTHONPATH=.venv/collections .venv/bin/python
tools/render_iam_docs.py`). A unit test fails while the documentation and the code disagree.
"""

import json
import re
import sys
from pathlib import Path

from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import controller_policy, leader_policies

ROOT = Path(__file__).resolve().parent.parent

BLOCKS = {
    "leader-example": leader_policies(
        "my-cluster",
        region="us-west-2",
        account_id="123456789012",
        role_name="my_cluster_toil",
        s3_buckets=["my-lab-data"],
        security_group_id="sg-0123456789abcdef0",
        vpc_id="vpc-0123456789abcdef0",
        key_pair_name="my-key",
    ),
    "controller": controller_policy(account_id="123456789012"),
}


def main():
    path = ROOT / "docs" / "iam.md"
    text = path.read_text(encoding="utf-8")
    for name, document in BLOCKS.items():
        pattern = re.compile(r"(<!-- generated: " + re.escape(name) + r" .*?-->\n```json\n).*?(\n```\n<!-- end generated -->)", re.S)
        text, count = pattern.subn(lambda m, d=document: m.group(1) + json.dumps(d, indent=2) + m.group(2), text)
        if count != 1:
            sys.exit(f"docs/iam.md: no generated block '{name}'")
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
