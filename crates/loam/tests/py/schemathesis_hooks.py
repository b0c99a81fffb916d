"""Loam's server-error check for schemathesis (loaded through SCHEMATHESIS_HOOKS by tests/e2e/openapi.rs).

It replaces the built-in `not_a_server_error`, which fails every 5xx, with the rule the contract sets:
a 5xx fails unless it is one the specification requires and the operation documents:
- `501` for what the specification answers "not implemented" (another cache `op`, a disabled rule kind,
  a static mount table);
- the `500 {"status": "File does not exist: <uri>"}` of the worker's `/v1/info` and `/v1/files`, which
  Alluxio's clients read as not-found;
- the `503` of a readiness probe (`/v1/ready`, `/api/v1/ready`), which answers it while the process is not
  ready (the fuzzer itself can make it so: a `POST /v1/drain` takes the worker out of the ring).
Anything else at 500 or above is a failure.
"""

import schemathesis

COMPAT_NOT_FOUND = {"/v1/info", "/v1/files"}
READINESS = {"/v1/ready", "/api/v1/ready"}


def _documented(case, status):
    return str(status) in case.operation.definition.raw.get("responses", {})


@schemathesis.check
def no_undocumented_server_error(ctx, response, case):
    status = response.status_code
    if status < 500:
        return None
    if status == 501 and _documented(case, 501):
        return None
    if status == 503 and case.operation.path in READINESS and _documented(case, 503):
        return None
    if status == 500 and case.operation.path in COMPAT_NOT_FOUND:
        try:
            message = response.json().get("status", "")
        except ValueError:
            message = ""
        if message.startswith("File does not exist: "):
            return None
    raise AssertionError(f"server error {status}: {response.text[:300]}")
