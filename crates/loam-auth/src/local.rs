//! The tokens of a single-process cluster (`loam local`): an admin token for the user and a cluster token
//! for the in-process members, generated on first start into the data directory (files of one token
//! each, mode 0600, so `LOAM_TOKEN=$(cat loam-data/admin-token)` works) and read back on every later
//! start, so clients keep working across restarts.

use crate::{AuthError, Credential, Principal, Provider, Role, digest, digests_equal};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file of the admin token, under the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The file of the cluster token, under the data directory.
pub const CLUSTER_TOKEN_FILE: &str = "cluster-token";

/// The tokens of a local cluster.
pub struct LocalTokens {
    /// The admin token, to print for the user.
    pub admin: String,
    /// Where it is kept.
    pub admin_file: PathBuf,
    /// Accepts the two tokens.
    pub provider: std::sync::Arc<dyn Provider>,
    /// What the members send each other.
    pub cluster: Credential,
}

/// The tokens kept in `dir`, generated first where missing.
pub fn load_or_generate(dir: &Path) -> Result<LocalTokens, String> {
    let admin_file = dir.join(ADMIN_TOKEN_FILE);
    let admin = token_in(&admin_file)?;
    let cluster = token_in(&dir.join(CLUSTER_TOKEN_FILE))?;
    let provider = std::sync::Arc::new(Fixed(vec![(digest(&admin), Role::Admin), (digest(&cluster), Role::Cluster)]));
    Ok(LocalTokens { admin, admin_file, provider, cluster: Credential::fixed(cluster) })
}

/// A fresh token: 32 random bytes, hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("the system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token_in(path: &Path) -> Result<String, String> {
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let t = text.trim();
            if t.len() < crate::token_file::MIN_TOKEN_LEN || t.contains(char::is_whitespace) {
                return Err(format!(
                    "{shown}: expected one token of at least {} characters",
                    crate::token_file::MIN_TOKEN_LEN
                ));
            }
            Ok(t.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = generate();
            if let Some(d) = path.parent() {
                loam_core::private_fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            }
            // create_new: two starts racing on a fresh directory never overwrite each other's token.
            let mut f = loam_core::private_fs::open_options()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| format!("creating {shown}: {e}"))?;
            f.write_all(format!("{token}\n").as_bytes()).map_err(|e| format!("writing {shown}: {e}"))?;
            Ok(token)
        }
        Err(e) => Err(format!("reading {shown}: {e}")),
    }
}

/// Tokens known in advance, each with its role.
struct Fixed(Vec<([u8; 32], Role)>);

impl Provider for Fixed {
    fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let d = digest(token);
        let roles: Vec<Role> = self.0.iter().filter(|(t, _)| digests_equal(t, &d)).map(|(_, r)| *r).collect();
        Ok((!roles.is_empty()).then(|| Principal { name: format!("local-{}", roles[0]), roles }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_are_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        let mode = std::fs::metadata(&first.admin_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_generate(dir.path()).unwrap();
        assert_eq!(first.admin, again.admin, "kept across restarts");
        let p = again.provider.authenticate(&first.admin).unwrap().unwrap();
        assert_eq!(p.roles, [Role::Admin]);
        let cluster = again.cluster.header().unwrap();
        let p = again.provider.authenticate(cluster.trim_start_matches("Bearer ")).unwrap().unwrap();
        assert_eq!(p.roles, [Role::Cluster]);
        assert_eq!(again.provider.authenticate("nope-0123456789abcdef").unwrap(), None);
        assert_ne!(generate(), generate());
    }
}
