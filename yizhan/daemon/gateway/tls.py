"""Provides the SMTP listener's TLS: a self-signed certificate when none exists, and its context.

A bureau that has a certificate from its own CA points ``smtp.tls_cert``/``smtp.tls_key`` at it;
otherwise ``yizhan init`` makes a self-signed one so that STARTTLS (and with it AUTH from other
hosts) works from the first day. Mail clients then ask the user once to trust it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["ensure_certificate", "server_context"]

#: How long a generated certificate is valid.
VALIDITY = dt.timedelta(days=3650)


def ensure_certificate(cert: Path, key: Path, hostname: str) -> bool:
    """Create a self-signed certificate and key for ``hostname`` unless both files exist.

    The key is EC P-256, written with mode 0600; the certificate names ``hostname`` and
    127.0.0.1 as subject alternative names and is valid for ten years. Returns True if it
    created them. When only one of the two files exists, both are made anew: a certificate
    without its key (or the reverse) is of no use.
    """
    if cert.exists() and key.exists():
        return False
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(hostname),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    key_bytes = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    _write(key, key_bytes, mode=0o600)
    _write(cert, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return True


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) holding the certificate and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=cert, keyfile=key)
    return context


def _write(path: Path, data: bytes, *, mode: int) -> None:
    # The file is created with its final mode, so the key is never readable by others, not
    # even for a moment; it goes to a temporary name first so a crash leaves no half file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
