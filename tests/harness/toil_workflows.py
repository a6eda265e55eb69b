"""Workflows the tests run with the real Toil: on the stand-in leader (the molecule scenario extensions/molecule/toil,
test_playbook_run_workflow_hosts.py) and against the Kubernetes API stand-in (test_cluster_week.py).

``python -m harness.toil_workflows NAME`` prints one (a molecule scenario copies it to its host)."""

import sys

SQUARES = '''\
"""Squares of 1..4 in child jobs, summed by a follow-on: the sum is written to the file given. With --meet DIR, each
square waits (up to 300 s) until all four have started, each leaving a file in DIR: the four must run at once."""
import os
import time

from toil.common import Toil
from toil.job import Job


def square(job, n, meet):
    if meet:
        open(os.path.join(meet, f"started-{n}"), "w").close()
        deadline = time.monotonic() + 300
        while len([name for name in os.listdir(meet) if name.startswith("started-")]) < 4:
            if time.monotonic() > deadline:
                raise RuntimeError(f"square {n}: the other squares did not start in 300 s")
            time.sleep(0.2)
    return n * n


def total(job, values, out):
    with open(out, "w") as stream:
        stream.write(str(sum(values)))
    return sum(values)


def root(job, out, meet):
    children = [job.addChildJobFn(square, n, meet).rv() for n in range(1, 5)]
    return job.addFollowOnJobFn(total, children, out).rv()


if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--meet", default=None)
    options = parser.parse_args()
    with Toil(options) as workflow:
        print("result", workflow.start(Job.wrapJobFn(root, options.out, options.meet and os.path.abspath(options.meet))))
'''

WORKFLOWS = {"squares": SQUARES}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in WORKFLOWS:
        sys.exit(f"usage: python -m harness.toil_workflows {{{'|'.join(WORKFLOWS)}}}")
    sys.stdout.write(WORKFLOWS[sys.argv[1]])
