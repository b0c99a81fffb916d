//! The one rule for what is a secret: a key (a mount option, a setting, a header) whose name contains
//! `secret`, `key`, `password`, `token`, `credential`, `keytab` or `sas`, in any case. Every place that
//! shows settings or options (the mount API, the CLI, `--print-config`, logs, error messages) masks the
//! values of such keys with [`MASK`].

use std::collections::BTreeMap;

/// What a secret's value is shown as.
pub const MASK: &str = "******";

/// Whether the key `name` names a secret.
pub fn is_secret_key(name: &str) -> bool {
    let k = name.to_ascii_lowercase();
    ["secret", "key", "password", "token", "credential", "keytab", "sas"].iter().any(|w| k.contains(w))
}

/// `options` with the values of secret keys masked.
pub fn mask_secrets(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options.iter().map(|(k, v)| (k.clone(), if is_secret_key(k) { MASK.to_string() } else { v.clone() })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        for k in [
            "s3-secret-key",
            "s3a.accessKeyId",
            "s3a.secretKey",
            "AUTH_TOKEN",
            "etcd-password",
            "keytab",
            "azure.sas",
            "gcs.credential",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["host", "cache-size", "s3.endpoint", "data-dir", "s3.region"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn masks_only_secrets() {
        let o: BTreeMap<String, String> =
            [("s3a.accessKeyId", "AK"), ("s3a.secretKey", "SK"), ("s3.sessionToken", "T"), ("s3.endpoint", "http://e")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let m = mask_secrets(&o);
        assert_eq!((m["s3a.accessKeyId"].as_str(), m["s3a.secretKey"].as_str()), (MASK, MASK));
        assert_eq!((m["s3.sessionToken"].as_str(), m["s3.endpoint"].as_str()), (MASK, "http://e"));
    }
}
