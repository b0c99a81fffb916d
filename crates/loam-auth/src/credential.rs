//! The token a node sends: to the other cluster members (its `cluster` token) or, for the CLI and the FUSE
//! mount, to the Coordinator and workers (the user's token). Read from a file and re-read when the file
//! changes, so a rotated token (a projected Kubernetes service-account token, a new line in the token
//! file) is used without a restart. `Debug` never shows the token.

use crate::reload::{CHECK_INTERVAL, Reloading};
use crate::{Role, token_file};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where the token comes from.
enum Source {
    Fixed(String),
    File(Reloading<String>),
}

/// A bearer token to send, or none.
#[derive(Clone, Default)]
pub struct Credential(Option<Arc<Source>>);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0.as_deref() {
            None => "Credential(none)",
            Some(Source::Fixed(_)) => "Credential(******)",
            Some(Source::File(_)) => "Credential(file, ******)",
        })
    }
}

impl Credential {
    /// No token: requests go anonymous.
    pub fn none() -> Self {
        Self(None)
    }

    /// This token.
    pub fn fixed(token: impl Into<String>) -> Self {
        Self(Some(Arc::new(Source::Fixed(token.into()))))
    }

    /// The token a file holds (surrounding whitespace trimmed; it must not be empty).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        Ok(Self(Some(Arc::new(Source::File(Reloading::open(path, parse_token, CHECK_INTERVAL)?)))))
    }

    /// The first token of `role` in a token file (`<role> <token>` lines).
    pub fn from_token_file(path: &Path, role: Role) -> Result<Self, String> {
        let parse = match role {
            Role::Admin => first_of::<0>,
            Role::Read => first_of::<1>,
            Role::Write => first_of::<2>,
            Role::Cluster => first_of::<3>,
        };
        Ok(Self(Some(Arc::new(Source::File(Reloading::open(path, parse, CHECK_INTERVAL)?)))))
    }

    /// Whether a token is sent.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// The `Authorization` header value to send now, if any.
    pub fn header(&self) -> Option<String> {
        match self.0.as_deref()? {
            Source::Fixed(t) => Some(format!("Bearer {t}")),
            Source::File(f) => Some(format!("Bearer {}", f.get())),
        }
    }
}

fn parse_token(text: &str, path: &Path) -> Result<String, String> {
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(format!("{}: expected one token", path.display()));
    }
    Ok(token.to_string())
}

fn first_of<const ROLE: usize>(text: &str, path: &Path) -> Result<String, String> {
    let role = Role::ALL[ROLE];
    token_file::entries(text, path)?
        .into_iter()
        .find(|(r, _, _)| *r == role)
        .map(|(_, token, _)| token)
        .ok_or_else(|| format!("{} has no `{role}` token", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_files_and_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        let (one, tokens) = (dir.path().join("one"), dir.path().join("tokens"));
        std::fs::write(&one, "  tok-0123456789abcdef\n").unwrap();
        assert_eq!(Credential::from_file(&one).unwrap().header().unwrap(), "Bearer tok-0123456789abcdef");
        std::fs::write(&tokens, "admin adm-0123456789abcdef\ncluster clu-0123456789abcdef\n").unwrap();
        let c = Credential::from_token_file(&tokens, Role::Cluster).unwrap();
        assert_eq!(c.header().unwrap(), "Bearer clu-0123456789abcdef");
        assert!(!format!("{c:?}").contains("clu-"), "Debug hides the token");
        let e = Credential::from_token_file(&tokens, Role::Write).err().unwrap();
        assert!(e.contains("no `write` token") && !e.contains("adm-"), "{e}");
        std::fs::write(&one, "").unwrap();
        assert!(Credential::from_file(&one).is_err());
        assert_eq!(Credential::none().header(), None);
    }
}
