"""What the verify playbooks check of an X.509 certificate, computed on the controller with ``cryptography``.

Reads ``{"cert": PEM, "issuer": PEM or null}`` as JSON on stdin and prints JSON: the subject's common names and
organizations, the DNS names of its subjectAltName, ``spki_sha256`` (``sha256:`` and the hex sha256 of the DER
SubjectPublicKeyInfo, as kubeadm's caCertHashes pin a CA) and ``issued_by_issuer`` (the issuer's key verified the
certificate's signature and the names chain; null when no issuer is given).
"""

from __future__ import annotations

import hashlib
import json
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization


def facts(cert_pem: str, issuer_pem: str | None) -> dict[str, object]:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        dns_names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    issued: bool | None = None
    if issuer_pem:
        try:
            cert.verify_directly_issued_by(x509.load_pem_x509_certificate(issuer_pem.encode()))
            issued = True
        except (ValueError, TypeError, InvalidSignature):
            issued = False
    return {
        "common_names": [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)],
        "organizations": [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)],
        "dns_names": dns_names,
        "spki_sha256": "sha256:" + hashlib.sha256(spki).hexdigest(),
        "issued_by_issuer": issued,
    }


if __name__ == "__main__":
    given = json.load(sys.stdin)
    print(json.dumps(facts(given["cert"], given.get("issuer"))))
