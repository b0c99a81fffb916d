//! The OpenAPI documents hold against the running servers (issue 12): the Coordinator's
//! (`/api/v1/openapi.json`) and a worker's (`/v1/openapi.json`) are served to anyone, and schemathesis
//! (PyPI, from the test venv) runs every documented operation of a real `loam local` with a token of
//! every role: the examples, coverage and fuzzing phases, a bounded number of examples per operation and
//! a fixed seed, so a run is repeatable. It fails on a response the document does not list (status or
//! content type), a body that breaks its schema, and any 5xx except those the specification requires
//! (`tests/py/schemathesis_hooks.py` says which).

use crate::http;
use crate::local_process::{Local, ok, start_local};
use loam_testsupport::auth::ALL_ROLES;
use std::process::Stdio;

/// Examples per operation in the fuzzing phase: enough to reach every branch of input checking while
/// the whole run stays around ten seconds per document.
const EXAMPLES: &str = "25";

/// Our server-error rule (see the module header) and schemathesis's conformance checks.
const CHECKS: &str = "no_undocumented_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance";

/// A `loam local` with a mount holding a few files, so reads and listings meet real data.
fn cluster() -> (Local, tempfile::TempDir, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir(ufs.path().join("dir")).unwrap();
    std::fs::write(ufs.path().join("a.txt"), b"hello").unwrap();
    std::fs::write(ufs.path().join("dir/b.bin"), vec![7u8; 300_000]).unwrap();
    let l = start_local(data.path(), &["--workers", "2"]);
    ok(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]);
    (l, data, ufs)
}

/// Runs schemathesis against the document at `url`; panics with its report unless every check passed.
fn schemathesis(url: &str) {
    let venv = loam_testsupport::s3_server::venv_dir();
    let st = venv.join("bin/schemathesis");
    assert!(st.is_file(), "{} not found: run scripts/setup-test-deps.sh", st.display());
    let hooks = loam_testsupport::package_file("tests/py");
    // Its working directory takes its crash cache (`.schemathesis/`), which it would replay in later runs.
    let cwd = tempfile::tempdir().unwrap();
    let out = loam_testsupport::watchdog::watched("schemathesis", &st)
        .args(["run", url, "--header", &format!("Authorization: Bearer {ALL_ROLES}")])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", EXAMPLES, "--seed", "12"])
        .args(["--checks", CHECKS])
        .args(["--no-color", "--request-timeout", "60"])
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems in {url}:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run that tested nothing would pass too: make sure it exercised the operations.
    assert!(report.contains(" passed"), "schemathesis ran no test case:\n{report}");
}

#[test]
fn both_documents_are_public_and_describe_their_servers() {
    let (l, _d, _u) = cluster();
    let coordinator = format!("{}/api/v1/openapi.json", l.coordinator);
    let worker = format!("{}/v1/openapi.json", l.workers[0].0);
    for url in [&coordinator, &worker] {
        let a = http::get_as(url, None).unwrap();
        assert_eq!(a.status, 200, "{url} is open to everyone: {}", a.text());
        let doc: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }
    schemathesis(&coordinator);
    schemathesis(&worker);
}
