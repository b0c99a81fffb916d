//! [`S3TestServer`]: moto's S3 server (`moto_server -H 127.0.0.1 -p PORT`) as a child process, one per
//! test, from the Python venv that `scripts/setup-test-deps.sh` creates (`$LOAM_VENV`, default
//! `$HOME/.cache/loam/venv`).
//!
//! Start-up measured on the 2-core dev machine: about 0.6 s until it answers HTTP, so every test starts
//! its own server (no shared state, no cross-test bucket clean-up) instead of sharing one per binary.
//!
//! No orphans: `Drop` kills and reaps the process, and because a killed test binary never runs `Drop`,
//! moto runs under a tiny Python wrapper whose watchdog thread exits when its parent (the test process)
//! is gone. The server stays in the test's process group, so Ctrl-C reaches it as well.
//!
//! moto notes: by default it accepts any non-empty credentials and does not check signatures; bucket
//! names must be valid S3 names (3 to 63 characters, lower case); an unsigned `PUT /<bucket>` creates a
//! bucket. [`S3TestServer::start_signed`] turns moto's authentication on (`INITIAL_NO_AUTH_ACTION_COUNT`:
//! every request after the first N is checked against its IAM users, SigV4 signature included): the
//! first [`SIGNED_SETUP_REQUESTS`] requests make an IAM user with an access key and an allow-all policy,
//! and from then on only requests signed with that key's secret are served (a wrong secret is
//! `SignatureDoesNotMatch`, unsigned requests `403`). Tests that must show a secret is really used run on
//! such a server.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::request;

const ACCESS_KEY: &str = "loam-test-access-key";
const SECRET_KEY: &str = "loam-test-secret-key";
/// The unauthenticated requests a signed server lets through: create the IAM user, its access key, its
/// policy (in [`SIGNED_SETUP`]). The readiness probe (`/moto-api/`) is not an action and does not count.
const SIGNED_SETUP_REQUESTS: u32 = 3;
/// Makes the IAM user `loam` with an access key and an allow-all policy (the first
/// [`SIGNED_SETUP_REQUESTS`] requests, unchecked), then creates the buckets named in argv[2..] signed
/// with that key; prints `<access key id> <secret key>`.
const SIGNED_SETUP: &str = r#"
import sys, boto3
endpoint, buckets = sys.argv[1], sys.argv[2:]
common = dict(endpoint_url=endpoint, region_name="us-east-1")
iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **common)
iam.create_user(UserName="loam")
key = iam.create_access_key(UserName="loam")["AccessKey"]
policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
iam.put_user_policy(UserName="loam", PolicyName="all", PolicyDocument=policy)
s3 = boto3.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **common)
for bucket in buckets:
    s3.create_bucket(Bucket=bucket)
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
/// Puts an object (argv: endpoint, access key, secret key, bucket, key; the body on stdin), signed.
const PUT_OBJECT: &str = r#"
import sys, boto3
endpoint, access, secret, bucket, key = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access, aws_secret_access_key=secret)
s3.put_object(Bucket=bucket, Key=key, Body=sys.stdin.buffer.read())
"#;
/// Run before moto on a signed server: moto rebuilds the canonical request from the query string as it
/// arrived, while SigV4 (and AWS) canonicalize it (`%XX`-encode every value). A client that sends a
/// value unencoded (OpenDAL's `delimiter=/`) is then refused by moto alone; this re-encodes the query
/// before moto signs it again, as AWS does.
const CANONICAL_QUERY: &str = r#"
from urllib.parse import quote, unquote, urlsplit, urlunsplit
import moto.iam.access_control as access_control
as_received = access_control.IAMRequestBase._create_aws_request
def canonical(self):
    request = as_received(self)
    parts = urlsplit(request.url)
    if parts.query:
        enc = lambda s: quote(unquote(s), safe="-_.~")
        pairs = [p.partition("=") for p in parts.query.split("&")]
        request.url = urlunsplit(parts._replace(query="&".join(enc(k) + "=" + enc(v) for k, _, v in pairs)))
    return request
access_control.IAMRequestBase._create_aws_request = canonical
"#;
const REGION: &str = "us-east-1";
/// How long a start may take before the test fails (a loaded CI machine is far slower than 0.6 s).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Fresh ports to try when the server exits at start (another process took the port meanwhile).
const START_ATTEMPTS: usize = 5;

/// Runs the moto_server script given as argv[1] with the remaining arguments (after the Python code in
/// `$LOAM_MOTO_PRELUDE`, if any), and exits when the parent process dies (`getppid` changes when a
/// process is re-parented).
const WATCHDOG: &str = r#"
import os, runpy, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
exec(os.environ.get("LOAM_MOTO_PRELUDE", ""))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

/// A running moto S3 server on 127.0.0.1, killed on drop.
pub struct S3TestServer {
    child: Child,
    port: u16,
    access_key: String,
    secret_key: String,
    _log: tempfile::NamedTempFile,
}

/// The Python venv holding the test servers.
pub fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("LOAM_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/loam/venv")
}

impl S3TestServer {
    /// Starts a server on a free port and waits until it answers HTTP.
    ///
    /// Panics (telling to run `scripts/setup-test-deps.sh`) when moto is not installed.
    pub fn start() -> Self {
        Self::start_on_cpus(None)
    }

    /// [`S3TestServer::start`], with the server confined to `cpus` (a `taskset` list such as `0` or `0-1`)
    /// when given: the load benchmark gives the S3 server CPUs of its own, as a remote store would have.
    pub fn start_on_cpus(cpus: Option<&str>) -> Self {
        Self::spawn(cpus, &[])
    }

