//! JWTs as bearer tokens: RS256 or ES256 (P-256) signatures checked against the keys of a JWKS file
//! (re-read when it changes), then `exp` (and `nbf`) with [`LEEWAY`] of clock skew, `aud` (it must name the
//! configured audience), `iss` when one is configured, and the roles: the values of the role claim (a role
//! name, a list, or space-separated names; a dotted path reaches into objects) plus those given to the
//! token's `sub`. So a Kubernetes service-account token works as it is: its audience is set when the
//! token is projected, and `--jwt-subject-role system:serviceaccount:loam:loam-worker=cluster` gives it a
//! role. `alg: none` and HMAC are refused; a token that is no JWT is left to the other providers.

use crate::reload::{CHECK_INTERVAL, Reloading};
use crate::{AuthError, Principal, Provider, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// How JWTs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// The JWKS file with the signing keys.
    pub jwks: PathBuf,
    /// The audience a token must name in `aud`.
    pub audience: String,
    /// The issuer a token must name in `iss`, when set.
    pub issuer: Option<String>,
    /// The claim holding roles (a dotted path, e.g. `loam.roles`).
    pub role_claim: String,
    /// Roles given to a subject (`sub`), whatever its claims say.
    pub subject_roles: Vec<(String, Role)>,
}

/// One usable key of the JWKS.
#[derive(Debug)]
enum Key {
    Rsa { kid: Option<String>, n: Vec<u8>, e: Vec<u8> },
    Ec { kid: Option<String>, point: Vec<u8> },
}

impl Key {
    fn kid(&self) -> Option<&str> {
        match self {
            Key::Rsa { kid, .. } | Key::Ec { kid, .. } => kid.as_deref(),
        }
    }

    fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (Key::Rsa { n, e, .. }, "RS256") => {
                RsaPublicKeyComponents { n, e }.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig).is_ok()
            }
            (Key::Ec { point, .. }, "ES256") => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
            _ => false,
        }
    }
}

/// JWTs checked against a JWKS file.
pub struct JwtProvider {
    cfg: JwtConfig,
    keys: Reloading<Vec<Key>>,
}

impl JwtProvider {
    /// Reads the JWKS of `cfg` (it must hold at least one RS256 or ES256 key).
    pub fn open(cfg: JwtConfig) -> Result<Self, String> {
        Self::open_checking_every(cfg, CHECK_INTERVAL)
    }

    /// [`JwtProvider::open`], looking for changes of the JWKS every `interval`.
    pub fn open_checking_every(cfg: JwtConfig, interval: Duration) -> Result<Self, String> {
        let keys = Reloading::open(&cfg.jwks, parse_jwks, interval)?;
        Ok(Self { cfg, keys })
    }

    fn check(&self, token: &str, header: &Value, now: u64) -> Result<Principal, AuthError> {
        let invalid = |why: &str| AuthError::Invalid(format!("JWT {why}"));
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
        if !matches!(alg, "RS256" | "ES256") {
            return Err(invalid(&format!("algorithm {alg:?} is not accepted (RS256, ES256)")));
        }
        let (signed, sig) = token.rsplit_once('.').ok_or_else(|| invalid("is malformed"))?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| invalid("signature is not base64url"))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = self.keys.get();
        let verified =
            keys.iter().filter(|k| kid.is_none() || k.kid() == kid).any(|k| k.verify(alg, signed.as_bytes(), &sig));
        if !verified {
            return Err(invalid("signature does not verify against the JWKS"));
        }
        let payload = signed.split('.').nth(1).ok_or_else(|| invalid("is malformed"))?;
        let claims: Value = decode_json(payload).ok_or_else(|| invalid("claims are not JSON"))?;
        let leeway = LEEWAY.as_secs();
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or_else(|| invalid("has no exp"))?;
        if exp.saturating_add(leeway) < now {
            return Err(invalid("has expired"));
        }
        if claims.get("nbf").and_then(Value::as_u64).is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(invalid("is not valid yet"));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.cfg.audience,
            Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(&self.cfg.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(invalid("is not for this audience"));
        }
        if let Some(iss) = &self.cfg.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(iss)
        {
            return Err(invalid("is from another issuer"));
        }
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("jwt").to_string();
        let mut roles: Vec<Role> =
            claim_values(&claims, &self.cfg.role_claim).iter().filter_map(|r| r.parse().ok()).collect();
        roles.extend(self.cfg.subject_roles.iter().filter(|(s, _)| *s == sub).map(|(_, r)| *r));
        roles.sort();
        roles.dedup();
        Ok(Principal { name: sub, roles })
    }
}

impl Provider for JwtProvider {
    fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Ok(None);
        };
        let Some(header) = decode_json(h) else { return Ok(None) };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.check(token, &header, now).map(Some)
    }
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The strings at a dotted `path` of `claims` (a string is split on spaces; a list gives its strings).
fn claim_values(claims: &Value, path: &str) -> Vec<String> {
    // A claim whose name holds dots (`loam.io/roles`) is looked up whole first.
    let value = claims.get(path).or_else(|| path.split('.').try_fold(claims, |v, k| v.get(k)));
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn parse_jwks(text: &str, path: &Path) -> Result<Vec<Key>, String> {
    let bad = |why: String| format!("JWKS {}: {why}", path.display());
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let list = doc.get("keys").and_then(Value::as_array).ok_or_else(|| bad("no `keys` list".into()))?;
    let b64 = |k: &Value, f: &str| k.get(f).and_then(Value::as_str).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    let mut keys = Vec::new();
    for k in list {
        if k.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
        match (k.get("kty").and_then(Value::as_str), k.get("crv").and_then(Value::as_str)) {
            (Some("RSA"), _) => {
                if let (Some(n), Some(e)) = (b64(k, "n"), b64(k, "e")) {
                    keys.push(Key::Rsa { kid, n, e });
                }
            }
            (Some("EC"), Some("P-256")) => {
                if let (Some(x), Some(y)) = (b64(k, "x"), b64(k, "y")) {
                    let point = [&[4u8][..], &x, &y].concat();
                    keys.push(Key::Ec { kid, point });
                }
            }
            _ => {}
        }
    }
    if keys.is_empty() {
        return Err(bad("no RS256 or ES256 (P-256) signing key".into()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests;
