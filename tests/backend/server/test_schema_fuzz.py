"""Schemathesis over /v1/openapi.json of a live server: no 5xx, every status documented, every body as declared,
and auth enforced. Bounded by a fixed number of examples per operation so it fits in CI."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from invertavatar.server.process import ServerProcess

# FastAPI publishes OpenAPI 3.1; schemathesis 3.x supports it behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?|")

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, ignored_auth)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", "--max-file-mb", "1").start()
    yield server
    server.stop()
    assert "Traceback" not in server.log()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    return schemathesis.from_uri(f"{fuzz_server.url}/v1/openapi.json",
                                 data_generation_methods=schemathesis.DataGenerationMethod.all())


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case, fuzz_server):
    # Headers that are not valid HTTP (control characters, empty names) are refused by the HTTP parser before the
    # application sees them; they say nothing about the API, so such generated cases are dropped.
    assume(all(_HEADER_NAME.fullmatch(str(k)) and _HEADER_VALUE.fullmatch(str(v))
               for k, v in (case.headers or {}).items()))
    case.call_and_validate(headers=fuzz_server.auth, checks=CHECKS, timeout=30)
