//! The server processes as a user starts them: a real `loam coordinator` (embedded store, no etcd) with
//! a config file and flags over it, config errors, clean exits on SIGINT and SIGTERM, a restart that keeps
//! the mount table, `loam worker`'s refusal to start without etcd, and `loam fs` reading through a static
//! worker list with the UFS fallback (on by default, off with `--no-ufs-fallback`).

use crate::process::loam;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Coordinator {
    child: Child,
    /// The lines printed before "Press Ctrl-C to stop.".
    banner: Vec<String>,
    url: String,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `loam coordinator` with `args`; `file://` mounts are allowed under the temp dir, where the tests' UFSs are.
fn start_coordinator(args: &[&str]) -> Coordinator {
    start_coordinator_with(args, &["--allow-local-ufs", &std::env::temp_dir().display().to_string()])
}

fn start_coordinator_with(args: &[&str], more: &[&str]) -> Coordinator {
    let mut child = loam()
        .arg("coordinator")
        .args(args)
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut banner, mut url) = (Vec::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "Press Ctrl-C to stop." {
            break;
        }
        if let ["coordinator", u, ..] = line.split_whitespace().collect::<Vec<_>>().as_slice() {
            url = u.to_string();
        }
        banner.push(line);
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(!url.is_empty(), "the coordinator printed its URL: {banner:?}");
    Coordinator { child, banner, url }
}

fn stop(mut c: Coordinator, signal: &str) {
    let pid = c.child.id().to_string();
    assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    let t0 = Instant::now();
    loop {
        if let Some(status) = c.child.try_wait().unwrap() {
            assert!(status.success(), "loam coordinator exits 0 on {signal}, got {status}");
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "loam coordinator did not stop on {signal}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli(c: &Coordinator, args: &[&str]) -> Output {
    loam().arg("--coordinator").arg(&c.url).args(args).output().unwrap()
}

fn ok(c: &Coordinator, args: &[&str]) -> String {
    let o = cli(c, args);
    assert!(o.status.success(), "loam {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("coordinator.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn coordinator_config_file_flags_and_clean_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("from-file");
    let (file_port, flag_port) = (loam_testsupport::free_port(), loam_testsupport::free_port());
    let config = write_config(
        dir.path(),
        &format!(
            "version = 1\ncluster-name = \"test-cluster\"\nhost = \"127.0.0.1\"\nport = {file_port}\ndata-dir = {:?}\n",
            data_dir.display().to_string()
        ),
    );
    let flag_port_s = flag_port.to_string();
    let c = start_coordinator(&["--config", &config, "--port", &flag_port_s]);
    assert_eq!(c.url, format!("http://127.0.0.1:{flag_port}"), "the flag overrides the file's port");
    let store = data_dir.join("cluster.redb");
    assert_eq!(
        c.banner[0],
        format!("Loam coordinator is running (cluster test-cluster, store embedded {})", store.display())
    );
    assert_eq!(
        c.banner[1],
        format!("  coordinator  {0}   (REST API /api/v1, LOAM_COORDINATOR={0})", c.url),
        "stable endpoint line"
    );
    assert!(store.exists(), "the embedded store lives in the file's data-dir");

    let nodes: serde_json::Value = serde_json::from_str(&ok(&c, &["--json", "nodes"])).unwrap();
    assert_eq!(nodes["result"], serde_json::json!([]), "no worker has joined");
    let ufs = tempfile::tempdir().unwrap();
    let ufs_uri = format!("file://{}", ufs.path().display());
    assert!(ok(&c, &["mount", "add", "/data", &ufs_uri]).contains("mounted"));
    stop(c, "-INT");

    // Restarted on the same data dir (the file's port now), it has kept the mount; SIGTERM stops it too.
    let c = start_coordinator(&["--config", &config]);
    assert_eq!(c.url, format!("http://127.0.0.1:{file_port}"));
    assert!(ok(&c, &["mount", "list"]).contains("/data/"));
    stop(c, "-TERM");
}

#[test]
fn bad_config_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needles) in [
        ("port = 1\nprot = 2\n", vec!["line 2", "unknown field `prot`"]),
        ("port = \"high\"\n", vec!["line 1", "port"]),
        ("version = 7\n", vec!["version 7 is not supported"]),
        ("port = \n", vec!["line 1"]),
    ] {
        let config = write_config(dir.path(), text);
        let o = loam().args(["coordinator", "--config", &config]).output().unwrap();
        assert!(!o.status.success(), "{text:?} is refused");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
        assert!(err.contains(&config), "names the file: {err}");
        for n in needles {
            assert!(err.contains(n), "{text:?}: {err} lacks {n:?}");
        }
    }
    let missing = dir.path().join("missing.toml").display().to_string();
    let o = loam().args(["coordinator", "--config", &missing]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read the config file"));
}

/// The attack: mount `file:///etc` (or a symlink to it) through a bare `loam coordinator` and read it over
/// S3. Without `--allow-local-ufs` every file:// mount is refused with a 400 naming the setting; with it, only
/// paths under the allowed directory (canonicalized) are taken; a static `[[mount]]` outside it is a
/// configuration error.
#[test]
fn loam_coordinator_mounts_no_local_path_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let c =
        start_coordinator_with(&["--port", &loam_testsupport::free_port().to_string(), "--data-dir", &data_dir], &[]);
    for path in ["/etc".to_string(), ufs.path().display().to_string()] {
        let o = cli(&c, &["mount", "add", "/data", &format!("file://{path}")]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--allow-local-ufs"), "{path}: {err}");
    }
    drop(c);
    let allowed = ufs.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::os::unix::fs::symlink("/etc", allowed.join("etc")).unwrap();
    let port = loam_testsupport::free_port().to_string();
    let c = start_coordinator_with(
        &["--port", &port, "--data-dir", &data_dir],
        &["--allow-local-ufs", &allowed.display().to_string()],
    );
    let o = cli(&c, &["mount", "add", "/etc", &format!("file://{}/etc", allowed.display())]);
    assert!(!o.status.success(), "a symlink out of the allowed directory");
    assert!(String::from_utf8_lossy(&o.stderr).contains("resolves to /etc"), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&c, &["mount", "add", "/data", &format!("file://{}", allowed.display())]);
    drop(c);
    let config = write_config(dir.path(), "[[mount]]\npath = \"/etc\"\nufs = \"file:///etc\"\n");
    let o = loam().args(["coordinator", "--config", &config, "--data-dir", &data_dir]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--allow-local-ufs") && err.contains("mount"), "{err}");
}

#[test]
fn a_worker_needs_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let o = loam().args(["worker", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("loam worker needs etcd") && err.contains("--etcd"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing was written");
}

#[test]
fn fs_reads_through_a_static_worker_list_and_falls_back_to_the_ufs() {
    let dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(ufs.path().join("f.bin"), &content).unwrap();
    let port = loam_testsupport::free_port().to_string();
    let c = start_coordinator(&["--port", &port, "--data-dir", &dir.path().display().to_string()]);
    ok(&c, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]);

    // Nothing listens on these ports: every listed worker fails, and the read goes to the UFS.
    let workers = dir.path().join("workers.txt");
    let dead = [loam_testsupport::free_port(), loam_testsupport::free_port()];
    std::fs::write(&workers, format!("# down\nlocalhost:{}\n127.0.0.1:{}\n", dead[0], dead[1])).unwrap();
    let workers = workers.display().to_string();
    let o = cli(&c, &["fs", "cat", "/data/f.bin", "--workers-file", &workers]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, content, "served by the UFS fallback");

    let o = cli(&c, &["fs", "cat", "/data/f.bin", "--workers-file", &workers, "--no-ufs-fallback"]);
    assert!(!o.status.success(), "without the fallback the read fails");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no worker could serve"), "{err}");

    // A malformed list names its line.
    std::fs::write(dir.path().join("bad.txt"), "localhost:1\nlocalhost:x\n").unwrap();
    let bad = dir.path().join("bad.txt").display().to_string();
    let o = cli(&c, &["fs", "cat", "/data/f.bin", "--workers-file", &bad]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{bad}:2:")) && err.contains("invalid port"), "{err}");
    stop(c, "-INT");
}

#[test]
fn unusable_settings_exit_2_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.display().to_string();
    let file = dir.path().join("local.toml");
    std::fs::write(&file, "worker-addresses = \"127.0.0.2\"\n").unwrap();
    let file_s = file.display().to_string();
    let bad_file = write_config(dir.path(), "cache-size = \"lots\"\n");
    let bad_local = dir.path().join("bad-local.toml");
    std::fs::write(&bad_local, "workers = 1\nmax-age = \"soon\"\n").unwrap();
    let bad_local = bad_local.display().to_string();
    let cases: [(&str, Vec<&str>, Vec<&str>); 4] = [
        ("coordinator", vec!["--config", &bad_file], vec!["cache-size", "line 1"]),
        (
            "worker",
            vec!["--etcd", "http://127.0.0.1:1", "--data-dir", &data_s, "--lease-ttl", "0"],
            vec!["`lease-ttl` (flag --lease-ttl)"],
        ),
        (
            "local",
            vec!["--data-dir", &data_s, "--config", &file_s, "--workers", "2"],
            vec!["`workers` (flag --workers)", "`worker-addresses` (file"],
        ),
        ("local", vec!["--data-dir", &data_s, "--config", &bad_local], vec!["max-age", "invalid duration", "line 2"]),
    ];
    for (process, args, needles) in cases {
        let o = loam().arg(process).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "loam {process} {args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
        for n in needles {
            assert!(err.contains(n), "loam {process} {args:?}: {err} lacks {n:?}");
        }
        assert!(!data.exists(), "loam {process} {args:?} started something");
    }
    // A bad flag is clap's usage error, with the same exit code.
    let o = loam().args(["local", "--data-dir", &data_s, "--max-age", "soon"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid duration \"soon\""));
    assert!(!data.exists());
}

#[test]
fn print_config_shows_each_value_and_its_source_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w");
    let file = dir.path().join("worker.toml");
    std::fs::write(&file, "# a worker\ncache-size = \"2GiB\"\ns3-access-key = \"AKFROMFILE\"\nhttp-port = 1\n")
        .unwrap();
    let o = loam()
        .env("LOAM_S3_SECRET_KEY", "the-secret-from-env")
        .args(["worker", "--etcd", "http://127.0.0.1:1", "--print-config", "--http-port", "28090", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.contains("the-secret-from-env") && !out.contains("AKFROMFILE"), "secrets are masked: {out}");
    let line = |key: &str| out.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_default().to_string();
    assert!(
        line("cache-size").contains("\"2GiB\"")
            && line("cache-size").ends_with(&format!("# file {}, line 2", file.display()))
    );
    assert!(
        line("http-port").starts_with("http-port = 28090") && line("http-port").ends_with("# flag --http-port"),
        "{out}"
    );
    assert!(
        line("s3-secret-key").contains("\"******\"")
            && line("s3-secret-key").ends_with("# environment LOAM_S3_SECRET_KEY"),
        "{out}"
    );
    assert!(line("page-size").contains("\"1MiB\"") && line("page-size").ends_with("# default"), "{out}");
    assert!(line("etcd").ends_with("# flag --etcd"), "{out}");
    assert!(!data.exists(), "--print-config starts nothing");
    // What it prints is a config file: read back, it gives the same settings.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, out.replace("\"******\"", "\"x\"").as_bytes()).unwrap();
    let again = loam().args(["worker", "--print-config", "--config"]).arg(&printed).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let again = String::from_utf8_lossy(&again.stdout);
    let values = |text: &str| -> Vec<String> {
        text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('#').next().unwrap().trim().to_string()).collect()
    };
    assert_eq!(values(&again).len(), values(&out).len(), "{again}");
    assert!(values(&again).contains(&"cache-size = \"2GiB\"".to_string()), "{again}");
}

#[test]
fn a_static_mount_table_is_listed_and_cannot_be_changed() {
    let dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("f.txt"), b"static").unwrap();
    let port = loam_testsupport::free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "port = {port}\ndata-dir = {:?}\n[[mount]]\npath = \"/data\"\nufs = \"file://{}\"\n",
            dir.path().join("d").display().to_string(),
            ufs.path().display()
        ),
    );
    let c = start_coordinator(&["--config", &config]);
    assert!(ok(&c, &["mount", "list"]).contains("/data/"), "GET lists the static mounts");
    let other = tempfile::tempdir().unwrap();
    let o = cli(&c, &["mount", "add", "/other", &format!("file://{}", other.path().display())]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("501") || err.contains("static"), "POST answers 501: {err}");
    let o = cli(&c, &["mount", "remove", "/data"]);
    assert!(!o.status.success(), "DELETE answers 501 too");
    assert!(ok(&c, &["mount", "list"]).contains("/data/"), "nothing changed");
    stop(c, "-TERM");
}
