"""The "N passed, N failed" line that tests/run adds up, from a pytest session's results."""


def counts(terminalreporter):
    """Tests passed and failed; one that passed its call but errored in teardown is failed."""
    passed, failed = set(), set()
    for r in terminalreporter.stats.get("passed", []):
        if r.when == "call":
            passed.add(r.nodeid)
    for key in ("failed", "error"):
        for r in terminalreporter.stats.get(key, []):
            failed.add(r.nodeid)
    passed -= failed
    return len(passed), len(failed)
