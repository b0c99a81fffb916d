//! Conditional writes through the S3 API, driven by boto3 (`tests/py/s3_conditional_writes.py`) against
//! four real workers over a `file://` bucket and a moto S3 bucket: PutObject `If-None-Match: *` and
//! `If-Match`, DeleteObject `If-Match`, CopyObject's `x-amz-copy-source-if-*`; every refusal is the S3
//! error with a request id and leaves the UFS and every worker as they were; racing conditional PUTs
//! through different workers: exactly one wins each round, and every worker serves its bytes.

use crate::PAGE;
use crate::s3_api::{check, options, run, script_env, venv_bin};
use loam_testsupport::cluster::{Cluster, Options};

#[tokio::test(flavor = "multi_thread")]
async fn conditional_writes_hold_across_workers() {
    let c = Cluster::start(Options { moto: true, ..options(4, PAGE) }).await;
    let script = loam_testsupport::package_file("tests/py/s3_conditional_writes.py").display().to_string();
    let out = run("s3_conditional_writes", venv_bin("python"), vec![script], script_env(&c)).await;
    let stdout = check("s3_conditional_writes.py", &out);
    for bucket in ["data", "s3data"] {
        for line in [
            "PutObject If-None-Match and If-Match",
            "DeleteObject If-Match",
            "CopyObject copy-source conditions",
            "racing conditional PUTs through 4 workers: one wins each round",
        ] {
            let line = format!("ok: {bucket}: {line}");
            assert!(stdout.contains(&line), "{line:?} missing from:\n{stdout}");
        }
    }
}
