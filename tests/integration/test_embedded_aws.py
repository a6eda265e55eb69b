"""Tests for the embedded AWS endpoint (harness.endpoint), the leak check (harness.leaks) and the fixtures."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness.aws import AwsContext
from harness.endpoint import EmbeddedAWS, EmbeddedAWSError
from harness.leaks import FIXTURE_KINDS, KINDS, LISTING_ERRORS, format_leftovers, leftover_resources
from harness.paths import ANSIBLE_COLLECTIONS_PATH, HARNESS, REPO
from harness.playbooks import ansible_environment

CLI = [sys.executable, "-m", "harness.endpoint"]  # the command line (make demo runs it)
PYTHONPATH = str(HARNESS.parent)  # what pytest puts on sys.path for ``import harness``
INNER_PYTHONPATH = f"pythonpath={PYTHONPATH} {ANSIBLE_COLLECTIONS_PATH}"
AMI = "ami-04681a1dbd79675a5"  # one of moto's canned AMIs (moto does not validate AMIs by default anyway)
URL_RE = re.compile(r"^http://127\.0\.0\.1:(\d+)$")


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
            return True
    except (OSError, urllib.error.URLError):
        return False


def _moto_pids_on(port: int) -> list[int]:
    """Processes whose command line is a moto server on ``port``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"moto.server" in argv and str(port).encode() in argv and _alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    return {**(os.environ if env is None else env), "PYTHONPATH": PYTHONPATH}


def _cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=_cli_env(env), check=False)


# ---------------------------------------------------------------------- EmbeddedAWS
def test_endpoint_answers_boto3(aws_endpoint: EmbeddedAWS) -> None:
    match = URL_RE.match(aws_endpoint.url)
    assert match, aws_endpoint.url
    assert int(match.group(1)) == aws_endpoint.port
    assert aws_endpoint.running
    regions = {r["RegionName"] for r in aws_endpoint.boto3_client("ec2").describe_regions()["Regions"]}
    assert "us-west-2" in regions
    identity = aws_endpoint.boto3_client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"


def test_env_has_endpoint_and_fake_credentials(aws_endpoint: EmbeddedAWS) -> None:
    env = aws_endpoint.env({})
    assert env["AWS_ENDPOINT_URL"] == env["AWS_URL"] == aws_endpoint.url
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-west-2"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert "AWS_SESSION_TOKEN" not in env and "AWS_PROFILE" not in env


