//! Exact S3 keys on real workers, driven by boto3 (`tests/py/s3_keys.py`) over a `file://` bucket and a
//! moto bucket: whitespace keys do not alias, `%`/`+`/unicode keys round-trip, keys no UFS path can hold
//! are `400` and write nothing, a key with a C1 control character is S3's `400 InvalidURI` on every
//! operation, a file/directory conflict is `409 PathConflict`, and an overwritten key
//! reads as the new bytes through every worker.

use crate::PAGE;
use crate::s3_api::{check, options, run, script_env, venv_bin};
use loam_testsupport::cluster::{Cluster, Options};

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_exact_through_boto3_on_file_and_s3_buckets() {
    let c = Cluster::start(Options { moto: true, ..options(3, PAGE) }).await;
    let script = loam_testsupport::package_file("tests/py/s3_keys.py").display().to_string();
    let out = run("s3_keys", venv_bin("python"), vec![script], script_env(&c)).await;
    let stdout = check("s3_keys.py", &out);
    for line in [
        "ok: whitespace keys in data",
        "ok: whitespace keys in s3data",
        "ok: special characters in s3data",
        "ok: unrepresentable keys in data",
        "ok: unrepresentable keys in s3data",
        "ok: unparseable keys in data",
        "ok: unparseable keys in s3data",
        "ok: file/directory conflicts",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}
