//! The unmodified fsspec client `alluxiofs==1.1.17` against real Loam processes whose workers each serve
//! on their own loopback address with the default ports, as the client needs (it reads from port 29998
//! of the host `/v1/node` names): `tests/py/alluxiofs_client.py` compares every byte it reads with the
//! UFS originals (its docstring lists what the client does and so what is checked).
//!
//! - `alluxiofs_reads_a_file_and_an_s3_mount_through_loam_local`: `loam local --worker-addresses` with a
//!   `file://` mount and a mount of a moto S3 bucket; `ls`, `info`, `open().read()`, `cat_file` ranges
//!   (past EOF too), `read_bytes`, and `load` (the client's call → a worker's `/v1/load` → a Coordinator
//!   job), after which every loaded file is wholly cached where the client looks for it.
//! - `python_clients_and_the_s3_api_keep_reading_when_an_owner_is_killed`: etcd, a coordinator and three
//!   `loam worker` processes; a file's owner is killed with SIGKILL between reads of `alluxiofs` and
//!   `alluxio==1.0.0` and in the middle of a ranged S3 GetObject that another worker forwards from it.
//!   What each client does at once and after the dead worker's lease expired is in the script's
//!   `failover` docstring; the S3 GET must complete with the right bytes.

mod clusters;
pub mod python;

use self::clusters::{DistributedOnLoopback, HTTP_PORT, LocalOnLoopback, S3_PORT, cli_ok, wait_for_mount};
use self::python::Script;
use crate::http;
use loam_testsupport::S3TestServer;
use loam_testsupport::data::content;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// How long the script may take on a loaded machine (imports, reads, and `load`'s 10 s progress poll).
const PYTHON_CAP: Duration = Duration::from_secs(300);
const MIB: usize = 1 << 20;
/// The workers' counter of bytes read from the UFS.
const UFS_READ_BYTES: &str = "loam_worker_ufs_read_bytes_total";
/// The moto bucket mounted at `/s3data`.
const BUCKET: &str = "loam-alluxiofs";

/// Writes files of `sizes` under `root/rel` (named by index and size); (relative name, local path).
fn write_files(root: &Path, rel: &str, sizes: &[usize], seed: u32) -> Vec<(String, String)> {
    std::fs::create_dir_all(root.join(rel)).expect("create the file directory");
    sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let name = format!("{rel}/f{i}-{len}.bin");
            let path = root.join(&name);
            std::fs::write(&path, content(len, seed + i as u32)).expect("write a file");
            (name, path.display().to_string())
        })
        .collect()
}

/// The files of a mount for the plan: `{URI under base: local path}`.
fn uris(base: &str, files: &[(String, String)]) -> BTreeMap<String, String> {
    files.iter().map(|(name, path)| (format!("{base}/{name}"), path.clone())).collect()
}

