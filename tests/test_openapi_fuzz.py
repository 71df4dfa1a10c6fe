"""The meter and read routes against their own OpenAPI document, by Schemathesis: generated
requests (valid and not) never make a server error, and every answer matches the schema."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from p402.ledger.store import Ledger
from p402.ledger.tenants import create_api_key, create_tenant
from p402.serve.app import create_app
from p402.serve.service import Service

pytestmark = pytest.mark.slow  # a real server, browser or fuzzing run: not in make test-fast

# Schemathesis collects its cases from the document at import: the app is made here, once.
_FOLDER = tempfile.TemporaryDirectory(prefix="p402-fuzz-")
_LEDGER = Ledger.open(str(Path(_FOLDER.name) / "ledger.db"))
create_tenant(_LEDGER, "acme")
_KEY = create_api_key(_LEDGER, "acme")[1]
_APP = create_app(Service(_LEDGER, data_dir=Path(_FOLDER.name) / "data"))
# The proxy's routes forward upstream (no network here) and POST /v1/audits starts work in the
# background: both have tests of their own.
schema = (
    schemathesis.openapi.from_asgi("/openapi.json", _APP)
    .exclude(path_regex="^/v1/(chat|responses|embeddings|messages)")
    .exclude(method="POST", path="/v1/audits")
)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _LEDGER.close()
    _FOLDER.cleanup()


@schemathesis.serializer("application/x-ndjson")
def _json_lines(_context: Any, value: Any) -> bytes:
    """The meter's JSON Lines body is a string of lines: sent as its bytes (any text will do,
    valid lines or not: the route must answer it without a server error)."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


# A meter batch is validated event by event, by design: a batch mixing good and bad events is
# answered 207 with each item's outcome, and an event the schema allows can still fail a rule
# the schema cannot state (reasoning within output, say). So these two checks do not apply.
# Starlette answers a method a path does not have with 405 and the Allow header of the first
# route of that path only (GET /v1/audits and POST /v1/audits are two routes), which the
# allow-header check flags; it is the framework's, and no client relies on it.
_PER_EVENT = [
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.allow_header_conformance,
]


@schema.parametrize()
@settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
def test_the_api_keeps_its_contract(case: Any) -> None:
    case.call_and_validate(headers={"X-P402-Key": _KEY}, excluded_checks=_PER_EVENT)
