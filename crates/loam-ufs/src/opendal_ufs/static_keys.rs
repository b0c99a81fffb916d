//! Static S3 keys for OpenDAL's request signer, without the secret in any `Debug` output.
//!
//! Why not `S3::access_key_id(..).secret_access_key(..)`: OpenDAL turns those into reqsign's
//! `StaticCredentialProvider`, whose derived `Debug` holds the secret key, and reqsign's provider chain
//! logs every provider it tries with `{:?}` at debug level ("Trying credential provider: …"). A process
//! run with `RUST_LOG=debug` would print every mount's secret key once per UFS client. [`StaticKeys`]
//! gives the signer the same credential through a provider whose `Debug` names nothing.

use reqsign_aws_v4::Credential;
use reqsign_core::{Context, ProvideCredential, ProvideCredentialChain};
use std::fmt;

/// An access key id and its secret key, handed to the signer as they are (they never expire).
pub struct StaticKeys {
    access_key_id: String,
    secret_access_key: String,
}

impl StaticKeys {
    /// The keys as a provider chain for `S3::credential_provider_chain`: the only provider, so neither
    /// the environment, nor profiles, nor the EC2 metadata service are asked.
    pub fn chain(access_key_id: &str, secret_access_key: &str) -> ProvideCredentialChain<Credential> {
        let keys = Self { access_key_id: access_key_id.into(), secret_access_key: secret_access_key.into() };
        ProvideCredentialChain::new().push(keys)
    }
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticKeys(mount options)")
    }
}

impl ProvideCredential for StaticKeys {
    type Credential = Credential;

    async fn provide_credential(&self, _: &Context) -> reqsign_core::Result<Option<Credential>> {
        Ok(Some(Credential {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: None,
            expires_in: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_neither_key() {
        let chain = StaticKeys::chain("AKIDVISIBLE123", "the-secret-value-xyz");
        let shown = format!(
            "{chain:?} {:?}",
            StaticKeys { access_key_id: "AKIDVISIBLE123".into(), secret_access_key: "the-secret-value-xyz".into() }
        );
        assert!(!shown.contains("AKIDVISIBLE123") && !shown.contains("the-secret-value-xyz"), "{shown}");
    }

    #[tokio::test]
    async fn the_signer_gets_the_keys() {
        let keys = StaticKeys { access_key_id: "ak".into(), secret_access_key: "sk".into() };
        let c = keys.provide_credential(&Context::new()).await.unwrap().unwrap();
        assert_eq!((c.access_key_id.as_str(), c.secret_access_key.as_str(), c.expires_in), ("ak", "sk", None));
    }
}
