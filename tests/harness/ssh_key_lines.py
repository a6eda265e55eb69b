"""OpenSSH public key lines for the tests of issue #16 (point 3): real keys of every accepted type, and crafted lines
(a valid key followed by cloud-config, options, wrong blobs) that must be refused."""

from __future__ import annotations

import base64
import struct

# Made by ssh-keygen 9.2 (-C me@host).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIve15EbVdcnoqsbxij3RkWlH+w6ir6lGNs2noJH7ahV me@host"
RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDRQrZDO3h2YJPAMVyvAoGoAyuzbUQBbV3hQSAHuZwpjcHpPW7fGLfUjAzmodLE/GgjgP1Vk9kQ9oGrfFfGh7ZTjcA6ictOAjFbi29ov"
    "qhgWPKYzrNFAC0VBlvbQYVCiPydcHhHkf75BlUb5Ae1qlupAjibVKQyr6o7xAp/uc9f4w== me@host"
)
ECDSA256 = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI9MQH2SfZLKLs6swTfU1wE11ca90LQTqf9plDkh5qxMRY78tGr9Mm2TRuqhPTyeXXTN"
    "Dq46IpULCeOqYXl20PY= me@host"
)
ECDSA521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAB343wCXVUfL7YyNzWZCGeifn2FWOUjb1toNTniWfoFgsCTzmYKUKS7UUJc/3JeGq3WUbR"
    "M081X52HxOB6Scfiw3wEPdkonyIAzuPiI2Zi9nG4kqpQFCNMC5Gw5ofoLXh2qfcFR10zkaCAfthG1ppQuL0BK9bP023QIc7bpKgqwhD9W1Q== x"
)


def blob(*fields):
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


SK_ED25519 = "sk-ssh-ed25519@openssh.com " + blob(b"sk-ssh-ed25519@openssh.com", b"k" * 32, b"ssh:")
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com " + blob(b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + b"p" * 64, b"ssh:")
ECDSA384 = "ecdsa-sha2-nistp384 " + blob(b"ecdsa-sha2-nistp384", b"nistp384", b"\x04" + b"p" * 96)
VALID_KEYS = [ED25519, RSA, ECDSA256, ECDSA521, ECDSA384, SK_ED25519, SK_ECDSA, ED25519.rsplit(" ", 1)[0], ED25519 + " with spaces: and colons"]

# A valid key, then something for cloud-init: each a line break YAML (1.1, PyYAML) or a shell would honour.
PAYLOAD = "runcmd: [touch /root/pwned]"
ATTACK_KEYS = {
    "carriage return": f"{ED25519}\r{PAYLOAD}",
    "crlf": f"{ED25519}\r\n{PAYLOAD}",
    "newline": f"{ED25519}\n{PAYLOAD}",
    "newline, indented list item": f"{ED25519}\n  - {ED25519}\n{PAYLOAD}",
    "next line (U+0085)": f"{ED25519}\x85{PAYLOAD}",
    "line separator (U+2028)": f"{ED25519}\u2028{PAYLOAD}",
    "paragraph separator (U+2029)": f"{ED25519}\u2029{PAYLOAD}",
    "document end marker": f"{ED25519}\n...\n---\n{PAYLOAD}",
    "vertical tab": f"{ED25519}\x0b{PAYLOAD}",
    "form feed": f"{ED25519}\x0c{PAYLOAD}",
    "nul": f"{ED25519}\x00{PAYLOAD}",
    "tab in comment": f"{ED25519}\tx",
    "delete": f"{ED25519}\x7f",
    "non-ASCII comment": f"{ED25519} caf\u00e9",
    "options prefix": f'command="touch /root/pwned" {ED25519}',
    "restrict option": f"restrict {ED25519}",
    "unknown type": ED25519.replace("ssh-ed25519", "ssh-ed448", 1),
    "DSA": "ssh-dss " + blob(b"ssh-dss", b"p", b"q", b"g", b"y"),
    "type and blob disagree": "ssh-rsa " + ED25519.split()[1],
    "blob of another type": "ssh-ed25519 " + blob(b"ssh-rsa", b"\x01\x00\x01", b"n"),
    "ed25519 key of the wrong size": "ssh-ed25519 " + blob(b"ssh-ed25519", b"k" * 31),
    "trailing bytes in the blob": "ssh-ed25519 " + blob(b"ssh-ed25519", b"k" * 32, b"extra"),
    "truncated blob": "ssh-ed25519 " + base64.b64encode(base64.b64decode(ED25519.split()[1])[:-3]).decode(),
    "curve disagrees": "ecdsa-sha2-nistp256 " + blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"p" * 64),
    "not base64": "ssh-ed25519 AAAA:not-base64",
    "base64 with a newline": ED25519.replace("AAAAC3Nza", "AAAAC3\nNza", 1),
    "non-canonical base64": RSA.replace("4w== ", "4x== ", 1),  # padding bits set: decodes, but not what ssh-keygen writes
    "no data": "ssh-ed25519",
    "empty": "",
    "yaml flow": '{"ssh_authorized_keys": []}',
    "two spaces before the data": ED25519.replace(" ", "  ", 1),
}
