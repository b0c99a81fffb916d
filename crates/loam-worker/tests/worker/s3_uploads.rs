//! Checked uploads and multipart uploads on real workers, driven by boto3 and raw signed HTTP
//! (`tests/py/s3_uploads.py`) over a `file://` bucket and a moto bucket: digests and checksums are
//! verified before an object or part becomes visible, and a mismatch is S3's error with nothing changed
//! in the UFS or on any worker.

use crate::PAGE;
use crate::s3_api::{aws, check, options, run, script_env, venv_bin};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;

/// Runs `tests/py/<name>.py <modes>` against `c`; its stdout.
async fn py(c: &Cluster, name: &str, modes: &[&str]) -> String {
    let script = loam_testsupport::package_file(&format!("tests/py/{name}.py")).display().to_string();
    let args = std::iter::once(script).chain(modes.iter().map(|m| m.to_string())).collect();
    let out = run(name, venv_bin("python"), args, script_env(c)).await;
    check(&format!("{name}.py {modes:?}"), &out)
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_checked_before_they_become_visible() {
    let mut o = Options { moto: true, ..options(3, PAGE) };
    o.s3.unsized_puts = true;
    let c = Cluster::start(o).await;
    let stdout = py(&c, "s3_uploads", &["checks"]).await;
    for line in [
        "ok: boto3 checksums and digests in data",
        "ok: boto3 checksums and digests in s3data",
        "ok: raw signed bodies",
        "ok: chunked PutObject in data",
        "ok: chunked PutObject in s3data",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

/// `s3-unsized-puts` is off by default: a chunked PutObject without a length is refused before any
/// byte of it is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_put_without_a_length_is_refused_by_default() {
    let c = Cluster::start(options(1, PAGE)).await;
    let stdout = py(&c, "s3_uploads", &["refused"]).await;
    assert!(stdout.contains("ok: chunked PutObject refused in data"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_uploads_complete_copy_list_and_race_as_on_s3() {
    let c = Cluster::start(Options { moto: true, ..options(3, PAGE) }).await;
    let stdout = py(&c, "s3_multipart", &["complete", "copy", "listing", "race"]).await;
    for line in [
        "ok: idempotent Complete",
        "ok: partNumber and PartsCount",
        "ok: part numbers",
        "ok: a part listed twice",
        "ok: multipart checksums",
        "ok: boto3 upload_file",
        "ok: UploadPartCopy",
        "ok: ListParts and ListMultipartUploads",
        "ok: Complete racing Complete and Abort",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_checksums_and_object_attributes_are_answered_as_on_s3() {
    let c = Cluster::start(Options { moto: true, ..options(3, PAGE) }).await;
    let stdout = py(&c, "s3_attributes", &["checksums", "attributes"]).await;
    for line in [
        "ok: checksums of single-part objects",
        "ok: checksums of multipart objects",
        "ok: an S3 UFS answers the checksums known before the body",
        "ok: GetObjectAttributes",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_completes_write_at_most_one_object() {
    let c = Cluster::start(Options { moto: true, ..options(3, PAGE) }).await;
    let stdout = py(&c, "s3_attributes", &["conditional"]).await;
    for line in [
        "ok: conditional Complete in data",
        "ok: conditional Completes racing through two workers in data",
        "ok: conditional Complete in s3data",
        "ok: conditional Completes racing through two workers in s3data",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_uploads_expire() {
    let mut o = options(2, PAGE);
    o.s3.multipart_expiry = Some(std::time::Duration::from_secs(2));
    let c = Cluster::start(o).await;
    let stdout = py(&c, "s3_multipart", &["expiry"]).await;
    assert!(stdout.contains("ok: uploads expire"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_copies_in_parts_between_buckets_and_lists_uploads() {
    let c = Cluster::start(Options { moto: true, ..options(2, PAGE) }).await;
    let eps = c.endpoints();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("aws-config");
    std::fs::write(&config, "[default]\ns3 =\n    addressing_style = path\n").unwrap();
    // Over the CLI's 8 MiB multipart threshold: uploaded in parts, then copied in parts (UploadPartCopy).
    let data = pattern(17 << 20, 5);
    let up = tmp.path().join("up.bin");
    std::fs::write(&up, &data).unwrap();
    aws(&config, &eps[0], &["s3", "cp", up.to_str().unwrap(), "s3://data/cli/src.bin"]).await;
    aws(&config, &eps[0], &["s3", "cp", "s3://data/cli/src.bin", "s3://s3data/cli/copy.bin"]).await;
    aws(&config, &eps[0], &["s3", "cp", "s3://s3data/cli/copy.bin", "s3://data/cli/back.bin"]).await;
    assert!(std::fs::read(c.ufs_root().join("cli/back.bin")).unwrap() == data, "copied there and back in parts");
    let head = aws(
        &config,
        &eps[0],
        &["s3api", "head-object", "--bucket", "data", "--key", "cli/back.bin", "--part-number", "1"],
    )
    .await;
    assert!(head.contains("\"PartsCount\": 3"), "{head}");
    let uploads = aws(&config, &eps[0], &["s3api", "list-multipart-uploads", "--bucket", "data"]).await;
    assert!(!uploads.contains("UploadId"), "nothing left unfinished: {uploads}");
}
