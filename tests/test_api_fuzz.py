"""Property-based fuzzing of the OpenAPI schema (schemathesis): whatever it sends, no 5xx answer."""
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from web_helpers import ServiceProcess


@pytest.fixture(scope="module")
def fuzzed_service(exported_dir):
    with ServiceProcess(exported_dir, "--max-upload-mb", "1", "--result-ttl", "60") as running:
        yield running
    assert "Traceback" not in running.log_text(), running.log_text()[-4000:]


@pytest.fixture(scope="module")
def api_schema(fuzzed_service):
    return schemathesis.openapi.from_url(fuzzed_service.url + "openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(max_examples=40, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_no_request_makes_the_server_fail(case, fuzzed_service):
    response = case.call_and_validate(base_url=fuzzed_service.url.rstrip("/"), checks=[not_a_server_error],
                                      timeout=60)
    assert response.status_code < 500
    if case.path.startswith("/api/"):
        content_type = response.headers.get("content-type", "")
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith(("application/json", "image/")), (case.path, content_type)
