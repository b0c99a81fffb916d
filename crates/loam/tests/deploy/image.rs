//! The container image: `scripts/build-image.sh` builds it from the stripped test binary and exports its
//! root filesystem; the binary then runs from that root (`chroot --userspec=65532:65532`, no container
//! runtime: on these machines a container cannot be started) as `loam coordinator` on loopback with its
//! data in /var/lib/loam, answers its health endpoint, and runs as uid 65532. The image is under 80 MB and
//! carries the OCI labels.

use super::{LOAM, repo, run_ok};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const UID: u32 = 65532;
const LIMIT_BYTES: u64 = 80 * 1000 * 1000;

/// Kills the chrooted coordinator when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:port with `token` (if any): the status code, or None when nothing answers.
fn status(port: u16, path: &str, token: Option<&str>) -> Option<u16> {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.arg(format!("http://127.0.0.1:{port}{path}")).output().ok()?;
    String::from_utf8_lossy(&out.stdout).parse().ok().filter(|s| *s != 0)
}

fn uid_of(pid: u32) -> u32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    let line = text.lines().find(|l| l.starts_with("Uid:")).expect("a Uid line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_image_runs_the_coordinator_as_loam_from_its_own_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n\n*** SKIPPED: building and chrooting into the image needs root ***\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let binary = tmp.path().join("loam");
    run_ok(Command::new("objcopy").args(["--strip-all", LOAM]).arg(&binary));
    let rootfs = tmp.path().join("rootfs");
    let tag = format!("localhost/loam-test:{}", std::process::id());
    let built = run_ok(
        Command::new("bash")
            .arg(repo().join("scripts/build-image.sh"))
            .arg("--binary")
            .arg(&binary)
            .args(["--tag", &tag])
            .arg("--output")
            .arg(&rootfs),
    );
    let _image = RemoveImage(tag.clone());
    let printed = String::from_utf8_lossy(&built.stdout).into_owned();
    assert!(printed.contains("bytes"), "{printed}");

    // Size and labels, as the image store has them.
    let inspect = |format: &str| {
        let out = run_ok(Command::new("podman").args(["image", "inspect", "--format", format, &tag]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let size: u64 = inspect("{{.Size}}").parse().unwrap();
    assert!(size < LIMIT_BYTES, "the image is {size} bytes");
    let labels: serde_json::Value = serde_json::from_str(&inspect("{{json .Labels}}")).unwrap();
    for key in ["version", "revision", "source", "title", "licenses"] {
        let v = labels[format!("org.opencontainers.image.{key}")].as_str().unwrap_or("");
        assert!(!v.is_empty(), "label org.opencontainers.image.{key} is missing: {labels}");
    }
    assert_eq!(labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(inspect("{{json .Config.Entrypoint}}"), r#"["loam"]"#);
    assert_eq!(inspect("{{.Config.User}}"), format!("{UID}:{UID}"));

    // The root filesystem holds what the binary needs, and /var/lib/loam is the user's.
    for f in ["usr/local/bin/loam", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group", "tmp"] {
        assert!(rootfs.join(f).exists(), "{f} is missing from the image");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains(&format!("loam:x:{UID}:{UID}:")) && passwd.contains("nobody:"), "{passwd}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(rootfs.join("var/lib/loam")).unwrap().uid(), UID);

    // The coordinator from that root, as the image's user, its data under /var/lib/loam.
    let tokens = "admin image-test-admin-token-0123456789\ncluster image-test-cluster-token-0123456789\n";
    let token_file = rootfs.join("tmp/auth-tokens");
    std::fs::write(&token_file, tokens).unwrap();
    std::os::unix::fs::chown(&token_file, Some(UID), Some(UID)).unwrap();
    let port = loam_testsupport::ports::free_port();
    let child = Command::new("chroot")
        .arg(format!("--userspec={UID}:{UID}"))
        .arg(&rootfs)
        .args(["/usr/local/bin/loam", "coordinator", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--data-dir", "/var/lib/loam/coordinator", "--auth-token-file", "/tmp/auth-tokens"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chroot");
    let child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loam_core::probe_api::COORDINATOR_HEALTH_PATH;
    while status(port, health, None) != Some(200) {
        assert!(Instant::now() < deadline, "the coordinator from the image never answered {health} on port {port}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(uid_of(child.0.id()), UID, "the coordinator does not run as {UID}");
    assert!(rootfs.join("var/lib/loam/coordinator").is_dir(), "no data under /var/lib/loam");
}

/// Removes the test's image from the image store when the test ends.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}
