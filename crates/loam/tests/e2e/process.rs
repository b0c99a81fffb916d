//! Real `loam` processes for the tests: a long-running server ([`server`]: `loam coordinator`, `loam
//! worker` or `loam local`, a `loam_testsupport::process::Server` that is ready once it prints "Press
//! Ctrl-C to stop." and dies with the test), and one-shot runs ([`run_cli`], [`run_cli_env`], [`run_capped`]).
//!
//! Nothing here can hang a test: servers start with a cap (`loam_testsupport::process`), and CLI runs
//! are killed after a cap. Servers write stderr to a log file that the clusters print when a test fails;
//! restarts append to the same file.

pub use loam_testsupport::process::{Server, log_path, tail};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const LOAM: &str = env!("CARGO_BIN_EXE_loam");

/// How long one CLI run may take.
const CLI_CAP: Duration = Duration::from_secs(60);

/// `loam` with none of the user's `LOAM_*` settings, so a test sees only what it passes, but the test
/// tokens: as a server it accepts them, as a client it sends the token of every role
/// (`loam_testsupport::auth::with_test_tokens`).
pub fn loam() -> Command {
    loam_testsupport::auth::with_test_tokens(loam_testsupport::process::clean_env(Command::new(LOAM)))
}

/// Starts the server `loam <args>` (`loam coordinator`, `loam worker`, `loam local`) under the watchdog
/// with stderr appended to `log`; ready once it has printed its banner (see [`Server::start`]).
pub fn server(args: &[String], log: &Path) -> Result<Server, String> {
    Server::start(Path::new(LOAM), args, log)
}

/// Owned arguments.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// What a one-shot run printed.
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, as text.
    pub stderr: String,
}

/// Runs `loam <args>` to completion; killed (and the test failed) after a cap.
pub fn run_cli(args: &[String]) -> CliOutput {
    run_cli_env(args, &[])
}

/// Runs `loam <args>` with `env` set (e.g. `XDG_CACHE_HOME`, where `loam fs` keeps its cluster view) to
/// completion; killed (and the test failed) after a cap.
pub fn run_cli_env(args: &[String], env: &[(&str, &Path)]) -> CliOutput {
    let mut cmd = loam();
    cmd.args(args).envs(env.iter().copied());
    run_capped(cmd, None, CLI_CAP)
}

/// Runs `cmd` to completion with `stdin` (if any) as its input; killed (and the test failed) after `cap`.
pub fn run_capped(mut cmd: Command, stdin: Option<Vec<u8>>, cap: Duration) -> CliOutput {
    let input = if stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    let mut child = cmd
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // On a thread: a child that does not read its input must not block the cap.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + cap;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {cap:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    CliOutput { status, stdout, stderr }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}
