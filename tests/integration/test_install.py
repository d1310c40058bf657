# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenew installed as a distribution package installs it: a fresh
`meson setup` with --prefix=/usr --sysconfdir=/etc --localstatedir=/var,
built and `meson install --destdir` as an unprivileged user (as package
builds run, so no step may need root), then every file checked where the
ecosystem looks for it (pkg-config's systemd, dbus-1 and polkit-gobject-1
folders), its mode, what refers to what (the unit, the bus activation
file, the sysusers entry, the bus policy), and the installed tree run:
systemd-analyze, systemctl --root enable, systemd-sysusers --root, the
programs' --version, the installed keyrenewd on a bus that reads the
installed policy and activation file, keyrenewctl in Chinese from the
installed catalogue.

Needs root (to drop to an unprivileged user, and for the daemon's
private bus). Builds its own tree: KEYRENEW_BUILD_DIR is not used."""

import configparser
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest
from keyrenew_testbed import wait_for
from test_daemon_core import BUS_NAME, PrivateBus

TOP = pathlib.Path(__file__).resolve().parents[2]
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
LAYOUT = ["--prefix=/usr", "--sysconfdir=/etc", "--localstatedir=/var"]
# What Debian's debhelper adds: no optimisation flags of ours, no downloads.
DISTRO_OPTIONS = ["--buildtype=plain", "--wrap-mode=nodownload"]


def pc_var(package, variable):
    out = subprocess.run(["pkg-config", f"--variable={variable}", package], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("/"), f"pkg-config {package} has no {variable}"
    return out


def expected_files():
    """Installed path -> mode, where the ecosystem on this system wants it."""
    unitdir = pc_var("systemd", "systemdsystemunitdir")
    sysusersdir = pc_var("systemd", "sysusersdir")
    interfaces = pc_var("dbus-1", "interfaces_dir")
    services = pc_var("dbus-1", "system_bus_services_dir")
    actions = pc_var("polkit-gobject-1", "policydir")
    userunitdir = pc_var("systemd", "systemduserunitdir")
    return {
        "/usr/libexec/keyrenewd": 0o755,
        "/usr/bin/keyrenewctl": 0o755,
        "/usr/bin/keyrenew-tray": 0o755,
        f"{unitdir}/keyrenewd.service": 0o644,
        f"{sysusersdir}/keyrenew.conf": 0o644,
        "/usr/share/dbus-1/system.d/org.keyrenew.KeyRenew1.conf": 0o644,
        f"{services}/org.keyrenew.KeyRenew1.service": 0o644,
        f"{interfaces}/org.keyrenew.KeyRenew1.xml": 0o644,
        f"{actions}/org.keyrenew.policy": 0o644,
        "/usr/share/polkit-1/rules.d/org.keyrenew.rules": 0o644,
        "/etc/keyrenew/keyrenewd.conf": 0o644,
        "/usr/share/man/man1/keyrenewctl.1": 0o644,
        "/usr/share/man/man1/keyrenew-tray.1": 0o644,
        f"{userunitdir}/keyrenew-tray.service": 0o644,
        "/etc/xdg/autostart/keyrenew-tray.desktop": 0o644,
        "/usr/share/man/man5/keyrenewd.conf.5": 0o644,
        "/usr/share/man/man8/keyrenewd.8": 0o644,
        "/usr/share/locale/zh_CN/LC_MESSAGES/keyrenew.mo": 0o644,
    }


def allowed_roots():
    """/usr and /etc, and the unit folder pkg-config names (/lib/systemd/system
    on Debian 12, which has not finished moving it under /usr)."""
    return ["/usr", "/etc", pc_var("systemd", "systemdsystemunitdir")]


def run(args, check=True, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=kw.pop("timeout", 120), **kw)
    if check:
        assert proc.returncode == 0, (f"$ {' '.join(map(str, args))}\nexit status {proc.returncode}\n"
                                      f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def unit_entries(path):
    """A systemd unit as {section: [(key, value)]}: keys may repeat."""
    entries, section = {}, None
    for line in pathlib.Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            entries.setdefault(section, [])
            continue
        key, value = line.split("=", 1)
        entries[section].append((key.strip(), value.strip()))
    return entries


def unit_value(entries, section, key):
    values = [v for k, v in entries.get(section, []) if k == key]
    assert len(values) == 1, f"[{section}] {key}= given {len(values)} times"
    return values[0]


class Installed:
    """The tree meson installed into dest, built in build."""

    def __init__(self, top):
        self.top = top
        self.build = top / "build"
        self.dest = top / "dest"
        self.log = ""

    def path(self, installed):
        return self.dest / installed.lstrip("/")

    def installed_paths(self):
        """Every file, link and folder under dest, as installed paths."""
        return sorted("/" + str(p.relative_to(self.dest)) for p in self.dest.rglob("*"))

    def unit(self):
        return unit_entries(self.path(pc_var("systemd", "systemdsystemunitdir")) / "keyrenewd.service")

    def version(self):
        info = json.loads(run(["meson", "introspect", "--projectinfo", self.build]).stdout)
        return info["version"]


def as_builder(args):
    """Runs a build step the way a package build does: not as root."""
    return run([*UNPRIVILEGED, *args], timeout=1800, env=dict(os.environ, HOME="/nonexistent", LC_ALL="C.UTF-8"))


@pytest.fixture(scope="module")
def installed():
    assert os.geteuid() == 0, "needs root: to build as an unprivileged user and for the daemon's bus"
    top = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-install-"))
    top.chmod(0o755)
    inst = Installed(top)
    for d in (inst.build, inst.dest):
        d.mkdir()
        os.chown(d, 65534, 65534)
    try:
        as_builder(["meson", "setup", *LAYOUT, *DISTRO_OPTIONS, inst.build, TOP])
        # Only what is installed: the tests' programs are not part of it.
        targets = json.loads(run(["meson", "introspect", "--targets", inst.build]).stdout)
        outputs = [os.path.relpath(f, inst.build) for t in targets if t["installed"] for f in t["filename"]]
        as_builder(["ninja", "-C", inst.build, *outputs])
        proc = as_builder(["meson", "install", "-C", inst.build, "--no-rebuild", "--destdir", inst.dest])
        inst.log = proc.stdout + proc.stderr
        yield inst
    finally:
        shutil.rmtree(top)


def test_install_as_unprivileged_user_says_nothing_wrong(installed):
    assert "Installing" in installed.log
    bad = [line for line in installed.log.splitlines() if re.search(r"warning|error|fail|skip", line, re.I)]
    assert not bad, installed.log


def test_every_file_where_expected_with_its_mode(installed):
    expected = expected_files()
    files = {}
    for p in installed.installed_paths():
        st = installed.path(p).lstat()
        assert not stat.S_ISLNK(st.st_mode), f"{p} is a symbolic link"
        if stat.S_ISREG(st.st_mode):
            files[p] = stat.S_IMODE(st.st_mode)
        else:
            assert stat.S_ISDIR(st.st_mode), f"{p} is neither a file nor a folder"
            assert stat.S_IMODE(st.st_mode) == 0o755, f"folder {p} has mode {stat.S_IMODE(st.st_mode):o}"
    missing = sorted(set(expected) - set(files))
    extra = sorted(set(files) - set(expected))
    assert not missing and not extra, f"missing {missing}, not expected {extra}"
    wrong = {p: f"{m:o}" for p, m in files.items() if m != expected[p]}
    assert not wrong, f"modes (want {{{', '.join(f'{p}: {expected[p]:o}' for p in wrong)}}}): {wrong}"


def test_nothing_outside_the_prefixes(installed):
    roots = allowed_roots()
    for p in installed.installed_paths():
        inside = any(p == r or p.startswith(r + "/") or r.startswith(p + "/") for r in roots)
        assert inside, f"{p} is outside {roots}"
    assert not installed.path("/var").exists(), "the state folder is systemd's (StateDirectory=) to make"


def install_again(installed, name):
    """Installs into a second staging folder, so that the other tests keep theirs."""
    dest = installed.top / name
    if not dest.exists():
        dest.mkdir()
        os.chown(dest, 65534, 65534)
    as_builder(["meson", "install", "-C", installed.build, "--no-rebuild", "--destdir", dest])
    return dest


def test_uninstall_leaves_only_the_configuration(installed):
    # docs/install.md's way to remove it.
    dest = install_again(installed, "dest-uninstall")
    assert any(p.is_file() for p in dest.rglob("*"))
    as_builder(["ninja", "-C", installed.build, "uninstall"])
    left = [str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir()] if dest.exists() else []
    assert left == ["etc/keyrenew/keyrenewd.conf"]


def test_reinstall_keeps_the_admins_configuration(installed):
    dest = install_again(installed, "dest-reinstall")
    conf = dest / "etc/keyrenew/keyrenewd.conf"
    mine = conf.read_text().replace("\n#Url=\n", "\nUrl=https://portal.example/\n")
    assert "\nUrl=https" in mine
    conf.write_text(mine)
    install_again(installed, "dest-reinstall")
    assert conf.read_text() == mine
    conf.unlink()
    install_again(installed, "dest-reinstall")
    assert conf.read_bytes() == (TOP / "daemon" / "keyrenewd.conf").read_bytes()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644


def test_installed_programs_run_from_destdir(installed):
    version = installed.version()
    for program in ("/usr/libexec/keyrenewd", "/usr/bin/keyrenewctl", "/usr/bin/keyrenew-tray"):
        binary = installed.path(program)
        out = run([binary, "--version"], env=dict(os.environ, LANGUAGE="C", LC_ALL="C.UTF-8")).stdout
        assert out == f"{binary.name} {version}\n"
        # meson drops the build tree's run paths on install; none may be left.
        dynamic = run(["readelf", "-d", binary]).stdout
        assert "RPATH" not in dynamic and "RUNPATH" not in dynamic, dynamic


def test_unit_activation_file_policy_and_sysusers_agree(installed):
    unit = installed.unit()
    exec_start = unit_value(unit, "Service", "ExecStart")
    user = unit_value(unit, "Service", "User")
    assert exec_start in ("/usr/libexec/keyrenewd", "/usr/sbin/keyrenewd")
    assert exec_start in expected_files() and installed.path(exec_start).is_file()
    assert unit_value(unit, "Service", "Group") == user
    assert unit_value(unit, "Service", "BusName") == BUS_NAME
    assert unit_value(unit, "Service", "StateDirectory") == "keyrenew"
    assert unit_value(unit, "Service", "ConfigurationDirectory") == "keyrenew"
    assert installed.path("/etc/keyrenew/keyrenewd.conf").is_file()

    activation = configparser.ConfigParser(interpolation=None)
    activation.optionxform = str
    activation.read(installed.path(pc_var("dbus-1", "system_bus_services_dir")) / f"{BUS_NAME}.service")
    service = activation["D-BUS Service"]
    assert service["Name"] == BUS_NAME
    assert service["Exec"] == exec_start, "the activation file starts another program than the unit"
    assert service["User"] == user, "the activation file runs as another user than the unit"
    assert service["SystemdService"] == unit_value(unit, "Install", "Alias")

    sysusers = installed.path(pc_var("systemd", "sysusersdir")) / "keyrenew.conf"
    lines = [line.split() for line in sysusers.read_text().splitlines() if line and not line.startswith("#")]
    assert [(w[0], w[1], w[-1]) for w in lines] == [("u", user, "/var/lib/keyrenew")]

    policy = ET.parse(installed.path("/usr/share/dbus-1/system.d/org.keyrenew.KeyRenew1.conf")).getroot()
    owners = {p.get("user") for p in policy.iter("policy") if p.find(f"allow[@own='{BUS_NAME}']") is not None}
    assert owners == {"root", user}


def scratch_root(installed):
    """A copy of the installed tree with this system's own units beside it,
    so that systemd's tools can follow the unit's dependencies."""
    root = installed.top / "root"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(installed.dest, root, symlinks=True)
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    return root


def test_systemd_analyze_verify_in_the_installed_tree(installed):
    root = scratch_root(installed)
    proc = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", "keyrenewd.service"], check=False)
    # verify says nothing when all is well, and exits 0 on unknown keys.
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr

    # The check is real: without the program ExecStart names it complains.
    root.joinpath("usr/libexec/keyrenewd").unlink()
    proc = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", "keyrenewd.service"], check=False)
    assert proc.returncode != 0 and "keyrenewd" in proc.stderr


def test_sandbox_exposure_no_worse_than_documented(installed):
    documented = re.search(r"exposure \*\*([0-9.]+)\*\*", (TOP / "docs" / "security.md").read_text())
    assert documented, "docs/security.md quotes the exposure as **N.N**"
    root = scratch_root(installed)
    out = run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", "keyrenewd.service"]).stdout
    found = re.search(r"Overall exposure level for keyrenewd.service: ([0-9.]+)", out)
    assert found, out
    assert float(found.group(1)) <= float(documented.group(1)), out


def test_enable_makes_the_bus_alias_and_sysusers_the_user(installed):
    root = scratch_root(installed)
    unitdir = pc_var("systemd", "systemdsystemunitdir")
    alias = root / "etc/systemd/system/dbus-org.keyrenew.KeyRenew1.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/keyrenewd.service"

    run(["systemctl", f"--root={root}", "enable", "keyrenewd.service"])
    assert os.readlink(alias) == f"{unitdir}/keyrenewd.service"
    assert os.readlink(wants) == f"{unitdir}/keyrenewd.service"
    run(["systemctl", f"--root={root}", "disable", "keyrenewd.service"])
    assert not alias.is_symlink() and not wants.is_symlink()

    run(["systemd-sysusers", f"--root={root}"])
    passwd = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    [entry] = [e for e in passwd if e[0] == "keyrenew"]
    assert entry[5:] == ["/var/lib/keyrenew", "/usr/sbin/nologin"]
    assert 0 < int(entry[2]) < 1000, "a system user"


def test_xml_files_are_valid(installed):
    policy = installed.path("/usr/share/dbus-1/system.d/org.keyrenew.KeyRenew1.conf")
    interface = installed.path(pc_var("dbus-1", "interfaces_dir")) / f"{BUS_NAME}.xml"
    actions = installed.path(pc_var("polkit-gobject-1", "policydir")) / "org.keyrenew.policy"
    # dbus's busconfig.dtd lacks send_destination and friends: well-formed only.
    run(["xmllint", "--noout", "--nonet", policy])
    # The others against their DTDs, found through the XML catalogue.
    run(["xmllint", "--noout", "--nonet", "--valid", interface, actions])

    defaults = {a.get("id"): {d.tag: d.text for d in a.find("defaults")}
                for a in ET.parse(actions).getroot().iter("action")}
    assert defaults == {
        "org.keyrenew.renew": {"allow_any": "no", "allow_inactive": "no", "allow_active": "yes"},
        "org.keyrenew.manage": {"allow_any": "auth_admin", "allow_inactive": "auth_admin",
                                "allow_active": "auth_admin_keep"},
    }


INHIBIT_ACTIONS = ["org.freedesktop.login1.inhibit-block-sleep", "org.freedesktop.login1.inhibit-block-shutdown"]


POLKIT_BUS_POLICY = """  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
"""


def process_uid(pid):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


class PrivatePolkit:
    """The system's polkitd on a private bus, in a mount namespace where it
    reads only the given rules and a passwd that has a user keyrenew."""

    def __init__(self, tmp, rules, passwd):
        # polkitd becomes the user polkitd: the bus must let it in and reach.
        self.top = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-polkit-"))
        self.top.chmod(0o755)
        self.bus = self.proc = None
        try:
            self.bus = PrivateBus(self.top, bus_type="system", policy=POLKIT_BUS_POLICY)
            self.bus.dir.chmod(0o755)
            empty = tmp / "no-admin-rules"
            empty.mkdir()
            self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address)
            self.log = open(tmp / "polkitd.log", "wb")
            self.proc = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 f"mount --bind '{passwd}' /etc/passwd && mount --bind '{rules}' /usr/share/polkit-1/rules.d && "
                 f"mount --bind '{empty}' /etc/polkit-1/rules.d && exec /usr/lib/polkit-1/polkitd --no-debug"],
                stdout=self.log, stderr=self.log, env=self.env)
            wait_for("polkitd on the bus", lambda: self.running() and
                     self.bus.conn.name_has_owner("org.freedesktop.PolicyKit1"))
        except BaseException:
            self.stop()
            raise

    def running(self):
        assert self.proc.poll() is None, "polkitd exited"
        return True

    def allowed(self, uid, action):
        """Whether a process of uid, outside any session, may do action."""
        subject = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                                    "sleep", "60"])
        try:
            # polkit always authorizes uid 0: ask only once setpriv has dropped root.
            wait_for("the subject to run as the user", lambda: process_uid(subject.pid) == uid)
            proc = run(["pkcheck", "--action-id", action, "--process", str(subject.pid)], check=False,
                       env=self.env)
            assert proc.returncode in (0, 1), proc.stdout + proc.stderr
            return proc.returncode == 0
        finally:
            subject.kill()
            subject.wait()

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.bus:
            self.bus.stop()
        shutil.rmtree(self.top)


def test_polkit_rule_lets_keyrenewd_hold_off_sleep_and_shutdown(installed, tmp_path):
    # keyrenewd asks logind for a block inhibitor while it writes a card;
    # logind asks polkit, which by default refuses callers outside a session.
    passwd = tmp_path / "passwd"
    lines = pathlib.Path("/etc/passwd").read_text().splitlines()
    entry = [line for line in lines if line.startswith("keyrenew:")]
    if not entry:
        uid = next(u for u in range(64900, 65000) if f":{u}:" not in "\n".join(lines))
        entry = [f"keyrenew:x:{uid}:{uid}:keyrenew:/var/lib/keyrenew:/usr/sbin/nologin"]
        lines += entry
    keyrenew_uid = int(entry[0].split(":")[2])
    passwd.write_text("\n".join(lines) + "\n")

    system_rules = sorted(pathlib.Path("/usr/share/polkit-1/rules.d").glob("*.rules"))
    for with_ours in (False, True):
        rules = tmp_path / f"rules-{with_ours}"
        rules.mkdir()
        for f in system_rules:
            if f.name != "org.keyrenew.rules":
                shutil.copy(f, rules)
        if with_ours:
            shutil.copy(installed.path("/usr/share/polkit-1/rules.d/org.keyrenew.rules"), rules)
        (tmp_path / f"pk-{with_ours}").mkdir()
        polkit = PrivatePolkit(tmp_path / f"pk-{with_ours}", rules, passwd)
        try:
            for action in INHIBIT_ACTIONS:
                assert polkit.allowed(keyrenew_uid, action) == with_ours, action
            # Nothing more than these two.
            assert not polkit.allowed(keyrenew_uid, "org.freedesktop.login1.inhibit-handle-lid-switch")
            # Nobody else outside a session gets it.
            assert not polkit.allowed(65534, INHIBIT_ACTIONS[1])
        finally:
            polkit.stop()


def test_config_is_where_keyrenewd_looks(installed):
    conf = installed.path("/etc/keyrenew/keyrenewd.conf")
    assert conf.read_bytes() == (TOP / "daemon" / "keyrenewd.conf").read_bytes()
    out = run([installed.path("/usr/libexec/keyrenewd"), "--help"],
              env=dict(os.environ, LANGUAGE="C", LC_ALL="C.UTF-8")).stdout
    assert "read FILE instead of /etc/keyrenew/keyrenewd.conf\n" in out


def test_man_pages_are_troff_in_their_sections(installed):
    for page in ("man1/keyrenewctl.1", "man5/keyrenewd.conf.5", "man8/keyrenewd.8"):
        path = installed.path("/usr/share/man/" + page)
        name, section = path.name.rsplit(".", 1)
        text = path.read_text()
        assert re.search(rf'^\.TH "{re.escape(name)}" "{section}"', text, re.M | re.I), text[:300]
        proc = run(["groff", "-man", "-Tutf8", "-ww", "-z", path])
        assert not proc.stderr, proc.stderr


def test_catalogue_is_used_from_the_installed_tree(installed):
    mo = installed.path("/usr/share/locale/zh_CN/LC_MESSAGES/keyrenew.mo")
    assert "msgstr" in run(["msgunfmt", mo]).stdout
    ctl = installed.path("/usr/bin/keyrenewctl")
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="", KEYRENEW_LOCALEDIR=str(installed.path("/usr/share/locale")))
    english = run([ctl, "--help"], env=dict(env, LANGUAGE="C")).stdout
    chinese = run([ctl, "--help"], env=dict(env, LANGUAGE="zh_CN")).stdout
    assert english != chinese and re.search("[\u4e00-\u9fff]", chinese), chinese


# A system bus's defaults, then whatever the installed folders hold.
def installed_bus_config(installed):
    return f"""  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <servicedir>{installed.path(pc_var("dbus-1", "system_bus_services_dir"))}</servicedir>
  <includedir>{installed.path("/usr/share/dbus-1/system.d")}</includedir>
