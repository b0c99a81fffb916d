//! The tokens of test clusters. Every server a test starts accepts these tokens (in-process ones through
//! [`node_auth`], processes through the file [`write_token_file`] makes), and the harness's clients send
//! [`ALL_ROLES`] unless a test asks for another, so a test that is not about authentication is not
//! bothered by it while every request still passes the real check. Tests about roles use the one-role
//! tokens and [`anonymous_client`].

use std::path::{Path, PathBuf};

/// A token holding every role.
pub const ALL_ROLES: &str = "test-all-roles-0123456789";
/// A token holding `admin` only.
pub const ADMIN: &str = "test-admin-0123456789";
/// A token holding `read` only.
pub const READ: &str = "test-read-0123456789";
/// A token holding `write` only.
pub const WRITE: &str = "test-write-0123456789";
/// A token holding `cluster` only: what the members of test clusters send each other.
pub const CLUSTER: &str = "test-cluster-0123456789";

/// The token file's text: each token with its roles.
pub fn token_file_text() -> String {
    let mut text = String::from("# test tokens\n");
    for role in ["admin", "read", "write", "cluster"] {
        text.push_str(&format!("{role} {ALL_ROLES}\n"));
    }
    // `cluster` first among the single-role lines: a node sends the first `cluster` token of its file.
    for (role, token) in [("cluster", CLUSTER), ("admin", ADMIN), ("read", READ), ("write", WRITE)] {
        text.push_str(&format!("{role} {token}\n"));
    }
    text
}

/// Writes the token file under `dir` (mode 0600) and returns its path.
pub fn write_token_file(dir: &Path) -> PathBuf {
    let path = dir.join("auth-tokens");
    std::fs::write(&path, token_file_text()).expect("write the token file");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    path
}

/// A token file shared by the processes of this test binary (written once, under the temp dir).
pub fn shared_token_file() -> &'static Path {
    static FILE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_token_file(dir.path());
        (dir, path)
    });
    path
}

/// `cmd` (a `loam` process) set to accept the test tokens as a server (`LOAM_AUTH_TOKEN_FILE`) and to send
/// [`ALL_ROLES`] as a client (`LOAM_TOKEN`).
pub fn with_test_tokens(mut cmd: std::process::Command) -> std::process::Command {
    cmd.env("LOAM_AUTH_TOKEN_FILE", shared_token_file()).env("LOAM_TOKEN", ALL_ROLES);
    cmd
}

/// The flags that make a `loam coordinator` or `loam worker` process accept the test tokens, with the
/// token file under `dir`.
pub fn process_args(dir: &Path) -> Vec<String> {
    vec!["--auth-token-file".into(), write_token_file(dir).display().to_string()]
}

#[cfg(feature = "cluster")]
pub use in_process::*;

#[cfg(feature = "cluster")]
mod in_process {
    use super::*;
    use loam_auth::{AuthError, Authenticator, Credential, NodeAuth, Principal, Provider, Role};
    use std::sync::Arc;

    struct TestTokens;

    impl Provider for TestTokens {
        fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
            let roles = match token {
                ALL_ROLES => Role::ALL.to_vec(),
                ADMIN => vec![Role::Admin],
                READ => vec![Role::Read],
                WRITE => vec![Role::Write],
                CLUSTER => vec![Role::Cluster],
                _ => return Ok(None),
            };
            Ok(Some(Principal { name: "test".into(), roles }))
        }
    }

    /// What the servers of test clusters check tokens with and send each other.
    pub fn node_auth() -> NodeAuth {
        NodeAuth {
            authenticator: Authenticator::new(vec![Arc::new(TestTokens)]),
            cluster_token: Credential::fixed(CLUSTER),
        }
    }

    /// A client sending `token` with every request.
    pub fn client_with(token: &str) -> reqwest::Client {
        loam_ufs::opendal_ufs::install_process_defaults();
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder().default_headers(headers).no_proxy().build().expect("an HTTP client")
    }

    /// A client that sends no credentials.
    pub fn anonymous_client() -> reqwest::Client {
        loam_ufs::opendal_ufs::install_process_defaults();
        reqwest::Client::builder().no_proxy().build().expect("an HTTP client")
    }

    /// A peer client sending [`ALL_ROLES`] (for `loam_client::Client` readers in tests).
    pub fn peer_client() -> loam_client::PeerClient {
        loam_client::PeerClient::build(Credential::fixed(ALL_ROLES)).expect("an HTTP client")
    }
}
