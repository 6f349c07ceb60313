# pytest wiring of the API tests: the `daemon` factory (real inspectd processes on free
# loopback ports, fresh state dirs, SIGTERM + exit 0 checked at teardown) and the one-line
# "N passed, N failed" summary that tests/run adds up across test binaries.
import os
import sys
import stat

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pytest_counts  # noqa: E402 (tests/pytest_counts.py)

import helpers


def pytest_configure(config):
    missing = [p for p in (helpers.daemon_bin(), helpers.inspect_bin()) if not os.path.exists(p)]
    if missing:
        # Not a skip: every test will fail on it, loudly.
        print("API tests: missing binaries %s (set INSPECTD_BIN / INSPECT_BIN)" % missing)


def daemon_env(extra=None):
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(extra or {})
    return env


class DaemonFactory:
    """daemon(*args, state_dir=None, key=None, tls_ca=None, env=None) -> a started Daemon.
    Unless a keys file is among the args, authentication is off (--auth none)."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.started = []

    def __call__(self, *args, state_dir=None, key=None, tls_ca=None, env=None, start=True,
                 ready_timeout=30):
        args = list(args)
        if "--keys-file" not in args and "--auth" not in args:
            args = ["--auth", "none"] + args
        n = len(self.started) + 1
        if state_dir is None:
            state_dir = os.path.join(self.workdir, "state%d" % n)
        d = helpers.Daemon(self.workdir, args, state_dir, env=daemon_env(env), key=key,
                           tls_ca=tls_ca, name="inspectd%d" % n)
        self.started.append(d)
        if start:
            d.start(ready_timeout)
        return d

    def teardown(self):
        problems = []
        for d in self.started:
            if d.running():
                rc = d.stop(20)
                if rc != 0:
                    problems.append("%s: exit %r on SIGTERM (expected 0 within 20 s)\n%s" % (
                        d.name, rc, d.log_tail()))
            bad = [c for c in d.exit_codes if c != 0]
            if bad and not problems:
                problems.append("%s: earlier SIGTERM exits %r\n%s" % (d.name, bad, d.log_tail()))
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def daemon(tmp_path):
    f = DaemonFactory(tmp_path)
    yield f
    f.teardown()


@pytest.fixture(scope="module")
def module_daemon(tmp_path_factory):
    """One daemon (auth off, defaults) shared by the tests of a module."""
    f = DaemonFactory(tmp_path_factory.mktemp("shared"))
    yield f()
    f.teardown()


@pytest.fixture
def keys(tmp_path):
    """A keys file with one admin and one inspect key (mode 0600): (path, admin, inspect)."""
    admin = "admin-" + os.urandom(16).hex()
    insp = "inspect-" + os.urandom(16).hex()
    path = tmp_path / "keys"
    path.write_text("# test keys\nadmin %s\ninspect %s\n" % (admin, insp))
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return str(path), admin, insp


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    passed, failed = pytest_counts.counts(terminalreporter)
    for line in helpers.MEASUREMENTS:
        terminalreporter.write_line("measured: " + line)
    terminalreporter.write_line("%d passed, %d failed" % (passed, failed))
