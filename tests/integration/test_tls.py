# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewd refuses a portal whose TLS certificate is wrong, both when it
asks about renewals (the status poll) and when it renews (CMP over
HTTPS), and goes on once the portal is right again.

The reference portal serves whatever is in its folder's tls.pem and
tls.key when it starts; here it is restarted, on the same port, with:

  wrong-host  a certificate by the portal's own CA for DNS:portal.invalid
              only (keyrenewd connects to 127.0.0.1);
  untrusted   a certificate for IP:127.0.0.1 by a CA keyrenewd's CABundle
              does not hold;
  expired     a certificate by the portal's own CA for IP:127.0.0.1 that
              ended in 2021.

Each case: keyrenewd learns of an approved order from the healthy portal;
the portal comes back with the bad certificate; Renew() fails with
PortalError after the card steps, the portal has issued nothing, the
renewal stays resumable; a restarted keyrenewd's status poll fails
(PortalState "failing", PortalError saying why) and the order it knew is
kept; the portal healthy again, Renew() resumes and finishes.

What is covered elsewhere and not repeated: the status client's host
check and an untrusted server against tests/tools probes
(test_portal_client.py), an untrusted CMP server against the CMP probe
(test_cmp_client.py), an untrusted portal's status poll in keyrenewd
(test_daemon_portal.py; here it comes along in the same flow as the other
two). Needs root (the private pcscd)."""

import os

import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import run
from test_daemon_core import BUS_NAME, MANAGER, PATH
from test_renewal import Env, order_state, serial_of
from test_storms import journal, start_portal

# Our share of the TCP ports is 54000-54999: the portal comes back on this
# one (odd: see test_storms.PORTAL_PORT).
PORTAL_PORT = 54041
CA_CONF = """[ca]
default_ca = tls
[tls]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
"""


def server_cert(folder, name, ca_pem, ca_key, san, start, end):
    """A TLS server certificate (and its key) by ca for san, valid from
    start to end (YYYYMMDDHHMMSSZ), made with openssl ca."""
    folder.mkdir(exist_ok=True)
    (folder / "index.txt").touch()
    if not (folder / "serial").exists():
        (folder / "serial").write_text("1000\n")
    conf = folder / "ca.conf"
    conf.write_text(CA_CONF.format(dir=folder))
    ext = folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    key, csr, pem = (folder / f"{name}.{x}" for x in ("key", "csr", "pem"))
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         key, "-out", csr, "-subj", f"/CN={name}"])
    run(["openssl", "ca", "-batch", "-config", conf, "-cert", ca_pem, "-keyfile", ca_key, "-in", csr, "-out", pem,
         "-startdate", start, "-enddate", end, "-extfile", ext, "-notext"])
    return pem, key


def other_ca(folder):
    pem, key = folder / "other-ca.pem", folder / "other-ca.key"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         key, "-out", pem, "-days", "30", "-subj", "/CN=Not the portal's CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
    return pem, key


def bad_cert(env, case):
    folder = env.tmp / "tls"
    folder.mkdir(exist_ok=True)
    portal_ca = (env.portal.dir / "ca-ec.pem", env.portal.dir / "ca-ec.key")
    if case == "wrong-host":
        return server_cert(folder, case, *portal_ca, "DNS:portal.invalid", "20240101000000Z", "20991231000000Z")
    if case == "untrusted":
        return server_cert(folder, case, *other_ca(folder), "IP:127.0.0.1", "20240101000000Z",
                           "20991231000000Z")
    return server_cert(folder, case, *portal_ca, "IP:127.0.0.1", "20200101000000Z", "20210101000000Z")


class TlsEnv(Env):
    def __init__(self, tmp, bed):
        super().__init__(tmp, bed)
        url = self.portal.url
        tls = self.portal.dir
        self.good = ((tls / "tls.pem").read_bytes(), (tls / "tls.key").read_bytes())
        self.serve()
        self.config.write_text(self.config.read_text().replace(f"Url={url}\n", f"Url={self.portal.url}\n"))

    def serve(self, cert=None):
        """(Re)starts the portal on its port, with cert (pem, key) or its own."""
        if self.portal.proc:
            self.portal.stop()
        if cert:
            (self.portal.dir / "tls.pem").write_bytes(cert[0].read_bytes())
            (self.portal.dir / "tls.key").write_bytes(cert[1].read_bytes())
        else:
            (self.portal.dir / "tls.pem").write_bytes(self.good[0])
            (self.portal.dir / "tls.key").write_bytes(self.good[1])
        start_portal(self.portal, PORTAL_PORT)

    def manager(self):
        return self.bus.conn.get_object(BUS_NAME, PATH).GetAll(MANAGER, dbus_interface="org.freedesktop.DBus"
                                                                                      ".Properties")


@pytest.fixture
def env(tmp_path, pcsc_bed):
    e = TlsEnv(tmp_path, pcsc_bed)
    yield e
    e.close()


# What curl says about each, as keyrenewd passes it on.
WHY = {
    "wrong-host": "no alternative certificate subject name matches",
    "untrusted": "unable to get local issuer certificate",
    "expired": "certificate has expired",
}


@pytest.mark.parametrize("case", ["wrong-host", "untrusted", "expired"])
def test_bad_portal_certificate_is_refused(env, case):
    assert os.geteuid() == 0, "needs root: a private pcscd"
    state, pem = env.key(name=case)
    order = env.portal.approved_order(pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        checked = env.manager()["LastPortalCheck"]

        # The renewal: the card steps are done, CMP cannot begin.
        env.serve(bad_cert(env, case))
        res = env.renew(cert)
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.PortalError", res
        assert "renew again later" in res["message"], res["message"]
        assert WHY[case] in res["message"], res["message"]
        assert res["finished"][0][0] == "failed", res
        assert not env.portal.certs_for_order(order), "the portal must not have been reached"
        assert order_state(env, order) == "approved"
        assert journal(env, order).exists(), "the renewal must stay resumable"

        # The status poll of a keyrenewd that starts now.
        env.start()
        wait_for("the poll to fail", lambda: env.manager()["PortalState"] == "failing"
                 and env.manager()["LastPortalCheck"] > checked, 20)
        m = env.manager()
        assert not m["PortalReachable"]
        assert WHY[case] in m["PortalError"] and env.portal.url in m["PortalError"], m["PortalError"]
        assert env.props(cert, "org.keyrenew.KeyRenew1.Certificate")["RenewalState"] == "approved"

        # The portal as it should be: the renewal goes on from its journal.
        env.serve()
        res = env.renew(cert)
        assert res["ok"] and res["result"]["Resumed"], res
        assert order_state(env, order) == "installed" and len(env.portal.certs_for_order(order)) == 1
    finally:
        env.bed.remove(card.index)
