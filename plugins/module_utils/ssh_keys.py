# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""OpenSSH public keys, parsed as sshd reads an ``authorized_keys`` line, and the cloud-config that installs them.

A key reaches a node's user data, which cloud-init reads as YAML as root: a key line is only accepted when it is
``<type> <base64> [comment]`` with a known type, base64 that decodes to a blob of that type, and a comment of
printable ASCII. No options prefix (``command="..."``): the nodes' keys are plain logins.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

# Key type -> the number of length-prefixed strings its blob holds (type name included), as in OpenSSH's sshkey.c.
# DSA is left out: OpenSSH 9.x no longer accepts it by default.
KEY_TYPES = {
    "ssh-ed25519": 2,  # name, 32-byte key
    "ssh-rsa": 3,  # name, e, n
    "ecdsa-sha2-nistp256": 3,  # name, curve, point
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ssh-ed25519@openssh.com": 3,  # name, key, application
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,  # name, curve, point, application
}
_CURVES = {
    "ecdsa-sha2-nistp256": "nistp256",
    "ecdsa-sha2-nistp384": "nistp384",
    "ecdsa-sha2-nistp521": "nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com": "nistp256",
}
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# A comment is printable ASCII: no C0/C1 control, no DEL, and none of the characters YAML 1.1 also takes for a line
# break (U+0085, U+2028, U+2029). Keys' comments are ``user@host`` in practice.
_COMMENT = re.compile(r"[\x20-\x7e]*")
MAX_KEY_LINE = 16384  # sshd's own limit for one authorized_keys line (SSH_MAX_PUBKEY_BYTES)


def _shown(line):
    """The start of a refused line, with control characters escaped, for an error message."""
    return ascii(line[:40]) + ("..." if len(line) > 40 else "")


def _blob_strings(blob):
    """The blob as OpenSSH's string fields (uint32 length, bytes), or None when it is not exactly that."""
    fields, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return None
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + length > len(blob):
            return None
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def parse_public_key(line, what="authorized_keys"):
    """One public key line -> ``type base64[ comment]``; ToilInputError with the reason otherwise."""
    if not isinstance(line, str):
        raise ToilInputError(f"{what}: {line!r} is not an OpenSSH public key line (a string).")
    text = line.strip(" \t\r\n")  # ends only; what remains is checked as a whole
    if len(text) > MAX_KEY_LINE:
        raise ToilInputError(f"{what}: {_shown(text)} is not an OpenSSH public key line: longer than {MAX_KEY_LINE} characters.")
    key_type, _sep, rest = text.partition(" ")
    data, _sep, comment = rest.partition(" ")

    def refuse(reason):
        raise ToilInputError(f"{what}: {_shown(text)} is not an OpenSSH public key line: {reason}.")

    if key_type not in KEY_TYPES:
        refuse(f"it must start with a key type ({', '.join(KEY_TYPES)}), without options")
    if not _BASE64.fullmatch(data) or len(data) % 4:
        refuse("the key is not base64")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        refuse("the key is not base64")
    if base64.b64encode(blob).decode("ascii") != data:
        refuse("the key is not canonical base64")
    fields = _blob_strings(blob)
    if not fields or fields[0] != key_type.encode("ascii"):
        refuse(f"the key's data is not a {key_type} key")
    if len(fields) != KEY_TYPES[key_type]:
        refuse(f"the key's data is not a {key_type} key")
    if key_type in _CURVES and fields[1] != _CURVES[key_type].encode("ascii"):
        refuse(f"the key's data is not a {key_type} key")
    if "ed25519" in key_type and len(fields[1]) != 32:
        refuse(f"the key's data is not a {key_type} key")
    if not _COMMENT.fullmatch(comment):
        refuse("the comment may only hold printable ASCII characters (no line breaks or control characters)")
    return f"{key_type} {data} {comment}" if comment else f"{key_type} {data}"


def parse_authorized_keys(lines, what="authorized_keys"):
    """A list of key lines -> a tuple of checked lines (empty entries refused)."""
    if lines is None:
        return ()
    if isinstance(lines, str) or not isinstance(lines, (list, tuple)):
        raise ToilInputError(f"{what}: a list of OpenSSH public key lines is needed.")
    return tuple(parse_public_key(line, what) for line in lines)


def authorized_keys_user_data(keys):
    """cloud-config that installs ``keys`` for the default user, or None without keys.

    Written by a serialiser, never by templating: JSON is YAML (1.2, and what PyYAML's safe_load, which
    cloud-init's util.load_yaml uses, reads back as the same mapping), and the standard library has it, so this
    runs on a leader without PyYAML. ensure_ascii keeps every character an escape or printable ASCII.
    """
    checked = [parse_public_key(key) for key in keys or ()]
    if not checked:
        return None
    return "#cloud-config\n" + json.dumps({"ssh_authorized_keys": checked}, ensure_ascii=True, indent=1) + "\n"