    /// A server that checks SigV4 signatures: only requests signed with [`S3TestServer::access_key`] and
    /// [`S3TestServer::secret_key`] (an access key moto made) are served. `buckets` are created at start;
    /// [`S3TestServer::create_bucket`] (unsigned) does not work on it.
    pub fn start_signed(buckets: &[&str]) -> Self {
        let count = SIGNED_SETUP_REQUESTS.to_string();
        let env = [("INITIAL_NO_AUTH_ACTION_COUNT", count.as_str()), ("LOAM_MOTO_PRELUDE", CANONICAL_QUERY)];
        let mut server = Self::spawn(None, &env);
        let out = Command::new(venv_dir().join("bin/python3"))
            .arg("-c")
            .arg(SIGNED_SETUP)
            .arg(server.endpoint())
            .args(buckets)
            .output()
            .expect("run the signed S3 server's setup");
        let text = String::from_utf8_lossy(&out.stdout);
        match text.split_whitespace().collect::<Vec<_>>().as_slice() {
            [access, secret] if out.status.success() => {
                server.access_key = access.to_string();
                server.secret_key = secret.to_string();
                server
            }
            _ => panic!("setting up the signed S3 server failed: {text}{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    fn spawn(cpus: Option<&str>, env: &[(&str, &str)]) -> Self {
        let venv = venv_dir();
        let (python, moto) = (venv.join("bin/python3"), venv.join("bin/moto_server"));
        if !moto.is_file() || !python.is_file() {
            panic!(
                "moto_server not found at {} (LOAM_VENV={}): run scripts/setup-test-deps.sh to install the S3 test server",
                moto.display(),
                venv.display()
            );
        }
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = crate::free_port();
            let log = tempfile::NamedTempFile::new().expect("create a temp file for the moto log");
            let out = log.reopen().expect("reopen the moto log");
            let err = log.reopen().expect("reopen the moto log");
            let mut cmd = match cpus {
                // taskset execs python, so the child's pid and parent are python's own (the watchdog's).
                Some(cpus) => {
                    let mut c = Command::new("taskset");
                    c.args(["-c", cpus]).arg(&python);
                    c
                }
                None => Command::new(&python),
            };
            let child = cmd
                .arg("-c")
                .arg(WATCHDOG)
                .arg(&moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
            let (access_key, secret_key) = (ACCESS_KEY.to_string(), SECRET_KEY.to_string());
            let mut server = Self { child, port, access_key, secret_key, _log: log };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(()) => last_log = read_log(&server._log),
            }
        }
        panic!("moto_server did not start after {START_ATTEMPTS} attempts; its last output:\n{last_log}");
    }

    /// Waits for an HTTP answer; `Err` when the process exited (port taken). Panics on timeout.
    fn wait_ready(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(());
            }
            if request(self.port, "GET", "/moto-api/").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server on port {} did not answer within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    read_log(&self._log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server has printed so far (a line per request), for failure messages.
    pub fn log_text(&self) -> String {
        read_log(&self._log)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id (the moto wrapper's: what a benchmark samples for CPU).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Access key id to use (any works unless the server is signed).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Secret key to use (any works unless the server is signed).
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The region to sign for.
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// Creates bucket `name` (a valid S3 name); panics if the server refuses.
    pub fn create_bucket(&self, name: &str) {
        match request(self.port, "PUT", &format!("/{name}")) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("creating bucket {name:?} failed: HTTP {status}: {body}"),
            Err(e) => panic!("creating bucket {name:?} failed: {e}"),
        }
    }

    /// Puts `body` at `bucket/key`, signed with the server's keys (boto3), so it works on a signed server
    /// too; for tests without an async runtime of their own.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let mut child = Command::new(venv_dir().join("bin/python3"))
            .arg("-c")
            .arg(PUT_OBJECT)
            .args([&self.endpoint(), &self.access_key, &self.secret_key, bucket, key])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run boto3");
        std::io::Write::write_all(&mut child.stdin.take().expect("piped stdin"), body).expect("write the body");
        let out = child.wait_with_output().expect("wait for boto3");
        assert!(out.status.success(), "putting {bucket}/{key} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Mount options (Alluxio names) that reach this server: credentials, endpoint, region, path style.
    pub fn mount_options(&self) -> BTreeMap<String, String> {
        [
            ("s3a.accessKeyId", self.access_key.clone()),
            ("s3a.secretKey", self.secret_key.clone()),
            ("alluxio.underfs.s3.endpoint", self.endpoint()),
            ("alluxio.underfs.s3.endpoint.region", REGION.to_string()),
            ("alluxio.underfs.s3.disable.dns.buckets", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        // Errors mean it has exited already; either way nothing is left running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(log: &tempfile::NamedTempFile) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(log.path()) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_creates_buckets_and_stops() {
        let server = S3TestServer::start();
        let port = server.port();
        server.create_bucket("loam-harness");
        let (status, body) = request(port, "GET", "/").expect("list buckets");
        assert_eq!(status, 200);
        assert!(body.contains("loam-harness"), "{body}");
        assert_eq!(server.mount_options()["alluxio.underfs.s3.endpoint"], format!("http://127.0.0.1:{port}"));
        drop(server);
        assert!(request(port, "GET", "/").is_err(), "the server is gone after drop");
    }

    #[test]
    fn a_signed_server_serves_only_its_key() {
        let server = S3TestServer::start_signed(&["loam-signed"]);
        assert!(server.access_key().starts_with("AKIA") && server.secret_key() != SECRET_KEY);
        server.put_object("loam-signed", "k", b"v");
        let (status, body) = request(server.port(), "GET", "/loam-signed/k").expect("an unsigned GET");
        assert_eq!(status, 403, "unsigned requests are refused: {body}");
    }
}
