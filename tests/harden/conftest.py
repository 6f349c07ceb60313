# pytest wiring of the hardening tests: daemon and tmpfs fixtures that always clean up, and
# the one-line "N passed, N failed" summary that tests/run adds up.
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pytest_counts  # noqa: E402 (tests/pytest_counts.py)

import hd


def pytest_configure(config):
    missing = [p for p in (hd.daemon_bin(), hd.checker_bin()) if not os.path.exists(p)]
    if missing:
        print("hardening tests: missing binaries %s (set INSPECTD_BIN / INSPECT_STORE_CHECK_BIN)"
              % missing)


class Daemons:
    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.all = []

    def __call__(self, state_dir=None, args=(), env=None, start=True, timeout=60):
        n = len(self.all) + 1
        state_dir = state_dir or os.path.join(self.workdir, "state%d" % n)
        d = hd.Daemon(self.workdir, state_dir, args=args, env=env, name="inspectd%d" % n)
        self.all.append(d)
        if start:
            d.start(timeout)
        return d

    def cleanup(self):
        for d in self.all:
            if d.running():
                d.stop(60)
            d.kill()


@pytest.fixture
def daemons(tmp_path):
    f = Daemons(tmp_path)
    yield f
    f.cleanup()


@pytest.fixture
def mounts(tmp_path, daemons):
    # Depends on `daemons` so that its daemons are stopped before the unmount.
    m = hd.Mounts(tmp_path)
    yield m
    daemons.cleanup()
    m.cleanup()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    passed, failed = pytest_counts.counts(terminalreporter)
    for line in hd.MEASUREMENTS:
        terminalreporter.write_line("measured: " + line)
    terminalreporter.write_line("%d passed, %d failed" % (passed, failed))
