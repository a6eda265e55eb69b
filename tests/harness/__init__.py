"""The test harness: everything the tests, the benchmarks and ``make demo`` share, in one place.

pytest imports it as ``harness`` (pyproject.toml: ``pythonpath = ["tests", ".venv/collections"]``); other
callers set ``PYTHONPATH=tests`` (the Makefile's bench and demo targets, tools/demo.sh).

AWS, on the embedded endpoint (moto on 127.0.0.1):
    endpoint      ``EmbeddedAWS``: moto in server mode on a free port, its environment, boto3 clients; the command
                  line ``python -m harness.endpoint serve|run -- CMD`` (``debian_amis.json``: its Debian 12 AMIs)
    aws           ``AwsContext``: the per-test view the ``aws`` fixture yields (cleanups, leak check)
    proxy         ``AWSProxy``: the recording, fault-injecting and ClientToken-idempotent proxy
    leaks         ``leftover_resources``/``format_leftovers``: what is left on an endpoint
    playbooks     ``run_ansible_playbook`` -> ``PlaybookResult``: ansible-playbook with JSON output
    jobstores     ``make_job_store``: Toil job stores (Toil 9.6's S3 layout, Toil 9.0's SimpleDB one)
    toil_shapes   resources shaped the way ``toil launch-cluster`` makes them
    iam_enforcement  an endpoint that enforces IAM, and runs as one of its users
    resilience    the lifecycle play, the botocore client recorder and the fault-run settings
    bad_inputs    bad-input tables proven in more than one test
    toil_logs     Toil's real log lines (tests/fixtures/toil-logs) and the metrics they must give

The real Toil (.venv-toil):
    netns         ``OfflineNetns``: a loopback-only network namespace relayed to the endpoint
    toil_interop  Toil's own commands and provisioner run against the endpoint, inside an ``OfflineNetns``

Hosts (podman, for the role and playbook tests marked ``hosts``):
    hosts.podman_hosts    ``PodmanLab``: Debian 12 hosts with systemd and sshd (image: hosts/build-image.sh)
    hosts.role_hosts      their environment, failure reports, idempotence check, a stand-in leader
    hosts.apt_repo        ``AptRepository``: the one signed apt repository builder for the doubles below
    hosts.kube_double_repo, hosts.grafana_double_repo   the kubeadm/kubelet/kubectl and grafana-server test doubles

kube_api: ``KubeApi``, a Kubernetes API server stand-in (HTTPS, stdlib only) for the kubernetes client and kubectl.
kube_workloads: Toil's Jobs, the kubelets' nodes, running and finished pods on it.
toil_scaler_runs: the cluster the scaler tests scale, one ``toil_scaler`` task, its result by pool.
paths: where the checkout, its virtual environments and the Ansible settings are.
"""
