//! A process's authentication from its node settings (`loam_config::NodeSettings`): the providers it
//! accepts tokens from (`--auth-token-file`, `--jwks-file` with `--jwt-audience`) and the token it sends to
//! the other members (`--cluster-token-file`, else the first `cluster` token of `--auth-token-file`).
//! Errors name the key and its source, never a token.

use crate::credential::Credential;
use crate::jwt::{JwtConfig, JwtProvider};
use crate::token_file::TokenFile;
use crate::{Authenticator, Provider, Role};
use loam_config::{ConfigError, Layered, NodeSettings};
use std::sync::Arc;

/// How a process authenticates requests and itself.
#[derive(Debug, Clone, Default)]
pub struct NodeAuth {
    /// What checks the tokens of requests to this process.
    pub authenticator: Authenticator,
    /// The token this process sends to the other cluster members.
    pub cluster_token: Credential,
}

impl NodeAuth {
    /// The authentication `node` configures; with neither a token file nor a JWKS, requests that need a role
    /// are refused (a process serving them should say so: see [`NodeAuth::require`]).
    pub fn from_settings(node: &Layered<NodeSettings>) -> Result<Self, ConfigError> {
        let n = &node.value;
        let invalid = |key: &str, why: String| ConfigError::Invalid(format!("{}: {why}", node.named(key)));
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        if let Some(path) = &n.auth_token_file {
            providers.push(Arc::new(TokenFile::open(path).map_err(|e| invalid("auth-token-file", e))?));
        }
        if let Some(jwks) = &n.jwks_file {
            let (audience, subject_roles) = jwt_settings(node)?;
            let cfg = JwtConfig {
                jwks: jwks.clone(),
                audience,
                issuer: n.jwt_issuer.clone().filter(|i| !i.is_empty()),
                role_claim: n.jwt_role_claim.clone().unwrap_or_else(|| loam_config::DEFAULT_JWT_ROLE_CLAIM.into()),
                subject_roles,
            };
            providers.push(Arc::new(JwtProvider::open(cfg).map_err(|e| invalid("jwks-file", e))?));
        }
        let cluster_token = match (&n.cluster_token_file, &n.auth_token_file) {
            (Some(path), _) => Credential::from_file(path).map_err(|e| invalid("cluster-token-file", e))?,
            (None, Some(path)) => Credential::from_token_file(path, Role::Cluster).unwrap_or_default(),
            (None, None) => Credential::none(),
        };
        Ok(Self { authenticator: Authenticator::new(providers), cluster_token })
    }

    /// What can be checked of the authentication settings before the files they name exist: a process
    /// that waits for a late Secret file (Kubernetes) must not wait for settings that can never work.
    pub fn check_settings(node: &Layered<NodeSettings>, process: &str) -> Result<(), ConfigError> {
        let n = &node.value;
        if n.auth_token_file.is_none() && n.jwks_file.is_none() {
            return Err(not_configured(node, process));
        }
        if n.jwks_file.is_some() {
            jwt_settings(node)?;
        }
        Ok(())
    }

    /// Fails unless some provider is configured and a cluster token is known: a cluster member without
    /// them could neither check requests nor call the others.
    pub fn require(self, node: &Layered<NodeSettings>, process: &str) -> Result<Self, ConfigError> {
        if !self.authenticator.is_configured() {
            return Err(not_configured(node, process));
        }
        if !self.cluster_token.is_some() {
            return Err(ConfigError::Invalid(format!(
                "{process} needs a token to call the other cluster members: a `cluster` line in {} or {}",
                node.named("auth-token-file"),
                node.named("cluster-token-file")
            )));
        }
        Ok(self)
    }
}

/// The error of a process with no way to authenticate requests.
fn not_configured(node: &Layered<NodeSettings>, process: &str) -> ConfigError {
    ConfigError::Invalid(format!(
        "{process} needs {} (lines `<role> <token>`) or {} with {}: every request that reads or changes state \
         is authenticated",
        node.named("auth-token-file"),
        node.named("jwks-file"),
        node.named("jwt-audience")
    ))
}

/// A JWKS's audience and subject roles, as the settings give them (no file is read).
fn jwt_settings(node: &Layered<NodeSettings>) -> Result<(String, Vec<(String, Role)>), ConfigError> {
    let n = &node.value;
    let invalid = |key: &str, why: String| ConfigError::Invalid(format!("{}: {why}", node.named(key)));
    let Some(audience) = n.jwt_audience.clone().filter(|a| !a.is_empty()) else {
        return Err(ConfigError::Invalid(format!(
            "{} needs {}: a JWT is only accepted for this audience",
            node.named("jwks-file"),
            node.named("jwt-audience")
        )));
    };
    let mut subject_roles = Vec::new();
    for entry in n.jwt_subject_role.iter().flatten() {
        let (subject, role) = entry
            .rsplit_once('=')
            .ok_or_else(|| invalid("jwt-subject-role", format!("expected SUBJECT=ROLE, got {entry:?}")))?;
        let role: Role = role.parse().map_err(|e| invalid("jwt-subject-role", e))?;
        subject_roles.push((subject.to_string(), role));
    }
    Ok((audience, subject_roles))
}
