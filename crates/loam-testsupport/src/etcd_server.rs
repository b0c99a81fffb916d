//! [`EtcdServer`]: a single-member etcd (Debian's `etcd` binary, found on `PATH`) as a child process on
//! free loopback ports with a temporary data dir, one per test.
//!
//! Start-up measured on the 2-core dev machine: about 0.3 s until `GET /health` answers, thanks to a short
//! election timeout (a single member has nobody to disagree with), so every test can start its own server.
//! `stop` kills the process but keeps its data dir and ports, and `start_again` restarts it on them: the
//! same cluster comes back with its keys and leases, as after a real etcd outage.
//!
//! No orphans: `Drop` kills and reaps the process, and because a killed test binary never runs `Drop`,
//! etcd is started by a tiny shell wrapper that forks a watchdog and then `exec`s etcd (so the child's pid
//! is etcd's): the watchdog kills etcd once the test process is gone. etcd logs only errors, to a file in
//! the temp dir, shown when a start fails.
//!
//! [`EtcdServer::start_tls`] starts it with TLS and client-certificate authentication ([`EtcdTls`]); its
//! health is then read from a plain metrics port, and [`EtcdServer::etcdctl`] runs `etcdctl` with a client
//! certificate, e.g. to add users and `auth enable`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::watchdog::watched;

/// How long a start may take before the test fails (a loaded CI machine is far slower than 0.3 s).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Fresh ports to try when etcd exits at its first start (another process took a port meanwhile).
const START_ATTEMPTS: usize = 5;
/// The member's name, also used in `--initial-cluster`.
const NAME: &str = "loam-test";

/// A running single-member etcd on 127.0.0.1, killed on drop.
pub struct EtcdServer {
    binary: PathBuf,
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    /// Where `/health` is served over plain HTTP in TLS mode.
    metrics_port: u16,
    tls: Option<EtcdTls>,
    dir: tempfile::TempDir,
}

/// How [`EtcdServer::start_tls`] serves clients: TLS with this server certificate, clients must present a
/// certificate signed by `ca`.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// The CA that signed `server` and that client certificates must chain to.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server: crate::certs::LeafCert,
    /// etcd's `--auth-token-ttl` in seconds (how long an unused simple token lives); etcd's default if none.
    pub auth_token_ttl: Option<u32>,
}

/// The etcd binary on `PATH`; panics with the way to install it when there is none.
fn etcd_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("etcd")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("etcd not found on PATH: run scripts/setup-test-deps.sh to install it (Debian package etcd-server)")
    })
}

impl EtcdServer {
    /// Starts etcd on free ports with a fresh data dir and waits until it is healthy (has a leader).
    ///
    /// Panics (telling to run `scripts/setup-test-deps.sh`) when etcd is not installed.
    pub fn start() -> Self {
        Self::start_binary(&etcd_binary())
    }

    /// [`EtcdServer::start`] with the etcd binary at `binary` (the load benchmark's `--etcd-bin`).
    pub fn start_binary(binary: &Path) -> Self {
        Self::start_with(binary, None)
    }

    /// Starts etcd serving clients over TLS only, with client-certificate authentication (`--cert-file`,
    /// `--key-file`, `--client-cert-auth`, `--trusted-ca-file`).
    pub fn start_tls(tls: EtcdTls) -> Self {
        Self::start_with(&etcd_binary(), Some(tls))
    }

    fn start_with(binary: &Path, tls: Option<EtcdTls>) -> Self {
        let dir = tempfile::Builder::new().prefix("loam-etcd-").tempdir().expect("create a temp dir for etcd");
        let mut server =
            Self { binary: binary.to_path_buf(), child: None, client_port: 0, peer_port: 0, metrics_port: 0, tls, dir };
        for _ in 0..START_ATTEMPTS {
            server.client_port = crate::free_port();
            server.peer_port = crate::free_port();
            server.metrics_port = crate::free_port();
            if server.client_port == server.peer_port
                || server.metrics_port == server.client_port
                || server.metrics_port == server.peer_port
            {
                continue;
            }
            if server.launch().is_ok() {
                return server;
            }
            // A failed first start may leave a half-written member dir; the next attempt starts clean.
            let _ = std::fs::remove_dir_all(server.data_dir());
        }
        panic!("etcd did not start after {START_ATTEMPTS} attempts; its last output:\n{}", server.log());
    }