/// The state of the Coordinator's load job of exactly `[path]`.
fn load_state(coordinator: &str, path: &str) -> Option<String> {
    let body = http::get_ok(&format!("{coordinator}/api/v1/load")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let job = v["results"].as_array()?.iter().find(|j| j["paths"] == json!([path]))?;
    job["state"].as_str().map(str::to_string)
}

#[test]
fn alluxiofs_reads_a_file_and_an_s3_mount_through_loam_local() {
    let dir = tempfile::tempdir().expect("temp dir");
    let moto = S3TestServer::start();
    moto.create_bucket(BUCKET);
    let sizes = [0, 1, 10, 4097, MIB, MIB + 1, 3 * MIB + 12_345, 5 * MIB + 7];
    let load_sizes = [2 * MIB + 5, 100, 1];
    let ufs = dir.path().join("ufs");
    let s3_src = dir.path().join("s3-originals");
    let file_files = write_files(&ufs, "afs", &sizes, 1);
    let file_loads = write_files(&ufs, "afs-load", &load_sizes, 100);
    let s3_files = write_files(&s3_src, "afs", &sizes, 200);
    let s3_loads = write_files(&s3_src, "afs-load", &load_sizes, 300);

    let local = LocalOnLoopback::start(dir.path(), 3);
    let ufs_uri = format!("file://{}", ufs.display());
    cli_ok(&local.coordinator, &["mount", "add", "/data", &ufs_uri]);
    let mut s3_mount = vec!["mount".to_string(), "add".into(), "/s3data".into(), format!("s3://{BUCKET}/")];
    for (k, v) in moto.mount_options() {
        s3_mount.extend(["-o".to_string(), format!("{k}={v}")]);
    }
    cli_ok(&local.coordinator, &s3_mount.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for_mount(&local.hosts, "/data/afs");
    wait_for_mount(&local.hosts, "/s3data/afs");

    let s3_uri = format!("s3://{BUCKET}");
    let mounts =
        [("file", &ufs_uri, "/data", &file_files, &file_loads), ("", &s3_uri, "/s3data", &s3_files, &s3_loads)];
    let plan = json!({
        "workers": local.hosts,
        "http_port": HTTP_PORT,
        "moto": {"endpoint": moto.endpoint(), "access_key": moto.access_key(), "secret_key": moto.secret_key()},
        "mounts": mounts.iter().map(|(target, base, cluster, files, loads)| json!({
            // No s3fs for an `s3` target: it would pin botocore below the boto3 of the test venv.
            "target": if target.is_empty() { serde_json::Value::Null } else { json!(target) },
            "dir": format!("{base}/afs"),
            "cluster_dir": format!("{cluster}/afs"),
            "files": uris(base, files),
            "load_dir": format!("{base}/afs-load"),
            "load_files": uris(base, loads),
        })).collect::<Vec<_>>(),
    });
    let counts = Script::start("suite", &plan, dir.path()).finish(PYTHON_CAP);

    let n = sizes.len() as u64;
    let non_empty = sizes.iter().filter(|&&s| s > 0).count() as u64;
    for key in ["listed", "infos", "opens", "read_bytes"] {
        assert_eq!(counts[key], 2 * n, "{key}: {counts}");
    }
    assert_eq!(counts["past_eof"], 2 * 2 * n, "{counts}");
    assert!(counts["cats"].as_u64().unwrap_or(0) >= 2 * (n + 10 * non_empty), "{counts}");
    assert_eq!(counts["loaded"], 2 * load_sizes.len() as u64, "{counts}");
    // The client's `load` went through a worker's /v1/load to a Coordinator job, for each mount.
    for base in [&ufs_uri, &s3_uri] {
        let path = format!("{base}/afs-load");
        assert_eq!(load_state(&local.coordinator, &path).as_deref(), Some("SUCCEEDED"), "the load job of {path}");
    }
}

/// A ranged GetObject through the S3 API of `host`, read as a raw HTTP/1.0 stream: `after(n)` runs once
/// `n` bytes of the body have arrived; the whole body.
fn s3_get_with(host: &str, path: &str, range: (usize, usize), n: usize, after: impl FnOnce()) -> Vec<u8> {
    let mut s = TcpStream::connect((host, S3_PORT)).expect("connect to the S3 API");
    s.set_read_timeout(Some(Duration::from_secs(120))).expect("read timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}:{S3_PORT}\r\nRange: bytes={}-{}\r\n\r\n", range.0, range.1)
        .expect("send the GET");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut after = Some(after);
    let mut body_start = None;
    loop {
        let k = s.read(&mut buf).unwrap_or_else(|e| panic!("the GET broke after {} bytes: {e}", got.len()));
        if k == 0 {
            break;
        }
        got.extend_from_slice(&buf[..k]);
        if body_start.is_none() {
            body_start = got.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            if let Some(p) = body_start {
                let head = String::from_utf8_lossy(&got[..p]);
                assert!(head.starts_with("HTTP/1.1 206") || head.starts_with("HTTP/1.0 206"), "{head}");
            }
        }
        if let Some(p) = body_start
            && got.len() - p >= n
            && let Some(f) = after.take()
        {
            f();
        }
    }
    let p = body_start.expect("an HTTP answer");
    got.split_off(p)
}

#[test]
fn python_clients_and_the_s3_api_keep_reading_when_an_owner_is_killed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ufs = dir.path().join("ufs");
    std::fs::create_dir_all(&ufs).expect("UFS dir");
    let mut c = DistributedOnLoopback::start(dir.path(), 3);
    let ufs_uri = format!("file://{}", ufs.display());
    cli_ok(&c.coordinator, &["mount", "add", "/data", &ufs_uri]);
    wait_for_mount(&c.hosts, "/data");
    let victim = c.hosts[1].clone();
    let (entry, other) = (c.hosts[0].clone(), c.hosts[2].clone());

    // A large file the victim owns, for the S3 GET that another worker forwards from it.
    let owner_of = |uri: &str| http::node_of(&format!("http://{entry}:{HTTP_PORT}"), uri).expect("/v1/node");
    let big = (0..)
        .map(|i| format!("big/b{i}.bin"))
        .find(|rel| owner_of(&format!("{ufs_uri}/{rel}")) == format!("{victim}:{HTTP_PORT}"))
        .expect("a name the victim owns");
    std::fs::create_dir_all(ufs.join("big")).expect("big dir");
    let big_bytes = content(64 * MIB, 9);
    std::fs::write(ufs.join(&big), &big_bytes).expect("write the big file");

    let (etcd_host, etcd_port) = ("127.0.0.1", c.etcd.port());
    let plan = json!({
        "workers": c.hosts,
        "http_port": HTTP_PORT,
        "victim": victim,
        "etcd": [etcd_host, etcd_port],
        "ufs_dir": ufs.display().to_string(),
        "ufs_uri": ufs_uri,
    });
    let mut script = Script::start("failover", &plan, dir.path());
    // The script has read its files through both clients; now the victim dies, in the middle of a GET.
    assert_eq!(script.line_starting("KILL ", PYTHON_CAP), format!("KILL {victim}"));
    let survivors: Vec<String> = c.hosts.iter().filter(|h| **h != victim).cloned().collect();
    let ufs_bytes = || -> f64 {
        let text = |h: &String| http::get_ok(&format!("http://{h}:{HTTP_PORT}/metrics")).expect("metrics");
        survivors.iter().map(|h| http::metric(&String::from_utf8_lossy(&text(h)), UFS_READ_BYTES)).sum()
    };
    let before = ufs_bytes();
    let range = (MIB + 3, 60 * MIB);
    let body = s3_get_with(&other, &format!("/data/{big}"), range, 4 * MIB, || c.kill(&victim));
    assert_eq!(body.len(), range.1 - range.0 + 1, "the whole range arrived");
    assert!(body == big_bytes[range.0..=range.1], "the bytes after the owner's death are the file's");
    // Sockets hold far less than the 55 MiB still to come when it died: a survivor read the rest.
    assert!(ufs_bytes() > before, "a surviving worker read the rest from the UFS");
    script.send("killed");

    let out = script.finish(PYTHON_CAP);
    assert_eq!(out["checked"], true, "{out}");
    let new_owner = out["new_owner"].as_str().unwrap_or_default();
    assert!(new_owner != victim && c.hosts.iter().any(|h| h == new_owner), "{out}");
    eprintln!("right after the kill: {out}");
}
