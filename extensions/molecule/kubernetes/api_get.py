"""GET a path from the control plane's API server as admin.conf's user (a client certificate of the cluster CA).

Run on the leader by the verify playbooks (ansible.builtin.script): prints the JSON answer.
"""

import base64
import re
import ssl
import sys
import tempfile
import urllib.request

text = open("/etc/kubernetes/admin.conf").read()  # noqa: PTH123, SIM115 - the remote Python is the host's, no pathlib needed


def field(key: str) -> str:
    return re.search(r"^\s*" + key + r":\s*(\S+)", text, re.MULTILINE).group(1)


context = ssl.create_default_context(cadata=base64.b64decode(field("certificate-authority-data")).decode())
with tempfile.NamedTemporaryFile("wb") as pem:
    pem.write(base64.b64decode(field("client-certificate-data")) + b"\n" + base64.b64decode(field("client-key-data")))
    pem.flush()
    context.load_cert_chain(pem.name)
with urllib.request.urlopen(field("server") + sys.argv[1], context=context, timeout=10) as answer:  # noqa: S310 - the API server of admin.conf
    print(answer.read().decode())
