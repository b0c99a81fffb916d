//! Processes that die with the test: a server is started through a tiny shell wrapper that forks a
//! watchdog and then `exec`s the server (so the child's pid is the server's). The watchdog kills the
//! server once the test process is gone, so even a test binary killed with -9 leaves no orphan.

use std::ffi::OsStr;
use std::process::Command;

/// Runs `$2 "$3"...` in place of the shell after forking a watchdog that kills it when process `$1` (the
/// test process) is gone. The pid is passed in rather than read from `$PPID`, which a shell sets at
/// start-up, after its parent may already have exited.
pub const WATCHDOG: &str = r#"
parent=$1
shift
self=$$
(
  while kill -0 "$parent" 2>/dev/null && kill -0 "$self" 2>/dev/null; do sleep 0.5; done
  kill -0 "$parent" 2>/dev/null || kill -9 "$self" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
exec "$@"
"#;

/// A command that runs `program` (add its arguments to the result) under the watchdog of this process;
/// `name` is the shell's `$0`, shown by `ps`.
pub fn watched(name: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(WATCHDOG).arg(name).arg(std::process::id().to_string()).arg(program);
    c
}
