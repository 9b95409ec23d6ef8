"""A private Dovecot IMAP server on a loopback port: own config, own Maildir, a passwd-file user.

Nothing under /etc/dovecot is read or changed. As root, Dovecot runs mail processes as
nobody:nogroup, so the Maildir belongs to nobody and its parent directories are world-searchable.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.services import dovecot_binary, free_port, port_open

USER, PASSWORD = "intake", "intake-secret"

CONFIG = """\
instance_name = gateway-test-{port}
base_dir = {root}/run
state_dir = {root}/state
listen = 127.0.0.1
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
mail_location = maildir:{mail}/%u/Maildir
mail_uid = {mail_user}
mail_gid = {mail_group}
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 100
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  service_count = 0
  {login_chroot}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    def __init__(self, tls: bool = False) -> None:
        self.tls = tls
        binary = dovecot_binary()
        if binary is None:
            raise FileNotFoundError("dovecot")
        self.binary = binary
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.root = Path(tempfile.mkdtemp(prefix="gw-dovecot-"))
        self.root.chmod(0o755)
        self.mail = self.root / "mail"
        self.config = self.root / "dovecot.conf"
        self._mtime = 0.0

    @property
    def url(self) -> str:
        return f"imap://{USER}:{PASSWORD}@127.0.0.1:{self.port}/INBOX{self._query}"

    @property
    def _query(self) -> str:
        # The gateway requires TLS to an IMAP server unless the URL says otherwise (R6.7): a
        # plain server's URL says so; a TLS one's needs nothing (STARTTLS) or imaps://.
        return "" if self.tls else "?tls=none"

    def start(self) -> Dovecot:
        """Start the server (again, after `halt`, with the same files and port)."""
        if not self.config.exists():
            self._render()
        subprocess.run([self.binary, "-c", str(self.config)], check=True, timeout=30)
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start: {self.log()[-2000:]}")
            time.sleep(0.05)
        return self

    def _render(self) -> None:
        is_root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        names = {
            "mail_user": "nobody" if is_root else me,
            "mail_group": "nogroup" if is_root else me,
            "login_user": _user_or("dovenull", "nobody") if is_root else me,
            "internal_user": _user_or("dovecot", "nobody") if is_root else me,
            "login_chroot": "" if is_root else "chroot =",
        }
        (self.root / "run").mkdir()
        (self.root / "state").mkdir()
        for sub in ("cur", "new", "tmp"):
            (self.mail / USER / "Maildir" / sub).mkdir(parents=True)
        ssl_setting = "ssl = no"
        if self.tls:
            self._make_certificate()
            ssl_setting = (
                f"ssl = yes\nssl_cert = <{self.root}/cert.pem\nssl_key = <{self.root}/key.pem"
            )
        self.config.write_text(
            CONFIG.format(
                root=self.root,
                mail=self.mail,
                port=self.port,
                tls_port=self.tls_port,
                ssl=ssl_setting,
                **names,
            )
        )
        users = self.root / "users"
        users.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        users.chmod(0o644)
        if is_root:
            for path in (self.mail, *self.mail.rglob("*")):
                shutil.chown(path, "nobody", "nogroup")

    @property
    def ca_file(self) -> str:
        """The self-signed certificate, for clients to trust (tls=True only)."""
        return str(self.root / "cert.pem")

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(self.root / "key.pem"),
                "-out",
                str(self.root / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        (self.root / "key.pem").chmod(0o600)

    def add_user(self, name: str, password: str = "secret") -> str:
        """A fresh mailbox user (Dovecot re-reads the passwd-file); returns its imap:// URL
        (`?tls=none` on a server without TLS)."""
        maildir = self.mail / name / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (self.mail / name, *(self.mail / name).rglob("*")):
                shutil.chown(path, "nobody", "nogroup")
        users = self.root / "users"
        with users.open("a") as out:
            out.write(f"{name}:{{PLAIN}}{password}::::::\n")
        # Dovecot re-reads the passwd-file when its mtime changes; two users added within the
        # same second would otherwise leave the second one unknown for a while.
        self._mtime = max(self._mtime + 1, time.time())
        os.utime(users, (self._mtime, self._mtime))
        return f"imap://{name}:{password}@127.0.0.1:{self.port}/INBOX{self._query}"

    def halt(self) -> None:
        """Stop the server, keeping its files, so that `start` brings the same one back."""
        # SIGTERM is how Dovecot's master is told to stop (`doveadm stop` took 3 s more)
        if not self._signal_master(signal.SIGTERM):  # no pid file, or a master already gone
            subprocess.run(
                ["doveadm", "-c", str(self.config), "stop"],
                check=False,
                timeout=30,
                capture_output=True,
            )
        pid_file = self.root / "run" / "master.pid"
        deadline = time.monotonic() + 10
        while (pid_file.exists() or port_open("127.0.0.1", self.port)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        # Dovecot's master leaves the imap processes of open connections running (they were
        # handed the client's socket at login); a server that goes away takes them with it.
        self._kill_children()

    def stop(self) -> None:
        """Gone for good: its processes killed at once (halt waits a second for a clean stop)."""
        self._signal_master(signal.SIGKILL)
        self._kill_children()
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def _signal_master(self, signum: int) -> bool:
        """`signum` to the master process; False when there is none to signal."""
        try:
            pid = int((self.root / "run" / "master.pid").read_text().split()[0])
            os.kill(pid, signum)
        except (OSError, ValueError, IndexError):
            return False
        return True

    def _kill_children(self) -> None:
        """Every process of this instance but the master (their titles name its port)."""
        subprocess.run(
            ["pkill", "-KILL", "-f", f"^dovecot-gateway-test-{self.port}/"],
            check=False,
            timeout=30,
            capture_output=True,
        )

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _user_or(name: str, fallback: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return fallback
    return name
