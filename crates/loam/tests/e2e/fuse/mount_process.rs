//! A real `loam fuse --foreground` process and its mount point, for the FUSE tests, and the shell tools
//! run against the mount.
//!
//! Nothing here leaves a mount behind: the process runs under the test-process watchdog
//! (`loam_testsupport::watchdog`), and dropping a [`FuseProcess`] (also while a failing test unwinds)
//! kills the process and detaches whatever is still mounted (`fusermount3 -u -z`, then `umount -l`).

use crate::process::{CliOutput, LOAM, run_capped};
use loam_testsupport::process::{READY_LINE, clean_env};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long mounting (or exiting) may take on a loaded machine.
const CAP: Duration = Duration::from_secs(60);

/// Fails the test, clearly, when the machine cannot run it (rather than skipping silently).
pub fn require_fuse_and_tools() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the FUSE tests need the kernel's FUSE device (modprobe fuse; in a container, \
         --device /dev/fuse --cap-add SYS_ADMIN)"
    );
    for tool in ["fio", "fusermount3", "dd"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "`{tool}` is missing: run scripts/setup-test-deps.sh (Debian packages fuse3 and fio)"
        );
    }
}

/// A running `loam fuse`.
pub struct FuseProcess {
    child: Option<Child>,
    /// The mount point.
    pub mount_point: PathBuf,
    log: PathBuf,
}

impl FuseProcess {
    /// Starts `loam fuse --mount-point <mount_point> --foreground <args>` and waits until it has mounted.
    pub fn start(mount_point: &Path, args: &[&str], log: &Path) -> Self {
        std::fs::create_dir_all(mount_point).expect("create the mount point");
        let err = std::fs::File::create(log).expect("create the fuse log");
        let mut child = loam_testsupport::auth::with_test_tokens(clean_env(loam_testsupport::watchdog::watched(
            "loam-fuse-watchdog",
            LOAM,
        )))
        .args(["fuse", "--foreground", "--mount-point"])
        .arg(mount_point)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn loam fuse");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let p = Self { child: Some(child), mount_point: mount_point.to_path_buf(), log: log.to_path_buf() };
        let deadline = Instant::now() + CAP;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line == READY_LINE => break,
                Ok(_) => {}
                Err(e) => panic!("loam fuse did not mount ({e:?}):\n{}", p.log_text()),
            }
        }
        assert!(loam_fuse::is_mounted(mount_point), "mounted at {}", mount_point.display());
        p
    }

    /// The process's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `path` (relative) under the mount point.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mount_point.join(rel)
    }

    /// Sends `signal` (e.g. "-TERM") and waits for the exit.
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().expect("run kill").success());
        self.wait_exit()
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + CAP;
        loop {
            if let Some(status) = child.try_wait().expect("wait for loam fuse") {
                return status;
            }
            assert!(Instant::now() < deadline, "loam fuse did not exit within {CAP:?}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FuseProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (bin, args) in [("fusermount3", ["-u", "-z"]), ("umount", ["-l", "--"])] {
            if !loam_fuse::is_mounted(&self.mount_point) {
                break;
            }
            let _ = Command::new(bin).args(args).arg(&self.mount_point).output();
        }
        if std::thread::panicking() {
            eprintln!("----- loam fuse log -----\n{}", self.log_text());
        }
    }
}

/// Runs a shell tool to completion (killed, and the test failed, after a cap); panics unless it succeeded.
pub fn run_ok(program: &str, args: &[&str]) -> Vec<u8> {
    let o = run(program, args);
    assert!(o.status.success(), "{program} {args:?} failed: {}", o.stderr);
    o.stdout
}

/// Runs a shell tool (or `loam`, which gets the test tokens) to completion (killed, and the test failed,
/// after a cap).
pub fn run(program: &str, args: &[&str]) -> CliOutput {
    let mut cmd = loam_testsupport::auth::with_test_tokens(Command::new(program));
    cmd.args(args);
    run_capped(cmd, None, CAP)
}