"""


def test_installed_daemon_on_a_bus_with_the_installed_policy(installed, tmp_path):
    bus = PrivateBus(tmp_path, bus_type="system", policy=installed_bus_config(installed))
    daemon = None
    try:
        activatable = bus.conn.list_activatable_names()
        assert BUS_NAME in activatable, "dbus-daemon did not read the installed activation file"
        assert not bus.conn.name_has_owner(BUS_NAME)

        # As root (the policy lets root own the name too), with the installed
        # configuration file and no pcscd at all.
        env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.comm"), LANGUAGE="C",
                   LC_ALL="C.UTF-8")
        env.pop("NOTIFY_SOCKET", None)
        log = open(tmp_path / "keyrenewd.log", "wb")
        daemon = subprocess.Popen(
            [installed.path("/usr/libexec/keyrenewd"), "--bus", bus.address, "--log-target", "stderr",
             "--config", installed.path("/etc/keyrenew/keyrenewd.conf"), "--state-dir", tmp_path / "state"],
            stdout=log, stderr=log, env=env)

        def owned():
            assert daemon.poll() is None, (tmp_path / "keyrenewd.log").read_text()
            return bus.conn.name_has_owner(BUS_NAME)
        wait_for(f"{BUS_NAME} on the bus", owned)

        ctl = [installed.path("/usr/bin/keyrenewctl"), f"--bus={bus.address}", "--json"]
        status = json.loads(run(ctl, env=env).stdout)
        assert status["Version"] == installed.version()
        assert status["PortalState"] == "not-configured"
        wait_for("PcscState no-service",
                 lambda: json.loads(run(ctl, env=env).stdout)["PcscState"] == "no-service")
    finally:
        if daemon:
            daemon.terminate()
            assert daemon.wait(timeout=10) == 0, (tmp_path / "keyrenewd.log").read_text()
        bus.stop()
