# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The user data of pool nodes (issue #16, point 3): cloud-init reads it as YAML, as root, so a value in it must
never become a key of its own. yaml.safe_load is what cloud-init's util.load_yaml uses."""

from __future__ import annotations

import re

import pytest
import yaml

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import user_data, validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.ssh_keys import authorized_keys_user_data
from harness.ssh_key_lines import ATTACK_KEYS, ED25519, PAYLOAD, VALID_KEYS


def cloud_config(text):
    """What cloud-init makes of user data: the ``#cloud-config`` header, then YAML."""
    header, _sep, _rest = text.partition("\n")
    assert header == "#cloud-config"
    return yaml.safe_load(text)


def old_user_data(authorized_keys):
    """The code before issue #16: a regex, then string templating."""
    public_key = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$")
    keys = tuple(k.strip() for k in authorized_keys)
    assert all(public_key.match(key) for key in keys)
    return "\n".join(["#cloud-config", "ssh_authorized_keys:"] + [f"  - {key}" for key in keys]) + "\n"


@pytest.mark.parametrize("name", ["carriage return", "next line (U+0085)", "line separator (U+2028)", "paragraph separator (U+2029)"])
def test_the_old_code_let_a_line_break_through_to_a_root_runcmd(name):
    """The attack, against the old code: the key passes the check and cloud-init sees a runcmd."""
    parsed = cloud_config(old_user_data([ATTACK_KEYS[name]]))
    assert parsed["runcmd"] == ["touch /root/pwned"]


@pytest.mark.parametrize("keys", [[key] for key in VALID_KEYS] + [VALID_KEYS])
def test_every_accepted_key_reads_back_as_exactly_the_keys(keys):
    parsed = cloud_config(user_data(keys))
    assert parsed == {"ssh_authorized_keys": keys}


def test_no_keys_no_user_data():
    assert user_data(()) is None
    assert authorized_keys_user_data(None) is None


@pytest.mark.parametrize("name", ATTACK_KEYS)
def test_a_crafted_key_never_reaches_user_data(name):
    with pytest.raises(ToilInputError):
        user_data([ED25519, ATTACK_KEYS[name]])


@pytest.mark.parametrize("name", ["carriage return", "crlf", "newline", "line separator (U+2028)", "document end marker"])
def test_the_pool_spec_refuses_what_would_have_added_a_key(name):
    with pytest.raises(ToilInputError, match="is not an OpenSSH public key line"):
        validate_pool_spec({"cluster": "my-cluster", "node_types": "m5.large", "count": 1, "authorized_keys": [ATTACK_KEYS[name]]})


def test_comments_that_look_like_yaml_stay_strings():
    """A comment with ': ', '#', '- ', '&', '*', '!', quotes and braces is text, whatever YAML makes of it bare."""
    comments = ["a: b", "# not a comment", "- item", "&anchor *alias", "!!python/object x", "'quoted' \"double\"", "{a: 1} [b]", PAYLOAD]
    keys = [f"{ED25519.rsplit(' ', 1)[0]} {comment}" for comment in comments]
    parsed = cloud_config(user_data(keys))
    assert parsed == {"ssh_authorized_keys": keys}
    assert all(ord(ch) < 0x7F for ch in user_data(keys))
