"""Throw-away TLS material for local test servers (SeaweedFS S3 over HTTPS).

``make_ca_and_server_cert(dirpath)`` creates a self-signed CA and a server
certificate signed by it, valid for ``127.0.0.1`` (SAN IP), ``::1`` and
``localhost`` (SAN DNS). Nothing here is meant for real deployments.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["make_ca_and_server_cert"]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


def make_ca_and_server_cert(
    dirpath: Path | str,
    *,
    hostnames: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1", "::1"),
    days: int = 2,
) -> tuple[Path, Path, Path]:
    """Create ``ca.pem``, ``server.pem`` and ``server.key`` in *dirpath*.

    Returns ``(ca_pem_path, cert_path, key_path)``. ``ca_pem_path`` is the CA
    bundle to hand to clients (e.g. boto3 ``verify=``); ``cert_path`` /
    ``key_path`` are for the server. The server certificate file contains only
    the leaf certificate (the CA is not a chain intermediate, clients must
    trust it explicitly).
    """
    d = Path(dirpath)
    d.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC)
    not_before = now - _dt.timedelta(minutes=5)
    not_after = now + _dt.timedelta(days=days)

    ca_key = _key()
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devtools test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "devtools test root CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    srv_key = _key()
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cn = ip_addresses[0] if ip_addresses else hostnames[0]
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(srv_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = d / "ca.pem"
    cert_pem = d / "server.pem"
    key_pem = d / "server.key"
    _write(ca_pem, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(cert_pem, srv_cert.public_bytes(serialization.Encoding.PEM))
    _write(key_pem, _pem_key(srv_key), 0o600)
    return ca_pem, cert_pem, key_pem
