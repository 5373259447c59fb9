"""Generated certificates: what ``vm-admission certs`` and ``serve`` write, and what they are good for."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from webhook import certs
from webhook.cli import main


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certs_command_writes_ca_and_serving_pair_and_prints_the_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    rc = main(
        ["certs", "--dns-name", "vm-admission.vm-admission.svc", "--dns-name", "hooks.example", "--out", str(out)]
    )
    assert rc == 0
    printed = capsys.readouterr().out.strip()
    assert base64.b64decode(printed) == (out / "ca.crt").read_bytes()
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600

    ca, leaf = _load(out / "ca.crt"), _load(out / "tls.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "vm-admission.vm-admission.svc", "hooks.example"}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    now = dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=364) < leaf.not_valid_after_utc - now <= dt.timedelta(days=366)
    assert dt.timedelta(days=3649) < ca.not_valid_after_utc - now <= dt.timedelta(days=3651)


def test_existing_certificates_are_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs.ensure_certs(tmp_path, ["a.example"]) is True
    before = {name: (tmp_path / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key")}
    assert main(["certs", "--dns-name", "b.example", "--out", str(tmp_path)]) == 0
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert "left unchanged" in capsys.readouterr().err


def test_server_context_accepts_the_generated_pair_and_rejects_a_mismatched_one(tmp_path: Path) -> None:
    certs.ensure_certs(tmp_path / "a")
    certs.ensure_certs(tmp_path / "b")
    certs.server_context(tmp_path / "a" / "tls.crt", tmp_path / "a" / "tls.key")
    with pytest.raises(Exception, match=r"(?i)key values mismatch"):
        certs.server_context(tmp_path / "a" / "tls.crt", tmp_path / "b" / "tls.key")


def test_reloader_warns_when_the_serving_cert_expires_within_30_days(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = certs.make_ca()
    leaf = certs.issue_cert(ca, ["localhost"], validity=dt.timedelta(days=10))
    certs.write_pair(tmp_path, ca, leaf)
    with caplog.at_level("WARNING", logger="vm_admission.certs"):
        reloader = certs.CertReloader(tmp_path)
    assert 9 * 86400 < reloader.seconds_left() <= 10 * 86400
    assert any("expires soon" in r.getMessage() for r in caplog.records)


def test_reloader_does_not_warn_for_a_fresh_cert(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs.ensure_certs(tmp_path)
    with caplog.at_level("WARNING", logger="vm_admission.certs"):
        certs.CertReloader(tmp_path)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_reloader_keeps_the_last_good_pair_and_reports_each_attempt(tmp_path: Path) -> None:
    results: list[bool] = []
    ca = certs.make_ca()
    certs.write_pair(tmp_path, ca, certs.issue_cert(ca, ["localhost"]))
    reloader = certs.CertReloader(tmp_path, on_reload=results.append)
    assert reloader.check() is None  # unchanged
    good = certs.issue_cert(ca, ["localhost"], validity=dt.timedelta(days=90))
    certs.write_pair(tmp_path, ca, good)
    assert reloader.check() is True
    assert reloader.seconds_left() < 91 * 86400
    other = certs.issue_cert(ca, ["localhost"])
    (tmp_path / "tls.crt").write_bytes(other.cert_pem())  # key no longer matches
    assert reloader.check() is False
    assert reloader.check() is False  # still broken: not reported twice
    assert results == [True, False]
    assert reloader.seconds_left() < 91 * 86400  # the 90-day cert is still the one in use
