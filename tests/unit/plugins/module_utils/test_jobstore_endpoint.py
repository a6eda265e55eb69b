# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""S3-compatible endpoints for job stores: the s3_endpoint option and TOIL_S3_HOST/PORT/USE_SSL (reference section 4)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import parse_locator_for, s3_endpoint_url

REPO = Path(__file__).resolve().parents[4]
TOIL_PYTHON = REPO / ".venv-toil" / "bin" / "python"


@pytest.mark.parametrize(
    ("option", "environ", "url"),
    [
        (None, {}, None),
        ({}, {"TOIL_S3_PORT": "9000"}, None),  # a port without a host means AWS, as in Toil
        (None, {"TOIL_S3_HOST": "minio.example"}, "https://minio.example"),  # a host alone works
        (None, {"TOIL_S3_HOST": "minio.example", "TOIL_S3_PORT": "9000"}, "https://minio.example:9000"),
        (None, {"TOIL_S3_HOST": "minio.example", "TOIL_S3_PORT": "9000", "TOIL_S3_USE_SSL": "False"}, "http://minio.example:9000"),
        (None, {"TOIL_S3_HOST": "10.0.0.5:9000", "TOIL_S3_USE_SSL": "no"}, "http://10.0.0.5:9000"),
        (None, {"TOIL_S3_HOST": "[fd00::5]", "TOIL_S3_PORT": "9000"}, "https://[fd00::5]:9000"),
        (None, {"TOIL_S3_HOST": " minio.example ", "TOIL_S3_PORT": " 9000 ", "TOIL_S3_USE_SSL": "OFF"}, "http://minio.example:9000"),
        (None, {"TOIL_S3_HOST": "", "TOIL_S3_PORT": "9000"}, None),
        ({"host": "s3.lab", "port": 443, "use_ssl": True}, {}, "https://s3.lab:443"),
        ({"host": "s3.lab", "port": None, "use_ssl": None}, {}, "https://s3.lab"),
        # Each suboption falls back to its variable on its own.
        ({"host": "s3.lab"}, {"TOIL_S3_HOST": "ignored", "TOIL_S3_PORT": "9000", "TOIL_S3_USE_SSL": "0"}, "http://s3.lab:9000"),
        ({"use_ssl": True, "port": 9443}, {"TOIL_S3_HOST": "minio.example", "TOIL_S3_USE_SSL": "false"}, "https://minio.example:9443"),
    ],
)
def test_endpoint_from_option_and_toil_variables(option, environ, url):
    assert s3_endpoint_url(option, environ) == url


@pytest.mark.parametrize(
    ("option", "environ", "message"),
    [
        ({"host": "http://minio:9000"}, {}, "s3_endpoint.host must be a host name or an IP address"),
        (None, {"TOIL_S3_HOST": "minio/path"}, "TOIL_S3_HOST must be a host name or an IP address"),
        (None, {"TOIL_S3_HOST": "-minio"}, "TOIL_S3_HOST must be a host name"),
        (None, {"TOIL_S3_HOST": "minio:9000", "TOIL_S3_PORT": "9000"}, "TOIL_S3_HOST 'minio:9000' already names a port: do not set TOIL_S3_PORT as well"),
        (None, {"TOIL_S3_HOST": "minio:99999"}, "TOIL_S3_HOST must be a TCP port number between 1 and 65535"),
        (None, {"TOIL_S3_HOST": "minio", "TOIL_S3_PORT": "http"}, "TOIL_S3_PORT must be a TCP port number between 1 and 65535, not 'http'"),
        ({"host": "minio", "port": 0}, {}, "s3_endpoint.port must be a TCP port number"),
        (None, {"TOIL_S3_HOST": "minio", "TOIL_S3_USE_SSL": "maybe"}, "TOIL_S3_USE_SSL must be true or false"),
        ({"port": 9000}, {}, "s3_endpoint needs a host (or TOIL_S3_HOST) when its port or use_ssl is set"),
        ({"use_ssl": False}, {}, "s3_endpoint needs a host"),
    ],
)
def test_bad_endpoints_are_refused(option, environ, message):
    with pytest.raises(ToilInputError) as raised:
        s3_endpoint_url(option, environ)
    assert message in str(raised.value)


def test_environment_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("TOIL_S3_HOST", "minio.example")
    monkeypatch.delenv("TOIL_S3_PORT", raising=False)
    monkeypatch.delenv("TOIL_S3_USE_SSL", raising=False)
    assert s3_endpoint_url() == "https://minio.example"


def test_with_an_endpoint_any_region_name_is_accepted():
    assert parse_locator_for("aws:minio-local:my-store", "http://minio:9000").region == "minio-local"
    assert parse_locator_for("file:/tmp/x", "http://minio:9000").kind == "file"
    with pytest.raises(ToilInputError, match="Invalid region 'Bad_Region'"):
        parse_locator_for("aws:Bad_Region:my-store", "http://minio:9000")
    with pytest.raises(ToilInputError, match="Invalid region ''"):
        parse_locator_for("aws::my-store", "http://minio:9000")
    with pytest.raises(ToilInputError, match="AWS region 'minio-local'"):
        parse_locator_for("aws:minio-local:my-store", None)
    with pytest.raises(ToilInputError, match="may not contain '--'"):
        parse_locator_for("aws:minio-local:my--store", "http://minio:9000")


# --- differential: the endpoint the real Toil builds from the same variables ------------------

_TOIL_ENDPOINT = """
import json
from urllib.parse import urlparse
import toil.lib.aws.utils as utils
seen = []
def client(*args, endpoint_url=None, **kwargs):
    seen.append(endpoint_url)
    raise KeyboardInterrupt  # stop before any request
utils.session.client = client
try:
    utils.list_objects_for_url(urlparse("s3://bucket/prefix/"))
except KeyboardInterrupt:
    pass
print(json.dumps(seen[0]))
"""


def toil_endpoint(environ):
    """The endpoint_url Toil 9.6 gives boto3 for an s3:// URL (lib/aws/utils.py:list_objects_for_url)."""
    if not os.access(TOIL_PYTHON, os.X_OK):
        pytest.fail(f"The real Toil is not installed: {TOIL_PYTHON} is missing. Run `make setup`.", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOIL_", "AWS_")) and k != "PYTHONPATH"}
    completed = subprocess.run([str(TOIL_PYTHON), "-c", _TOIL_ENDPOINT], env={**env, **environ}, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.toil
@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"TOIL_S3_HOST": "minio.example", "TOIL_S3_PORT": "9000"},
        {"TOIL_S3_HOST": "minio.example", "TOIL_S3_PORT": "9000", "TOIL_S3_USE_SSL": "false"},
    ],
)
def test_same_endpoint_as_toil_when_host_and_port_are_set(environ):
    assert s3_endpoint_url(None, environ) == toil_endpoint(environ)


@pytest.mark.toil
def test_difference_a_host_alone_works():
    """Toil's ``f"{protocol}://{host}" + f":{port}" if port else ""`` is ``(a + b) if port else ""``: without
    TOIL_S3_PORT its endpoint is the empty string, which boto3 refuses ("Invalid endpoint: ")."""
    environ = {"TOIL_S3_HOST": "minio.example", "TOIL_S3_USE_SSL": "false"}
    assert toil_endpoint(environ) == ""
    assert s3_endpoint_url(None, environ) == "http://minio.example"
