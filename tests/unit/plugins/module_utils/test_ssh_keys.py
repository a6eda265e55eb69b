# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""OpenSSH public key lines (issue #16, point 3): what is a key, and every crafted line refused."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.ssh_keys import parse_authorized_keys, parse_public_key
from harness.ssh_key_lines import ATTACK_KEYS, ED25519, RSA, VALID_KEYS


@pytest.mark.parametrize("key", VALID_KEYS)
def test_openssh_keys_are_accepted_as_they_are(key):
    assert parse_public_key(key) == key
    assert parse_public_key(f"  {key}\n") == key  # surrounding blanks (a file's last newline) are dropped


@pytest.mark.parametrize("name", ATTACK_KEYS)
def test_crafted_key_lines_are_refused(name):
    with pytest.raises(ToilInputError, match="is not an OpenSSH public key line") as error:
        parse_public_key(ATTACK_KEYS[name])
    message = str(error.value)
    assert "\r" not in message and "\n" not in message and "\x85" not in message and "\u2028" not in message


def test_a_list_is_needed():
    assert parse_authorized_keys(None) == ()
    assert parse_authorized_keys([ED25519, RSA]) == (ED25519, RSA)
    with pytest.raises(ToilInputError, match="a list of OpenSSH public key lines"):
        parse_authorized_keys(ED25519)
    with pytest.raises(ToilInputError, match="is not an OpenSSH public key line"):
        parse_authorized_keys([ED25519, 7])


@pytest.mark.parametrize("name", ["carriage return", "crlf", "next line (U+0085)", "options prefix", "DSA"])
def test_toil_nodepool_refuses_them_before_anything(name):
    params = {"cluster": "my-cluster", "node_types": "m5.large", "count": 1, "authorized_keys": [ED25519, ATTACK_KEYS[name]]}
    with pytest.raises(ToilInputError, match="authorized_keys: .* is not an OpenSSH public key line"):
        validate_pool_spec(params)


def test_toil_nodepool_keeps_the_checked_keys():
    spec = validate_pool_spec({"cluster": "my-cluster", "node_types": "m5.large", "count": 1, "authorized_keys": [f" {ED25519}\n", RSA]})
    assert spec.authorized_keys == (ED25519, RSA)
