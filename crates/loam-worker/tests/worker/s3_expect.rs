//! `Expect: 100-continue` as the AWS CLI's botocore sends it (`tests/py/s3_expect.py`): uploads over one
//! kept-alive connection without retries, each after an upload answered without a `100 Continue` (an
//! empty body, a refusal), get their own answers. Before the listener closed such connections
//! (`loam-listener`'s `expect`), the CLI's botocore read the next upload with the previous answer's
//! status and lost its headers (`KeyError: 'ETag'` in `aws s3 cp`). The listener's own raw-socket tests
//! check the bytes; this checks the client that failed.

use crate::PAGE;
use crate::s3_api::{check, options, run, script_env, venv_bin};
use loam_testsupport::cluster::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_botocore_uploads_after_an_empty_or_refused_upload_on_one_connection() {
    let c = Cluster::start(options(1, PAGE)).await;
    let script = loam_testsupport::package_file("tests/py/s3_expect.py").display().to_string();
    let out = run("s3_expect", venv_bin("python"), vec![script], script_env(&c)).await;
    let stdout = check("s3_expect.py", &out);
    for line in ["ok: after an empty upload", "ok: after a refused upload", "ok: a part after an empty upload"] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}
