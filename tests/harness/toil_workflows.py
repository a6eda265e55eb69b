"""Workflows the tests run with the real Toil: on the stand-in leader (test_role_toil_hosts.py) and against the
Kubernetes API stand-in (test_cluster_week.py)."""

SQUARES = '''\
"""Squares of 1..4 in child jobs (each taking --square-seconds), summed by a follow-on: the sum is written to the file
given."""
import time

from toil.common import Toil
from toil.job import Job


def square(job, n, seconds):
    time.sleep(seconds)
    return n * n


def total(job, values, out):
    with open(out, "w") as stream:
        stream.write(str(sum(values)))
    return sum(values)


def root(job, out, seconds):
    children = [job.addChildJobFn(square, n, seconds).rv() for n in range(1, 5)]
    return job.addFollowOnJobFn(total, children, out).rv()


if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--square-seconds", type=float, default=0)
    options = parser.parse_args()
    with Toil(options) as workflow:
        print("result", workflow.start(Job.wrapJobFn(root, options.out, options.square_seconds)))
'''
