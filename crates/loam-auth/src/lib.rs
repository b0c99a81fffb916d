//! Who may do what. Every HTTP surface of Loam takes `Authorization: Bearer <token>`; this crate turns
//! the token into a [`Principal`] holding [`Role`]s and answers whether a request needing a role may go on.
//!
//! - **Roles.** `admin` (every Coordinator write), `read` (Coordinator GETs, worker reads), `write` (the
//!   worker's write API), `cluster` (what coordinator and workers call on each other). `admin` also reads
//!   and writes; `cluster` also reads (a worker copies pages from a peer through the read API).
//! - **Providers**, asked in turn: a token file ([`token_file`]: `<role> <token>` lines, re-read when it
//!   changes so tokens rotate without a restart), and JWTs ([`jwt`]: RS256/ES256 checked against a JWKS
//!   file, with `aud`, `exp` and a role claim, so a Kubernetes service-account token can be used as it is).
//! - **Secrets stay secret.** Tokens are compared as SHA-256 digests in constant time and never logged;
//!   errors name the problem (missing, malformed, unknown, expired, wrong role), never the token.
//!
//! [`AuthError::status`] is the one mapping to HTTP: `401` (with `WWW-Authenticate: Bearer`) for missing
//! or bad credentials, `403` for the wrong role.

pub mod credential;
pub mod http;
pub mod jwt;
pub mod local;
pub mod node;
pub mod openapi;
mod reload;
pub mod token_file;

pub use credential::Credential;
pub use http::{Access, Guard};
pub use node::NodeAuth;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Every Coordinator write: mounts, rules, jobs, nodes, cache operations, file-index writes.
    Admin,
    /// Coordinator GETs and worker reads.
    Read,
    /// The worker's write API (through to the UFS).
    Write,
    /// Calls between cluster members (internal endpoints).
    Cluster,
}

impl Role {
    /// Every role, in the order they are documented.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Read, Role::Write, Role::Cluster];

    /// The role's name in token files, claims and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Read => "read",
            Role::Write => "write",
            Role::Cluster => "cluster",
        }
    }

    /// Whether holding `self` allows what `need` allows.
    pub fn grants(self, need: Role) -> bool {
        self == need || matches!((self, need), (Role::Admin, Role::Read | Role::Write) | (Role::Cluster, Role::Read))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown role {s:?} (roles: admin, read, write, cluster)"))
    }
}

/// Who made a request: a name for logs (never the token) and the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `token-file:<line>` or the JWT's `sub`.
    pub name: String,
    /// The roles it holds.
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether one of its roles grants `need`.
    pub fn may(&self, need: Role) -> bool {
        self.roles.iter().any(|r| r.grants(need))
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("authentication required: send Authorization: Bearer <token>")]
    Missing,
    /// A header that is not a bearer token, or a token no provider accepts.
    #[error("invalid credentials: {0}")]
    Invalid(String),
    /// A known principal without the role the request needs.
    #[error("{who} lacks the {need} role this request needs")]
    Forbidden {
        /// The principal's name.
        who: String,
        /// The role needed.
        need: Role,
    },
}

impl AuthError {
    /// The HTTP status: `401` for missing or bad credentials, `403` for the wrong role.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Invalid(_) => 401,
            AuthError::Forbidden { .. } => 403,
        }
    }
}

/// A source of principals: the token file, the JWKS.
pub trait Provider: Send + Sync {
    /// The principal `token` names, `Ok(None)` when this provider does not know it, `Err` when it
    /// recognises the token but refuses it (an expired JWT).
    fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError>;
}

/// The providers of one listener, asked in turn.
#[derive(Clone, Default)]
pub struct Authenticator {
    providers: Vec<Arc<dyn Provider>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("providers", &self.providers.len()).finish()
    }
}

impl Authenticator {
    /// An authenticator asking `providers` in turn.
    pub fn new(providers: Vec<Arc<dyn Provider>>) -> Self {
        Self { providers }
    }

    /// This authenticator asking `provider` too, after its own.
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// Whether any provider is configured.
    pub fn is_configured(&self) -> bool {
        !self.providers.is_empty()
    }

    /// The principal of an `Authorization` header value, if it holds a token some provider accepts.
    pub fn principal(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = bearer_token(header)?;
        for p in &self.providers {
            if let Some(principal) = p.authenticate(token)? {
                return Ok(principal);
            }
        }
        Err(AuthError::Invalid("the token is not known".into()))
    }

    /// The principal of `authorization`, when it may do what `need` allows.
    pub fn authorize(&self, authorization: Option<&str>, need: Role) -> Result<Principal, AuthError> {
        let principal = self.principal(authorization)?;
        if principal.may(need) { Ok(principal) } else { Err(AuthError::Forbidden { who: principal.name, need }) }
    }
}

/// The token of `Bearer <token>` (the scheme in any case, as RFC 7235 says).
fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid("expected the Bearer scheme".into()));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Invalid("the bearer token is empty".into()));
    }
    Ok(token)
}

/// SHA-256 of a secret: what is kept and compared instead of the secret itself.
pub(crate) fn digest(secret: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

/// Equality of two digests in time independent of where they differ.
pub(crate) fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Vec<Role>);

    impl Provider for Fixed {
        fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
            Ok((token == self.0).then(|| Principal { name: "fixed".into(), roles: self.1.clone() }))
        }
    }

    #[test]
    fn roles_and_what_they_grant() {
        assert!(
            Role::Admin.grants(Role::Read) && Role::Admin.grants(Role::Write) && !Role::Admin.grants(Role::Cluster)
        );
        assert!(Role::Cluster.grants(Role::Read) && !Role::Cluster.grants(Role::Admin));
        assert!(!Role::Read.grants(Role::Write) && !Role::Write.grants(Role::Read));
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn headers_are_checked_and_roles_enforced() {
        let a = Authenticator::new(vec![Arc::new(Fixed("t0k3n", vec![Role::Read]))]);
        assert_eq!(a.authorize(None, Role::Read).unwrap_err().status(), 401);
        for bad in ["Basic dXNlcg==", "Bearer", "Bearer ", "t0k3n", "Bearer wrong"] {
            let e = a.authorize(Some(bad), Role::Read).unwrap_err();
            assert_eq!(e.status(), 401, "{bad}: {e}");
            assert!(!e.to_string().contains("t0k3n"), "the token is never echoed: {e}");
        }
        assert_eq!(a.authorize(Some("Bearer t0k3n"), Role::Read).unwrap().name, "fixed");
        assert_eq!(a.authorize(Some("bearer  t0k3n "), Role::Read).unwrap().roles, [Role::Read]);
        let e = a.authorize(Some("Bearer t0k3n"), Role::Admin).unwrap_err();
        assert_eq!((e.status(), e.to_string()), (403, "fixed lacks the admin role this request needs".into()));
    }

    #[test]
    fn digests_compare_whole() {
        let (a, b) = (digest("one"), digest("two"));
        assert!(digests_equal(&a, &a) && !digests_equal(&a, &b));
    }
}
