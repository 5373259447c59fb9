"""Certificates (docs/operations.md, "Certificates and rotation"): a generated CA and serving certificate, and a
TLS context that reloads them.

The serving context is built once and kept for the life of the process; :class:`CertReloader` polls
``tls.crt``/``tls.key`` with :class:`webhook.reload.FileWatcher` (by content hash, so a Secret volume's
``..data`` symlink swap is seen as well as a plain rewrite) and loads a new pair into the *live* context after
checking it on a throwaway one. New connections get the new certificate; established ones keep theirs. A broken
pair is logged, counted and ignored: the last good pair keeps serving.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.reload import FileWatcher, fingerprint

log = logging.getLogger("vm_admission.certs")

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"
CA_VALIDITY = dt.timedelta(days=3650)
SERVING_VALIDITY = dt.timedelta(days=365)
EXPIRY_WARNING = dt.timedelta(days=30)
DEFAULT_NAMES = ("localhost", "127.0.0.1")
# TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only. TLS 1.3 suites are all AEAD and set separately.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1"


@dataclass(frozen=True, slots=True)
class KeyPair:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(common_name: str = "vm-admission CA", validity: dt.timedelta = CA_VALIDITY) -> KeyPair:
    """A self-signed P-256 CA that may only sign end-entity certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):  # dedupe, keep order
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def issue_cert(
    ca: KeyPair,
    names: Iterable[str],
    *,
    client: bool = False,
    validity: dt.timedelta = SERVING_VALIDITY,
    not_before: dt.datetime | None = None,
    organizations: Iterable[str] = (),
) -> KeyPair:
    """A P-256 leaf signed by ``ca``: a serving cert with SANs ``names``, or a client cert (``client=True``).

    ``organizations`` become the subject's O entries (Kubernetes reads them as a client's groups).
    """
    names = list(names)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or (_now() - dt.timedelta(minutes=5))
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
                + [x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "vm-admission")]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
    return KeyPair(key, builder.sign(ca.key, hashes.SHA256()))


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) with ``mode`` from creation on."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_pair(cert_dir: str | Path, ca: KeyPair, serving: KeyPair) -> None:
    """Write ``ca.crt``, ``tls.crt`` and ``tls.key`` (0600) into ``cert_dir``."""
    d = Path(cert_dir)
    d.mkdir(parents=True, exist_ok=True)
    _write(d / CA_FILE, ca.cert_pem(), 0o644)
    _write(d / KEY_FILE, serving.key_pem(), 0o600)
    _write(d / CERT_FILE, serving.cert_pem(), 0o644)


def ensure_certs(cert_dir: str | Path, dns_names: Iterable[str] = ()) -> bool:
    """Generate a CA and a serving cert into ``cert_dir`` unless ``tls.crt`` and ``tls.key`` exist.

    Returns True when files were generated. Existing files (cert-manager's, a Secret's) are never touched.
    """
    d = Path(cert_dir)
    if (d / CERT_FILE).exists() and (d / KEY_FILE).exists():
        return False
    ca = make_ca()
    serving = issue_cert(ca, [*DEFAULT_NAMES, *dns_names])
    write_pair(d, ca, serving)
    log.info("generated certificates", extra={"fields": {"certDir": str(d), "names": [*DEFAULT_NAMES, *dns_names]}})
    return True


def ca_bundle(cert_dir: str | Path) -> str:
    """The base64 of ``ca.crt``, as a webhook configuration's ``caBundle`` wants it."""
    return base64.b64encode((Path(cert_dir) / CA_FILE).read_bytes()).decode("ascii")


def server_context(cert_file: str | Path, key_file: str | Path, client_ca: str | Path | None = None) -> ssl.SSLContext:
    """TLS ≥ 1.2, ECDHE+AEAD suites for 1.2, ALPN http/1.1; client certificates required when ``client_ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    ctx.options |= ssl.OP_SINGLE_ECDH_USE
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(cert_file), str(key_file))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca))
    return ctx


def not_after(cert_file: str | Path) -> dt.datetime:
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return cert.not_valid_after_utc


class CertReloader:
    """Owns the live server :class:`ssl.SSLContext` and reloads its certificate when the files change.

    The files are watched by :class:`webhook.reload.FileWatcher` (the config's watcher too). ``on_reload(ok)`` is
    told of every attempt (for metrics). Call :meth:`check` periodically from the thread that runs the event
    loop: it is cheap when nothing changed (two small file reads and a hash).
    """

    def __init__(
        self,
        cert_dir: str | Path,
        client_ca: str | Path | None = None,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        d = Path(cert_dir)
        self.cert_file, self.key_file = d / CERT_FILE, d / KEY_FILE
        self.client_ca = Path(client_ca) if client_ca is not None else None
        self._on_reload = on_reload
        fingerprint((self.cert_file, self.key_file))  # unreadable files: OSError here, as before any TLS check
        errors = (OSError, ssl.SSLError, ValueError)
        self._watcher = FileWatcher((self.cert_file, self.key_file), self._load, self._loaded, self._rejected, errors)
        self.context = server_context(self.cert_file, self.key_file, self.client_ca)
        self.not_after = not_after(self.cert_file)
        self._warned_expiry = False
        self.check_expiry()

    def seconds_left(self) -> float:
        """Seconds until the serving certificate's notAfter (negative once expired)."""
        return (self.not_after - _now()).total_seconds()

    def check_expiry(self) -> None:
        left = self.seconds_left()
        if left < EXPIRY_WARNING.total_seconds():
            if not self._warned_expiry:
                log.warning(
                    "serving certificate expires soon; rotate tls.crt/tls.key",
                    extra={"fields": {"notAfter": self.not_after.isoformat(), "daysLeft": round(left / 86400, 1)}},
                )
                self._warned_expiry = True
        else:
            self._warned_expiry = False

    def check(self) -> bool | None:
        """Reload when the files changed: True reloaded, False rejected (old pair kept), None unchanged."""
        changed = self._watcher.check()
        if changed is None:
            self.check_expiry()
        return changed

    def _load(self) -> dt.datetime:
        """Check the new pair on a throwaway context, then load it into the live one; its notAfter."""
        try:
            fingerprint((self.cert_file, self.key_file))
        except OSError as exc:
            raise OSError(f"cannot read: {exc}") from None
        server_context(self.cert_file, self.key_file, self.client_ca)  # throwaway: validate the pair
        self.context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return not_after(self.cert_file)

    def _loaded(self, expiry: dt.datetime) -> None:
        self.not_after = expiry
        log.info("reloaded serving certificate", extra={"fields": {"notAfter": expiry.isoformat()}})
        if self._on_reload:
            self._on_reload(True)
        self.check_expiry()

    def _rejected(self, reason: str) -> None:
        log.error(
            "new certificate pair rejected; keeping the last good one",
            extra={"fields": {"certFile": str(self.cert_file), "error": reason}},
        )
        if self._on_reload:
            self._on_reload(False)
