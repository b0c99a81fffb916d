//! What the S3 API refuses and the protocol details S3 clients rely on, driven by boto3 and plain HTTP
//! (`tests/py/s3_protocol.py`) against two real workers over a `file://` bucket: every refusal is S3's
//! error with a request id and writes nothing (the object is absent from the UFS and from every worker);
//! request ids, error documents, DeleteObjects' key limit, presigned expiry, listing encodings, empty
//! delimiters, owners and ListBuckets pages are as on S3.

use crate::PAGE;
use crate::s3_api::{check, options, run, script_env, venv_bin};
use loam_testsupport::cluster::{Cluster, Options};

/// Runs `s3_protocol.py <mode>` against a fresh two-worker cluster (with a second bucket on a moto S3
/// server when `moto`) and returns its output.
async fn script(mode: &str, moto: bool) -> String {
    let c = Cluster::start(Options { moto, ..options(2, PAGE) }).await;
    let script = loam_testsupport::package_file("tests/py/s3_protocol.py").display().to_string();
    let out = run("s3_protocol", venv_bin("python"), vec![script, mode.into()], script_env(&c)).await;
    check(&format!("s3_protocol.py {mode}"), &out)
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_requests_are_refused_and_write_nothing() {
    let stdout = script("refusals", false).await;
    for line in [
        "ok: refused writes wrote nothing",
        "ok: refused copies wrote nothing",
        "ok: reads with encryption or version ids",
        "ok: refused deletes deleted nothing",
        "ok: unsupported operations are 501",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_details_are_as_on_s3() {
    let stdout = script("protocol", true).await;
    for line in [
        "ok: request ids and error documents",
        "ok: DeleteObjects takes at most 1000 keys",
        "ok: presigned URLs live at most 7 days",
        "ok: listing encodings",
        "ok: empty delimiters and owners",
        "ok: ListBuckets pages",
        "ok: SigV2 with x-amz-date",
        "ok: buckets are mounts",
        "ok: configuration reads as for a bucket without it",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}