def test_env_neutralises_profiles_and_real_credentials(aws_endpoint: EmbeddedAWS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's setup: a profile whose credential_process would leave a marker if it were ever used.
    marker = tmp_path / "real-credentials-used"
    aws_dir = tmp_path / "home" / ".aws"
    aws_dir.mkdir(parents=True)
    process = f'sh -c \'touch {marker}; echo {{\\"Version\\": 1, \\"AccessKeyId\\": \\"AKIAREAL\\", \\"SecretAccessKey\\": \\"x\\"}}\''
    (aws_dir / "config").write_text(f"[default]\ncredential_process = {process}\n[profile real]\ncredential_process = {process}\n")
    (aws_dir / "credentials").write_text("[real]\naws_access_key_id = AKIAREALREALREAL\naws_secret_access_key = secret\n")
    developer = {
        "HOME": str(tmp_path / "home"),
        "PATH": os.environ["PATH"],
        "AWS_PROFILE": "real",
        "AWS_DEFAULT_PROFILE": "real",
        "AWS_SESSION_TOKEN": "real-token",
        "AWS_SECURITY_TOKEN": "real-token",
        "AWS_ACCESS_KEY_ID": "AKIAREALREALREAL",
        "AWS_ROLE_ARN": "arn:aws:iam::999999999999:role/real",
        "AWS_ENDPOINT_URL_STS": "https://sts.amazonaws.com",
        "EC2_URL": "https://ec2.amazonaws.com",
    }
    env = aws_endpoint.env(developer)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL_STS", "EC2_URL"):
        assert name not in env, name
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["HOME"] == developer["HOME"] and env["PATH"] == developer["PATH"]
    # Plain boto3 in a child process, with only the environment to go on, reaches moto and nothing else.
    code = "import boto3; print(boto3.client('sts').get_caller_identity()['Account'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "123456789012"
    assert not marker.exists()
    # The in-process helpers ignore the developer's variables too (plain boto3 would raise ProfileNotFound).
    for key, value in developer.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_PROFILE", "does-not-exist")
    assert aws_endpoint.boto3_client("sts").get_caller_identity()["Account"] == "123456789012"
    assert not marker.exists()


def test_reset_empties_state(aws: AwsContext) -> None:
    aws.client("s3").create_bucket(Bucket="reset-me", CreateBucketConfiguration={"LocationConstraint": aws.region})
    aws.client("ec2").create_security_group(GroupName="reset-me", Description="x")
    aws.client("iam").create_role(RoleName="reset-me", AssumeRolePolicyDocument="{}")
    assert set(aws.leftovers()) == {"s3_buckets", "security_groups", "iam_roles"}
    aws.reset()
    assert aws.leftovers() == {}
    assert aws.client("s3").list_buckets()["Buckets"] == []


def test_stop_leaves_no_process_or_files() -> None:
    endpoint = EmbeddedAWS().start()
    pid, url = endpoint.pid, endpoint.url
    assert pid is not None and _alive(pid)
    assert os.getpgid(pid) == pid, "moto must lead its own process group"
    assert "Running on" in endpoint.log()
    endpoint.stop()
    assert not _alive(pid)
    assert not _answers(url)
    assert endpoint.process is None and endpoint._log_file is None
    endpoint.stop()  # idempotent


def test_stop_kills_a_moto_that_ignores_sigterm() -> None:
    endpoint = EmbeddedAWS(stop_timeout=0.5)
    with endpoint:
        pid = endpoint.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM: stop() must escalate to SIGKILL
    assert not _alive(pid)


def test_moto_dies_with_a_parent_killed_uncleanly(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import time
        from harness.endpoint import EmbeddedAWS
        endpoint = EmbeddedAWS().start()
        print(endpoint.pid, flush=True)
        time.sleep(120)
        """
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": PYTHONPATH}  # the child imports harness
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        moto_pid = int(parent.stdout.readline())
        assert _alive(moto_pid)
    finally:
        parent.kill()  # SIGKILL: no atexit, no finally
        parent.wait()
    assert _wait_gone(moto_pid), f"moto {moto_pid} outlived its parent"
    assert list(tmpdir.iterdir()) == [], "nothing may be left on disk"


def test_two_endpoints_run_at_once() -> None:
    with EmbeddedAWS() as first, EmbeddedAWS(region="eu-west-1") as second:
        assert first.port != second.port
        first.boto3_client("s3").create_bucket(Bucket="only-in-first", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        assert [b["Name"] for b in first.boto3_client("s3").list_buckets()["Buckets"]] == ["only-in-first"]
        assert second.boto3_client("s3").list_buckets()["Buckets"] == []
        assert second.env({})["AWS_REGION"] == "eu-west-1"
        pids = (first.pid, second.pid)
    assert all(pid is not None and not _alive(pid) for pid in pids)


def test_start_failure_shows_moto_output(aws_endpoint: EmbeddedAWS) -> None:
    clash = EmbeddedAWS(port=aws_endpoint.port, start_timeout=20)
    with pytest.raises(EmbeddedAWSError, match=r"(?s)moto exited with code \d+ while starting.*Address already in use"):
        clash.start()
    assert clash.process is None and clash._log_file is None
    assert aws_endpoint.running


# ---------------------------------------------------------------------- command line
def test_cli_run_prints_url_and_stops_moto() -> None:
    out = _cli("run", "--", "sh", "-c", 'echo "$AWS_ENDPOINT_URL $AWS_REGION ${AWS_PROFILE-unset}"')
    assert out.returncode == 0, out.stderr
    url, region, profile = out.stdout.split()
    match = URL_RE.match(url)
    assert match, out.stdout
    assert (region, profile) == ("us-west-2", "unset")
    assert not _answers(url)
    assert _moto_pids_on(int(match.group(1))) == []


def test_cli_run_passes_exit_code_through() -> None:
    assert _cli("run", "--", "sh", "-c", "exit 3").returncode == 3
    assert _cli("run", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    assert _cli("run", "--", "/nonexistent/command").returncode == 127


def test_cli_run_forwards_sigterm_and_stops_moto() -> None:
    cmd = [*CLI, "run", "--", "sh", "-c", 'echo "$AWS_ENDPOINT_URL"; exec sleep 30']
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_cli_env())
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert URL_RE.match(url), url
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _answers(url)
    assert _moto_pids_on(int(url.rsplit(":", 1)[1])) == []


def test_cli_run_region_and_plain_boto3() -> None:
    code = "import boto3; print(boto3.client('ec2').describe_availability_zones()['AvailabilityZones'][0]['ZoneName'])"
    out = _cli("--region", "eu-west-1", "run", "--", sys.executable, "-c", code, env={**os.environ, "AWS_PROFILE": "nope"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("eu-west-1")


def test_cli_serve_prints_exports_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([*CLI, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env())
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("# moto pid"):
                break
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
        assert any(line.startswith("unset ") and "AWS_PROFILE" in line.split() for line in lines)
        url = exports["AWS_ENDPOINT_URL"]
        assert URL_RE.match(url) and exports["AWS_URL"] == url
        assert _answers(url)
        moto_pid = int(lines[-1].split()[3].rstrip(";"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _answers(url)
    assert not _alive(moto_pid)


# ---------------------------------------------------------------------- leftover_resources
def _create_one_of_each(aws: AwsContext) -> dict[str, str]:
    """Create one resource of every kind the leak check knows; returns kind -> expected id."""
    ec2, iam, s3, sdb, autoscaling = (aws.client(s) for s in ("ec2", "iam", "s3", "sdb", "autoscaling"))
    made: dict[str, str] = {}
    made["instances"] = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    made["security_groups"] = ec2.create_security_group(GroupName="leaky", Description="leak test")["GroupId"]
    iam.create_role(RoleName="leaky_toil", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    made["iam_roles"] = "leaky_toil"
    iam.create_instance_profile(InstanceProfileName="leaky_toil")
    iam.add_role_to_instance_profile(InstanceProfileName="leaky_toil", RoleName="leaky_toil")
    made["iam_instance_profiles"] = "leaky_toil"
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    made["iam_policies"] = iam.create_policy(PolicyName="leaky", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    s3.create_bucket(Bucket="leaky--toil", CreateBucketConfiguration={"LocationConstraint": aws.region})
    made["s3_buckets"] = "leaky--toil"
    sdb.create_domain(DomainName="leaky--files")
    made["sdb_domains"] = "leaky--files"
    ec2.create_launch_template(LaunchTemplateName="leaky-lt", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})
    made["launch_templates"] = "leaky-lt"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="toil-leaky",
        LaunchTemplate={"LaunchTemplateName": "leaky-lt"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=[f"{aws.region}a"],
    )
    made["autoscaling_groups"] = "toil-leaky"
    spot = ec2.request_spot_instances(SpotPrice="0.5", InstanceCount=1, LaunchSpecification={"ImageId": AMI, "InstanceType": "t3.micro"})
    made["spot_instance_requests"] = spot["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    made["volumes"] = ec2.create_volume(AvailabilityZone=f"{aws.region}a", Size=1)["VolumeId"]
    ec2.create_key_pair(KeyName="leaky-key")
    made["key_pairs"] = "leaky-key"
    iam.create_user(UserName="leaky-user")
    made["iam_users"] = "leaky-user"
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    made["subnets"] = ec2.create_subnet(VpcId=vpc_id, CidrBlock="172.31.200.0/24", AvailabilityZone=f"{aws.region}b")["Subnet"]["SubnetId"]
    made["network_acls"] = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
    return made


def _delete_all(aws: AwsContext, made: dict[str, str]) -> None:
    ec2, iam, s3, sdb, autoscaling = (aws.client(s) for s in ("ec2", "iam", "s3", "sdb", "autoscaling"))
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=made["autoscaling_groups"], ForceDelete=True)
    ec2.delete_launch_template(LaunchTemplateName=made["launch_templates"])
    ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[made["spot_instance_requests"]])
    live = leftover_resources(aws, aws.region, kinds=["instances"]).get("instances", [])
    if live:
        ec2.terminate_instances(InstanceIds=live)
    ec2.delete_security_group(GroupId=made["security_groups"])
    ec2.delete_volume(VolumeId=made["volumes"])
    ec2.delete_key_pair(KeyName=made["key_pairs"])
    iam.remove_role_from_instance_profile(InstanceProfileName=made["iam_instance_profiles"], RoleName=made["iam_roles"])
    iam.delete_instance_profile(InstanceProfileName=made["iam_instance_profiles"])
    iam.delete_role(RoleName=made["iam_roles"])
    iam.delete_policy(PolicyArn=made["iam_policies"])
    iam.delete_user(UserName=made["iam_users"])
    s3.delete_bucket(Bucket=made["s3_buckets"])
    sdb.delete_domain(DomainName=made["sdb_domains"])
    ec2.delete_network_acl(NetworkAclId=made["network_acls"])
    ec2.delete_subnet(SubnetId=made["subnets"])


def test_leftover_resources_reports_each_kind_then_nothing(aws: AwsContext) -> None:
    assert leftover_resources(aws, aws.region, include_fixtures=True) == {}
    made = _create_one_of_each(aws)
    found = leftover_resources(aws, aws.region, include_fixtures=True)
    assert set(found) == set(KINDS) | set(FIXTURE_KINDS), format_leftovers(found)
    for kind, ident in made.items():
        assert ident in found[kind], (kind, found)
    # Three instances: the plain one, the ASG's and the spot request's.
    assert len(found["instances"]) == 3, found["instances"]
    # Fixture kinds are left out unless asked for.
    assert set(leftover_resources(aws, aws.region)) == set(KINDS)
    _delete_all(aws, made)
    assert leftover_resources(aws, aws.region, include_fixtures=True) == {}
    # moto keeps terminated instances visible; they must not count.
    states = {i["State"]["Name"] for r in aws.client("ec2").describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}


def test_leftover_resources_accepts_sessions_mappings_and_several_regions(aws: AwsContext, aws_endpoint: EmbeddedAWS) -> None:
    aws.leak_regions.append("eu-west-1")
    group = aws.client("ec2", "eu-west-1").create_security_group(GroupName="far", Description="x")["GroupId"]
    assert leftover_resources(aws, aws.region) == {}
    assert leftover_resources(aws, [aws.region, "eu-west-1"]) == {"security_groups": [f"eu-west-1/{group}"]}
    assert leftover_resources(aws_endpoint, "eu-west-1") == {"security_groups": [group]}
    session = aws_endpoint.boto3_session("eu-west-1")
    assert leftover_resources(session, "eu-west-1", endpoint_url=aws.url) == {"security_groups": [group]}
    only_ec2 = {"ec2": aws.client("ec2", "eu-west-1")}
    assert leftover_resources(only_ec2, "eu-west-1") == {"security_groups": [group]}
    aws.client("ec2", "eu-west-1").delete_security_group(GroupId=group)


def test_leftover_resources_reports_listing_failures(aws: AwsContext) -> None:
    def factory(service: str, region: str) -> object:
        if service == "sdb":
            raise RuntimeError("sdb is down")
        return aws.client(service, region)

    found = leftover_resources(factory, aws.region)
    assert list(found) == [LISTING_ERRORS]
    assert found[LISTING_ERRORS] == ["sdb_domains in us-west-2: RuntimeError: sdb is down"]
    with pytest.raises(ValueError, match="unknown kinds"):
        leftover_resources(aws, aws.region, kinds=["nope"])


def test_aws_fixture_fails_a_test_that_leaks(tmp_path: Path) -> None:
    """Runs a small pytest session with this directory's conftest: leaking fails, cleaning up passes."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            spec = importlib.util.spec_from_file_location("integration_conftest", {str(Path(__file__).parent / "conftest.py")!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            globals().update({{k: v for k, v in vars(module).items() if not k.startswith("__")}})
            """
        )
    )
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            def test_leaks(aws):
                aws.client("s3").create_bucket(Bucket="left-behind", CreateBucketConfiguration={"LocationConstraint": aws.region})

            def test_cleans_up_via_add_cleanup(aws):
                aws.client("s3").create_bucket(Bucket="cleaned", CreateBucketConfiguration={"LocationConstraint": aws.region})
                aws.add_cleanup(aws.client("s3").delete_bucket, Bucket="cleaned")

            def test_key_pairs_are_fixtures(aws):
                aws.client("ec2").create_key_pair(KeyName="fixture-key")

            def test_body_fails_and_leaks(aws):
                aws.client("iam").create_role(RoleName="left-role", AssumeRolePolicyDocument="{}")
                assert False, "body failure"
            """
        )
    )
    # -c /dev/null: no pyproject.toml, so its pythonpath is given with -o.
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull, "-o", INNER_PYTHONPATH, "-rA", tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    text = out.stdout + out.stderr
    assert "1 failed, 3 passed, 1 error" in text, text
    assert re.search(r"ERROR test_inner.py::test_leaks - Failed: test left AWS resources", text), text
    assert "s3_buckets: left-behind" in text, text
    # A test whose body failed is not given a second (teardown) error; its leftovers ride along in a report section.
    assert re.search(r"FAILED test_inner.py::test_body_fails_and_leaks - AssertionError: body failure", text), text
    assert "ERROR test_inner.py::test_body_fails_and_leaks" not in text, text
    assert "Captured aws leftovers teardown" in text and "iam_roles: left-role" in text, text


