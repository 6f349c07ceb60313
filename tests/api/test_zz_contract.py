# Runs last (file order): the routes of api/openapi.yaml are exactly the routes this suite
# exercised, so that the contract and the tests cannot drift apart.
import yaml

import helpers

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def declared_routes():
    with open(helpers.OPENAPI) as f:
        spec = yaml.safe_load(f)
    return {(m.upper(), path) for path, item in spec["paths"].items()
            for m in item if m in METHODS}


def test_openapi_routes_equal_exercised_routes():
    declared = declared_routes()
    assert declared, "no paths in %s" % helpers.OPENAPI
    exercised = {(m, p) for m, p, _ in helpers.ROUTES}
    missing = sorted(declared - exercised)
    extra = sorted(exercised - declared)
    assert not missing and not extra, (
        "declared in openapi.yaml but never exercised: %s; exercised but not declared: %s"
        % (missing, extra))


def test_every_declared_route_succeeded_at_least_once():
    ok = {(m, p) for m, p, s in helpers.ROUTES if 200 <= s < 300}
    never = sorted(declared_routes() - ok)
    assert not never, "routes never answered 2xx in this run: %s" % never


def test_route_misses_really_missed():
    # Requests sent on purpose to unknown routes or with wrong methods got 404/405 only.
    wrong = [(m, p, s) for m, p, s in helpers.ROUTE_MISSES if s not in (404, 405)]
    assert helpers.ROUTE_MISSES and not wrong, wrong
