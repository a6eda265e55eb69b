"""What a module says when an EC2 waiter gives up: a timeout only when it ran out of attempts.

The waiters are botocore's own (its EC2 waiter model and Waiter class), asked through a stand-in client
that answers DescribeInstances with a fixed instance state: a state the waiter can never leave
("terminated" while waiting for "running") ends the wait at once, and that is not a timeout.
"""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import WaiterError
from botocore.waiter import create_waiter_with_client

from ansible_collections.toil.cluster.plugins.module_utils.modules import ToilAWSModule, waiter_failure
from ansible_collections.toil.cluster.plugins.module_utils.nodes import waiter_config


class FixedStateEC2:
    """DescribeInstances always answers one instance in ``state``: the only call EC2's instance waiters make."""

    def __init__(self, state):
        self.state = state
        self.calls = 0
        self.meta = botocore.session.get_session().create_client("ec2", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x").meta

    def describe_instances(self, **_params):
        self.calls += 1
        return {"Reservations": [{"Instances": [{"InstanceId": "i-0123456789abcdef0", "State": {"Name": self.state}}]}]}


def wait(state, waiter_name, timeout):
    client = FixedStateEC2(state)
    model = botocore.session.get_session().get_waiter_model("ec2")
    waiter = create_waiter_with_client(waiter_name, model, client)
    config = dict(waiter_config(timeout), Delay=0)  # botocore sleeps Delay seconds between attempts
    with pytest.raises(WaiterError) as caught:
        waiter.wait(InstanceIds=["i-0123456789abcdef0"], WaiterConfig=config)
    return caught.value, client.calls


def test_running_out_of_attempts_is_a_timeout():
    error, calls = wait("pending", "InstanceRunning", timeout=15)
    assert calls == 3  # 15 s at one attempt every 5 s
    assert waiter_failure(error, "the leader", 15).startswith("Timed out after 15 s waiting for the leader: ")


def test_a_state_that_cannot_become_the_wanted_one_is_not_a_timeout():
    error, calls = wait("terminated", "InstanceRunning", timeout=600)
    assert calls == 1
    message = waiter_failure(error, "the leader", 600)
    assert not message.startswith("Timed out")
    assert message.startswith("Gave up waiting for the leader: ")
    assert "terminal failure state" in message


class FailingModule:
    """What ToilAWSModule.aws_errors uses of the module: its parameters and fail_json."""

    def __init__(self):
        self.params = {"wait_timeout": 600}

    def fail_json(self, msg):
        raise SystemExit(msg)


def test_modules_report_the_waiters_reason():
    error, _calls = wait("terminated", "InstanceRunning", timeout=600)
    with pytest.raises(SystemExit) as failed, ToilAWSModule.aws_errors(FailingModule(), "pool p of cluster c", waiting_for="the nodes of pool p"):
        raise error
    assert str(failed.value).startswith("Gave up waiting for the nodes of pool p: Waiter InstanceRunning failed: Waiter encountered a terminal failure state")
