# HTTPS through libmicrohttpd: a self-signed certificate made here with the openssl CLI; the
# API answers over TLS and plain HTTP on that port gets nothing useful.
import subprocess

import pytest
import requests

from helpers import fixture_image


@pytest.fixture
def cert(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/CN=localhost", "-days", "1",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(crt)], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return str(crt), str(key)


def test_https(daemon, cert):
    crt, key = cert
    d = daemon("--tls-cert", crt, "--tls-key", key, tls_ca=crt)
    assert d.base.startswith("https://localhost:")
    r = d.get("/healthz")
    assert r.status_code == 200
    d.create_product("tls")
    r = d.inspect("tls", fixture_image("02_scratch.png"), "image/png")
    assert r.status_code == 200 and 0 <= r.json()["score"] <= 1, r.text
    # Plain HTTP to the TLS port: refused or garbage, never an answer.
    try:
        plain = requests.get("http://127.0.0.1:%d/healthz" % d.port, timeout=5)
        assert plain.status_code != 200, "plain HTTP answered 200 on the TLS port"
    except requests.RequestException:
        pass
    # Without the certificate as trust anchor the client refuses the server.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(d.base + "/healthz", timeout=5, verify=True)
    d.assert_serving()
