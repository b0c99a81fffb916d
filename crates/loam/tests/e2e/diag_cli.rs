//! End to end: `loam diag` against a real `loam local` whose config file holds its S3 API secret key and
//! which has an S3 mount with a literal secret (on a signed S3 server): the archive has every member
//! (versions, status, API answers, each node's metrics, the effective settings, the log's end), and no
//! secret — the S3 API key, the mount's secret key, the admin token — appears in any byte of it, packed
//! or unpacked. A bad `--config` is refused before anything is written.

use crate::local_process::{cli, spawn_local_to};
use crate::process::loam;
use loam_testsupport::S3TestServer;
use std::io::Read;
use std::process::Stdio;

const S3_API_SECRET: &str = "diag-s3-api-secret-0d9f3b";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_archive_holds_every_member_and_no_secret() {
    const BUCKET: &str = "diag-bucket";
    let s3 = S3TestServer::start_signed(&[BUCKET]);
    s3.put_object(BUCKET, "obj", b"hello");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("local.toml");
    std::fs::write(&config, format!("s3-access-key = \"diagak\"\ns3-secret-key = \"{S3_API_SECRET}\"\n")).unwrap();
    let log = dir.path().join("local.log");
    let data = dir.path().join("data").display().to_string();
    let config_s = config.display().to_string();
    let mut cmd = loam();
    cmd.env("RUST_LOG", "info");
    let l = spawn_local_to(
        cmd,
        &["--workers", "2", "--data-dir", &data, "--config", &config_s],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let mount_secret = s3.secret_key().to_string();
    let opts = [
        format!("alluxio.underfs.s3.endpoint={}", s3.endpoint()),
        "alluxio.underfs.s3.disable.dns.buckets=true".into(),
        format!("s3a.accessKeyId={}", s3.access_key()),
        format!("s3a.secretKey={mount_secret}"),
    ];
    let mut args = vec!["mount", "add", "/s3", "s3://diag-bucket/"];
    args.extend(opts.iter().flat_map(|o| ["-o", o.as_str()]));
    let o = cli(&l, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(&l, &["fs", "cat", "/s3/obj"]);
    assert_eq!(o.stdout, b"hello");

    let out = dir.path().join("d.tar.gz");
    let out_s = out.display().to_string();
    let log_s = log.display().to_string();
    let config_arg = format!("local={config_s}");
    let o = cli(&l, &["diag", "-o", &out_s, "--config", &config_arg, "--log", &log_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), format!("wrote {out_s}"));

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the archive is the owner's only: {mode:o}");
    let packed = std::fs::read(&out).unwrap();
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut tar_bytes).unwrap();
    let mut members = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        members.insert(name, body);
    }
    let text = |name: &str| {
        String::from_utf8(
            members
                .get(&format!("loam-diag/{name}"))
                .unwrap_or_else(|| panic!("{name} missing: {:?}", members.keys()))
                .clone(),
        )
        .unwrap()
    };
    assert!(text("versions.txt").starts_with(&format!("loam {}\n", env!("CARGO_PKG_VERSION"))));
    let status: serde_json::Value = serde_json::from_str(&text("status.json")).unwrap();
    assert_eq!(status["workers_online"], 2);
    for ep in ["nodes", "coordinators", "mount", "load", "free", "rebalance", "ttl", "priority", "quota"] {
        serde_json::from_str::<serde_json::Value>(&text(&format!("api/{ep}.json"))).unwrap();
    }
    assert!(text("api/mount.json").contains("s3://diag-bucket/"));
    assert!(text("metrics/coordinator-0.txt").contains("loam_coordinator_workers"));
    for (_, id) in &l.workers {
        assert!(text(&format!("metrics/{id}.txt")).contains("loam_worker_page_hits"), "{id}");
    }
    let cfg = text("config/local-0.txt");
    assert!(cfg.contains("s3-secret-key") && cfg.contains("******"), "the key is listed, masked:\n{cfg}");
    // The log so far (it is short: all of it), at info level so not empty.
    let logged = &members["loam-diag/logs/local.log"];
    assert!(!logged.is_empty() && std::fs::read(&log).unwrap().starts_with(logged));
    assert_eq!(text("errors.txt"), "", "everything was gathered");

    for secret in [S3_API_SECRET, mount_secret.as_str(), l.token.as_str()] {
        assert!(!contains(&packed, secret) && !contains(&tar_bytes, secret), "a secret is in the archive");
        for (name, body) in &members {
            assert!(!contains(body, secret), "a secret is in {name}");
        }
    }

    // A bad --config: refused, nothing written.
    let bad = dir.path().join("bad.tar.gz");
    let o = cli(&l, &["diag", "-o", &bad.display().to_string(), "--config", "nope=/x"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("KIND=FILE"));
    assert!(!bad.exists());
}
