"""Test PKI for the TLS tests, made with `cryptography` in a temporary directory.

``make_pki(directory)`` writes every file the TLS tests need and returns their
paths and a few expected values (see ``Pki``):

* a CA that issues the server certificate (EC P-256 key; ``localhost`` and
  ``127.0.0.1``) and the client certificates;
* the same server key as PKCS#8, SEC1 and encrypted PKCS#8; an RSA server
  certificate whose key is also written as PKCS#1;
* client certificates: ``alice`` (valid), ``revoked`` (listed in ``crl.pem``),
  ``mallory`` (from another CA);
* an unrelated key (for the "key does not match the certificate" error).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_PASSWORD = "correct horse battery staple"

NOW = datetime.datetime.now(datetime.timezone.utc)
NOT_BEFORE = NOW - datetime.timedelta(days=1)
NOT_AFTER = NOW + datetime.timedelta(days=30)

# The subject of alice's certificate, in encoding order: a multi-valued RDN and
# values that need RFC 4514 escaping.
ALICE_SUBJECT = x509.Name([
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc.")]),
    x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Eng"),
        x509.NameAttribute(NameOID.USER_ID, "alice01"),
    ]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "alice <admin>")]),
])
# RFC 4514: RDNs last to first, "+" inside a multi-valued RDN (in encoded order:
# DER sorts a SET OF, and the shorter OU attribute sorts first).
ALICE_NAME = r"CN=alice \<admin\>,OU=Eng+UID=alice01,O=Example\, Inc.,C=FR"

REVOKED_SERIAL = 0x5EED


@dataclass
class Pki:
    dir: Path
    ca_cert: Path            # trusts the server and signs the client certificates
    other_ca_cert: Path      # unrelated CA (mallory's issuer)
    server_cert: Path        # EC server certificate
    server_key: Path         # its key as PKCS#8 "PRIVATE KEY"
    server_key_sec1: Path    # same key as SEC1 "EC PRIVATE KEY"
    server_key_encrypted: Path  # same key as "ENCRYPTED PRIVATE KEY", KEY_PASSWORD
    server_rsa_cert: Path    # RSA server certificate
    server_rsa_key: Path     # its key as PKCS#8
    server_rsa_key_pkcs1: Path  # its key as PKCS#1 "RSA PRIVATE KEY"
    unrelated_key: Path      # matches no certificate
    alice_cert: Path
    alice_key: Path
    revoked_cert: Path
    revoked_key: Path
    mallory_cert: Path
    mallory_key: Path
    crl: Path                # revokes REVOKED_SERIAL, signed by the CA
    server_cert_pem: str     # PEM text of the EC server certificate
    alice_cert_pem: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(cn: str):
    key = _ec_key()
    name = _name(cn)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca, subject: x509.Name, key, *, server: bool, serial: int | None = None):
    ca_cert, ca_key = ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key, fmt=serialization.PrivateFormat.PKCS8, password: str | None = None) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


def make_pki(directory: Path) -> Pki:
    """Writes the test PKI into `directory` and returns where everything is."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> Path:
        path = d / name
        path.write_bytes(data)
        return path

    ca = _ca("Cormorant Test CA")
    other_ca = _ca("Some Other CA")

    server_key = _ec_key()
    server_cert = _leaf(ca, _name("localhost"), server_key, server=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_cert = _leaf(ca, _name("localhost"), rsa_key, server=True)

    alice_key = _ec_key()
    alice_cert = _leaf(ca, ALICE_SUBJECT, alice_key, server=False)
    revoked_key = _ec_key()
    revoked_cert = _leaf(ca, _name("revoked"), revoked_key, server=False, serial=REVOKED_SERIAL)
    mallory_key = _ec_key()
    mallory_cert = _leaf(other_ca, _name("mallory"), mallory_key, server=False)

    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca[0].subject)
        .last_update(NOT_BEFORE)
        .next_update(NOT_AFTER)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(REVOKED_SERIAL)
            .revocation_date(NOT_BEFORE)
            .build()
        )
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False
        )
        .sign(ca[1], hashes.SHA256())
    )

    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL
    return Pki(
        dir=d,
        ca_cert=write("ca.pem", _cert_pem(ca[0])),
        other_ca_cert=write("other-ca.pem", _cert_pem(other_ca[0])),
        server_cert=write("server.pem", _cert_pem(server_cert)),
        server_key=write("server-key.pem", _key_pem(server_key)),
        server_key_sec1=write("server-key-sec1.pem", _key_pem(server_key, pkcs1)),
        server_key_encrypted=write(
            "server-key-encrypted.pem", _key_pem(server_key, password=KEY_PASSWORD)
        ),
        server_rsa_cert=write("server-rsa.pem", _cert_pem(rsa_cert)),
        server_rsa_key=write("server-rsa-key.pem", _key_pem(rsa_key)),
        server_rsa_key_pkcs1=write("server-rsa-key-pkcs1.pem", _key_pem(rsa_key, pkcs1)),
        unrelated_key=write("unrelated-key.pem", _key_pem(_ec_key())),
        alice_cert=write("alice.pem", _cert_pem(alice_cert)),
        alice_key=write("alice-key.pem", _key_pem(alice_key)),
        revoked_cert=write("revoked.pem", _cert_pem(revoked_cert)),
        revoked_key=write("revoked-key.pem", _key_pem(revoked_key)),
        mallory_cert=write("mallory.pem", _cert_pem(mallory_cert)),
        mallory_key=write("mallory-key.pem", _key_pem(mallory_key)),
        crl=write("crl.pem", crl.public_bytes(serialization.Encoding.PEM)),
        server_cert_pem=_cert_pem(server_cert).decode(),
        alice_cert_pem=_cert_pem(alice_cert).decode(),
    )
