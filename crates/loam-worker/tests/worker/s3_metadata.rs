//! Object metadata through the S3 API, driven by boto3 (`tests/py/s3_metadata.py`) against two real
//! workers over a `file://` bucket and a moto S3 bucket: every header and `x-amz-meta-*` round-trips
//! through the worker that did not take the write, `response-*` overrides, CopyObject `COPY`/`REPLACE`
//! (onto itself too), an overwrite without metadata clears it, a file rewritten outside Loam loses it;
//! GET/HEAD conditions (RFC 9110 precedence, `304` with its validators, `412`).

use crate::PAGE;
use crate::s3_api::{check, options, run, script_env, venv_bin};
use loam_testsupport::cluster::{Cluster, Options};

#[tokio::test(flavor = "multi_thread")]
async fn metadata_is_stored_with_the_object_and_answered_by_every_worker() {
    let c = Cluster::start(Options { moto: true, ..options(2, PAGE) }).await;
    let script = loam_testsupport::package_file("tests/py/s3_metadata.py").display().to_string();
    let out = run("s3_metadata", venv_bin("python"), vec![script], script_env(&c)).await;
    let stdout = check("s3_metadata.py", &out);
    for bucket in ["data", "s3data"] {
        for line in [
            "every header and x-amz-meta-* round-trips through every worker",
            "response-* overrides",
            "CopyObject COPY, REPLACE and onto itself",
            "an overwrite without metadata clears it",
            "reserved and oversized metadata are refused",
            "GET and HEAD conditions",
        ] {
            let line = format!("ok: {bucket}: {line}");
            assert!(stdout.contains(&line), "{line:?} missing from:\n{stdout}");
        }
    }
    assert!(stdout.contains("ok: data: an outside rewrite drops the stale metadata"), "{stdout}");
}