# ---------------------------------------------------------------------- run_playbook
PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "hello {{ who }}"
    - name: Show the AWS environment
      ansible.builtin.debug:
        msg:
          endpoint: "{{ lookup('ansible.builtin.env', 'AWS_ENDPOINT_URL') }}"
          aws_url: "{{ lookup('ansible.builtin.env', 'AWS_URL') }}"
          profile: "{{ lookup('ansible.builtin.env', 'AWS_PROFILE') }}"
          check_mode: "{{ ansible_check_mode }}"
    - name: Fail on request
      ansible.builtin.fail:
        msg: "failing as asked"
      when: fail_now | default(false) | bool
"""


def test_run_playbook_json_plumbing(run_playbook, aws: AwsContext) -> None:
    result = run_playbook(PLAYBOOK, extra_vars={"who": "toil"}, check=True)
    assert result.rc == 0
    assert result.task("Say hello")["msg"] == "hello toil"
    shown = result.task("Show the AWS environment")["msg"]
    assert shown == {"endpoint": aws.url, "aws_url": aws.url, "profile": "", "check_mode": True}
    assert result.task("Fail on request")["skipped"] is True
    assert result.stats["localhost"]["failures"] == 0
    with pytest.raises(KeyError, match="no task"):
        result.task("No such task")

    failed = run_playbook(PLAYBOOK, extra_vars={"who": "toil", "fail_now": True}, expect_rc=2)
    assert failed.task("Fail on request")["failed"] is True
    assert failed.failed_tasks() == [("Fail on request", "localhost", "failing as asked")]
    with pytest.raises(AssertionError, match=r"(?s)exited 2, expected 0.*Fail on request \[localhost\]: failing as asked"):
        run_playbook(PLAYBOOK, extra_vars={"who": "toil", "fail_now": True})


def test_run_playbook_with_amazon_aws(run_playbook, aws: AwsContext) -> None:
    """amazon.aws modules reach the endpoint through the environment alone (no endpoint_url in the play)."""
    plays = [
        {
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "Who am I", "amazon.aws.aws_caller_info": {}},
                {"name": "Make a bucket", "amazon.aws.s3_bucket": {"name": "playbook-bucket", "state": "present"}},
                {"name": "Drop the bucket", "amazon.aws.s3_bucket": {"name": "playbook-bucket", "state": "absent"}},
            ],
        }
    ]
    result = run_playbook(plays)
    assert result.task("Who am I")["account"] == "123456789012"
    assert result.task("Make a bucket")["changed"] is True
    assert result.task("Drop the bucket")["changed"] is True
    assert aws.client("s3").list_buckets()["Buckets"] == []


def test_ansible_environment_is_hermetic(tmp_path: Path) -> None:
    inherited = {"AWS_URL": "http://127.0.0.1:1", "ANSIBLE_STDOUT_CALLBACK": "yaml", "TOIL_AWS_ZONE": "us-east-1a", "KEEP": "k"}
    env = ansible_environment(inherited, tmp_path, {"AWS_URL": None, "TOIL_OWNER_TAG": "lab"})
    assert "AWS_URL" not in env and "TOIL_AWS_ZONE" not in env
    assert env["KEEP"] == "k" and env["TOIL_OWNER_TAG"] == "lab"
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "ansible.posix.json"
    assert env["ANSIBLE_CONFIG"] == str(REPO / "ansible.cfg")
    assert env["ANSIBLE_COLLECTIONS_PATH"] == str(REPO / ".venv" / "collections")
    assert env["ANSIBLE_LOCAL_TEMP"].startswith(str(tmp_path))
