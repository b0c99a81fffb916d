//! Secret references in mount options: the value of a secret key (`loam_core::secrets::is_secret_key`)
//! may be `env:NAME` (the environment variable `NAME` of the process that builds the UFS) or
//! `file:/path` (the file's content, its trailing line end dropped) instead of the secret itself. The
//! cluster store and every API then hold only the reference; [`resolve`] replaces it where a UFS client
//! is built ([`crate::OpendalUfs::new`], on the Coordinator and on each worker), so each process reads
//! its own environment or file. A reference that cannot be resolved is `InvalidInput` naming the option
//! and the reference, never a value. Other keys are never resolved: `env:`/`file:` there is data.

use crate::{MountOptions, UfsError, UfsResult};
use loam_core::secrets::is_secret_key;
use std::borrow::Cow;

/// `options` with every secret reference replaced by what it refers to (borrowed when there is none).
pub fn resolve(options: &MountOptions) -> UfsResult<Cow<'_, MountOptions>> {
    if !options.iter().any(|(k, v)| is_reference(k, v)) {
        return Ok(Cow::Borrowed(options));
    }
    let mut out = options.clone();
    for (key, value) in out.iter_mut().filter(|(k, v)| is_reference(k, v)) {
        *value = resolve_one(key, value)?;
    }
    Ok(Cow::Owned(out))
}

fn is_reference(key: &str, value: &str) -> bool {
    is_secret_key(key) && (value.starts_with("env:") || value.starts_with("file:"))
}

fn resolve_one(key: &str, value: &str) -> UfsResult<String> {
    let bad = |why: String| UfsError::InvalidInput(format!("mount option {key} = {value}: {why}"));
    if let Some(name) = value.strip_prefix("env:") {
        return match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(bad(format!("environment variable {name} is empty"))),
            Err(_) => Err(bad(format!("environment variable {name} is not set (or not UTF-8)"))),
        };
    }
    let path = value.strip_prefix("file:").unwrap_or(value);
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(bad(format!("{path} is empty")));
    }
    Ok(secret.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> MountOptions {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn references_of_secret_keys_resolve_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sk");
        std::fs::write(&file, "the-secret\n").unwrap();
        let o = opts(&[
            ("s3a.secretKey", &format!("file:{}", file.display())),
            ("s3a.accessKeyId", "env:PATH"),
            ("s3.endpoint", "env:PATH"),
        ]);
        let r = resolve(&o).unwrap();
        assert_eq!(r["s3a.secretKey"], "the-secret");
        assert_eq!(r["s3a.accessKeyId"], std::env::var("PATH").unwrap());
        assert_eq!(r["s3.endpoint"], "env:PATH", "not a secret key: data, not a reference");
        assert!(matches!(resolve(&opts(&[("s3a.secretKey", "plain")])).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn unresolvable_references_name_the_option_and_the_reference() {
        let err = resolve(&opts(&[("s3a.secretKey", "env:LOAM_TEST_SURELY_UNSET_VAR")])).unwrap_err().to_string();
        assert!(err.contains("s3a.secretKey") && err.contains("LOAM_TEST_SURELY_UNSET_VAR is not set"), "{err}");
        let err = resolve(&opts(&[("s3a.secretKey", "file:/nonexistent/sk")])).unwrap_err().to_string();
        assert!(err.contains("cannot read /nonexistent/sk"), "{err}");
        assert!(matches!(resolve(&opts(&[("s3a.secretKey", "env:X")])), Err(UfsError::InvalidInput(_))));
    }
}