    /// `http://127.0.0.1:PORT` (`https://` in TLS mode), the client URL.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Runs `etcdctl` on this server with `args`, as the client with certificate `client` (TLS mode) and,
    /// when given, `user` (`name:password`); panics with its output when it fails, else returns stdout.
    pub fn etcdctl(&self, client: Option<&crate::certs::LeafCert>, user: Option<&str>, args: &[&str]) -> String {
        let mut cmd = std::process::Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3").arg("--endpoints").arg(self.endpoint());
        if let Some(tls) = &self.tls {
            cmd.arg("--cacert").arg(&tls.ca);
        }
        if let Some(c) = client {
            cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
        }
        if let Some(u) = user {
            cmd.arg("--user").arg(u);
        }
        let out = cmd.args(args).output().expect("run etcdctl (scripts/setup-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.client_port
    }

    /// The etcd process's pid while it runs (the watchdog `exec`s etcd), e.g. to `SIGSTOP` it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is running (started and not stopped).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills etcd (as a crash would) and waits for it to exit; the data dir and ports are kept for
    /// [`EtcdServer::start_again`]. Does nothing when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it has exited already; either way nothing is left running.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts a stopped etcd on the same data dir and ports, and waits until it is healthy again.
    /// Panics when it cannot (a port was taken meanwhile).
    pub fn start_again(&mut self) {
        self.stop();
        if self.launch().is_err() {
            panic!("etcd did not start again on port {}:\n{}", self.client_port, self.log());
        }
    }

    /// Turns etcd's authentication on with user `root` (password `root_password`) and `user` (password
    /// `password`) whose role may read and write every key under `/`, running `etcdctl` as `client`.
    pub fn enable_auth(&self, client: &crate::certs::LeafCert, root_password: &str, user: &str, password: &str) {
        let c = Some(client);
        self.etcdctl(c, None, &["user", "add", &format!("root:{root_password}")]);
        self.etcdctl(c, None, &["user", "grant-role", "root", "root"]);
        self.etcdctl(c, None, &["role", "add", user]);
        self.etcdctl(c, None, &["role", "grant-permission", user, "--prefix=true", "readwrite", "/"]);
        self.etcdctl(c, None, &["user", "add", &format!("{user}:{password}")]);
        self.etcdctl(c, None, &["user", "grant-role", user, user]);
        self.etcdctl(c, None, &["auth", "enable"]);
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn log(&self) -> String {
        read_file(&self.log_path())
    }

    /// Spawns etcd on the current ports and waits until healthy; `Err` when it exited (a port taken).
    fn launch(&mut self) -> Result<(), ()> {
        let log = File::options().create(true).append(true).open(self.log_path()).expect("open the etcd log file");
        let err = log.try_clone().expect("clone the etcd log file handle");
        let client_url = self.endpoint();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = watched("loam-etcd-watchdog", &self.binary);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server.cert)
                .arg("--key-file")
                .arg(&tls.server.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth")
                .args(["--listen-metrics-urls", &format!("http://127.0.0.1:{}", self.metrics_port)]);
            if let Some(ttl) = tls.auth_token_ttl {
                command.args(["--auth-token-ttl", &ttl.to_string()]);
            }
        }
        let child = command
            .args(["--name", NAME])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("{NAME}={peer_url}")])
            // One member: a short election gets a leader in a fraction of a second.
            .args(["--heartbeat-interval", "50", "--election-timeout", "250"])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} through sh: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_healthy()
    }

    /// Waits for `GET /health` to report a healthy member; `Err` when the process exited. Panics on timeout.
    fn wait_healthy(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.is_running() {
                self.stop();
                return Err(());
            }
            let port = if self.tls.is_some() { self.metrics_port } else { self.client_port };
            if health(port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!("etcd on port {} was not healthy within {START_TIMEOUT:?}:\n{}", self.client_port, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_file(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Whether etcd's `/health` on `port` answers `"health":"true"` (it does once the member has a leader).
fn health(port: u16) -> bool {
    crate::http::request(port, "GET", "/health").is_ok_and(|(s, body)| s == 200 && body.contains(r#""health":"true""#))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_stops_restarts_and_dies_on_drop() {
        let mut server = EtcdServer::start();
        let port = server.port();
        assert_eq!(server.endpoint(), format!("http://127.0.0.1:{port}"));
        assert!(health(port));
        server.stop();
        assert!(!server.is_running());
        assert!(!health(port), "a stopped server does not answer");
        server.start_again();
        assert_eq!(server.port(), port, "a restart keeps the port");
        assert!(health(port));
        assert!(server.data_dir().join("member").is_dir(), "the data dir is the same one");
        drop(server);
        assert!(!health(port), "the server is gone after drop");
    }

    /// Whether process `pid` is running (a zombie has exited; a container's init may not reap it).
    fn running(pid: &str) -> bool {
        let stat = read_file(Path::new(&format!("/proc/{pid}/stat")));
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
    }

    #[test]
    fn the_watchdog_kills_the_server_once_its_parent_is_gone() {
        use std::io::{BufRead, BufReader};
        // A parent shell runs `sleep` under the watchdog, prints its pid, and waits for its stdin to close.
        let mut parent = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"sh -c "$W" loam-etcd-watchdog $$ sleep 600 >/dev/null 2>&1 & echo $!; read _"#)
            .env("W", crate::watchdog::WATCHDOG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sh");
        let mut line = String::new();
        BufReader::new(parent.stdout.take().expect("stdout")).read_line(&mut line).expect("read the pid");
        let pid = line.trim().to_string();
        assert!(running(&pid), "the watched process runs while its parent does");
        drop(parent.stdin.take());
        parent.wait().expect("the parent exits");
        let deadline = Instant::now() + Duration::from_secs(15);
        while running(&pid) {
            assert!(Instant::now() < deadline, "process {pid} outlived its parent");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
