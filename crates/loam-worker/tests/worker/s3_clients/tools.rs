//! What the client tests share: running a client program from `PATH` (Debian's `rclone`, `s3fs`) in a
//! clean environment, a FUSE mount that a client process holds, and the local tree the clients copy.
//!
//! **Decision**: clients run with an emptied environment (only `PATH` and a `HOME` of the test's own).
//! The user's environment reaches them otherwise: an `AWS_CA_BUNDLE` makes Debian's rclone 1.60 refuse
//! to build an S3 remote at all ("unable to load custom CA bundle"), and `~/.config/rclone` or
//! `~/.passwd-s3fs` would add remotes and keys the test did not choose.

use crate::files_under;
use loam_testsupport::data::pattern;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// The path of `name` on `PATH`, or a failure that says how to install it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH: run scripts/setup-test-deps.sh (Debian package {name})"))
}

/// Runs `program args` to its end, off the async runtime (the workers run on it), under the watchdog, in
/// a clean environment with `home` as `HOME` and `env` added.
pub async fn run(program: &Path, args: &[&str], home: &Path, env: &[(String, String)]) -> Output {
    let mut cmd = clean_command(program, home, env);
    cmd.args(args);
    let what = format!("{} {}", program.display(), args.join(" "));
    tokio::task::spawn_blocking(move || cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}")))
        .await
        .unwrap()
}

fn clean_command(program: &Path, home: &Path, env: &[(String, String)]) -> std::process::Command {
    let name = program.file_name().unwrap_or_default().to_string_lossy().to_string();
    let mut cmd = loam_testsupport::watchdog::watched(&name, program);
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", home);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// The output of a run that must succeed; fails with both streams otherwise.
pub fn ok(what: &str, out: &Output) -> String {
    assert!(out.status.success(), "{what} failed ({}):\n{}", out.status, both(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr of a run, for messages.
pub fn both(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A FUSE mount held by a client process running in the foreground (`rclone mount`, `s3fs -f`). Dropping
/// it unmounts (the client then exits), kills the client if it has not, and detaches a mount left behind.
pub struct FuseMount {
    child: Child,
    /// The mount point.
    pub dir: PathBuf,
    log: PathBuf,
}

impl FuseMount {
    /// Starts `program args` (which mounts on `dir`, made here) and returns once `dir` is a mount point.
    pub async fn start(program: &Path, args: &[&str], dir: &Path, home: &Path, env: &[(String, String)]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let log = home.join(format!("{}.log", dir.file_name().unwrap().to_string_lossy()));
        let file = std::fs::File::create(&log).unwrap();
        let child = clean_command(program, home, env)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut m = Self { child, dir: dir.to_path_buf(), log };
        let what = format!("{} is mounted on {}", program.display(), dir.display());
        loam_testsupport::wait::until(&what, Duration::from_secs(30), || {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("{} exited ({status}) before mounting:\n{}", program.display(), m.log_text());
            }
            is_mount_point(dir)
        })
        .await;
        m
    }

    /// What the client wrote.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let unmount = |lazy: bool| {
            let mut c = std::process::Command::new("fusermount3");
            c.arg(if lazy { "-uz" } else { "-u" }).arg(&self.dir).stdout(Stdio::null()).stderr(Stdio::null());
            let _ = c.status();
        };
        unmount(false);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mount_point(&self.dir) {
            unmount(true);
        }
    }
}

/// Whether `dir` is a mount point of this process's mount namespace (`/proc/self/mountinfo`, whose
/// fifth field is the mount point with spaces as `\040`; the test's directories have none).
fn is_mount_point(dir: &Path) -> bool {
    let dir = dir.to_string_lossy();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*dir))
}

/// The local tree the clients copy: nested directories, files of a few MiB (one not a whole number of
/// anything), an empty file, and names with spaces (also leading and trailing ones, which the UFS layer once
/// trimmed), unicode, `%`, `+`, `&` and `=`.
pub fn tree() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("top.txt", b"at the top\n".to_vec()),
        ("empty", Vec::new()),
        ("a/b/c/deep.bin", pattern((3 << 20) + 17, 1)),
        ("a/two MiB.bin", pattern(2 << 20, 2)),
        ("with space/file name .txt", pattern(1000, 3)),
        ("with space/ both ends ", b"leading and trailing spaces".to_vec()),
        ("ünïcødé/日本語.txt", "こんにちは\n".as_bytes().to_vec()),
        ("odd/100% + more.txt", pattern(4097, 4)),
        ("odd/a+b=c&d.bin", pattern(65_537, 5)),
    ]
}

/// Writes `files` under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, Vec<u8>)]) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// The regular files under `dir`, as paths relative to it, sorted.
pub fn relative_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files_under(dir).iter().map(|p| p.strip_prefix(dir).unwrap().to_path_buf()).collect();
    out.sort();
    out
}

/// Asserts that `actual` holds exactly the files of `expected`, byte for byte (read off the runtime: it
/// may be a FUSE mount served by the test's own workers).
pub async fn assert_same_files(expected: &Path, actual: &Path) {
    let (expected, actual) = (expected.to_path_buf(), actual.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let want = relative_files(&expected);
        assert!(!want.is_empty(), "nothing to compare under {}", expected.display());
        assert_eq!(relative_files(&actual), want, "the files under {}", actual.display());
        for rel in &want {
            let (a, b) = (std::fs::read(expected.join(rel)).unwrap(), std::fs::read(actual.join(rel)).unwrap());
            assert_eq!(b.len(), a.len(), "length of {}", rel.display());
            assert!(a == b, "the bytes of {} differ", rel.display());
        }
    })
    .await
    .unwrap()
}
