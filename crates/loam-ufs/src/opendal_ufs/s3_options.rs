//! S3 mount options under their Alluxio names, with every alias Alluxio accepts, parsed into the few
//! settings OpenDAL's S3 builder needs.
//!
//! Rules: the first alias present wins, but two aliases with *different* values are refused (the mount
//! would otherwise silently depend on alias order). Empty values count as absent, because Alluxio
//! clients send `""` for options they do not set. Options this module does not know are ignored: the
//! same map carries options for other layers (TTL, bandwidth).

use crate::{MountOptions, UfsError, UfsResult};
use loam_core::secrets::is_secret_key;

/// Access key id aliases (`s3a.*` is Hadoop's spelling, `aws.*` Alluxio 1.x, `s3.*` Alluxio 3.x).
pub const ACCESS_KEY: &[&str] = &["s3a.accessKeyId", "aws.accessKeyId", "s3.accessKeyId"];
/// Secret key aliases.
pub const SECRET_KEY: &[&str] = &["s3a.secretKey", "aws.secretKey", "s3.secretKey"];
/// Endpoint aliases (`http://127.0.0.1:9000`, or a host name, which means https).
pub const ENDPOINT: &[&str] = &["s3.endpoint", "s3a.endpoint", "alluxio.underfs.s3.endpoint"];
/// Region aliases.
pub const REGION: &[&str] = &["s3.region", "s3a.region", "alluxio.underfs.s3.endpoint.region"];
/// Path-style aliases; `true` means `http://endpoint/bucket/key` for all three.
pub const PATH_STYLE: &[&str] = &["s3.pathStyle", "s3a.path.style.access", "alluxio.underfs.s3.disable.dns.buckets"];

/// The region used when the options name none (the AWS default; S3-compatible servers ignore it).
pub const DEFAULT_REGION: &str = "us-east-1";

/// What a mount's options say about the S3 service. Its `Debug` masks the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Static credentials `(access key, secret key)`; `None` falls back to the environment.
    pub credentials: Option<(String, String)>,
    /// The endpoint; `None` is AWS.
    pub endpoint: Option<String>,
    /// The signing region.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-host style (`bucket.endpoint/key`).
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = self.credentials.as_ref().map(|_| loam_core::secrets::MASK);
        f.debug_struct("S3Settings")
            .field("credentials", &credentials)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .finish()
    }
}

impl S3Settings {
    /// Parses the options; a malformed value is `InvalidInput` naming the option.
    pub fn parse(options: &MountOptions) -> UfsResult<Self> {
        let access = pick(options, ACCESS_KEY)?;
        let secret = pick(options, SECRET_KEY)?;
        let credentials = match (access, secret) {
            (Some((_, a)), Some((_, s))) => Some((a.to_string(), s.to_string())),
            (None, None) => None,
            (Some((name, _)), None) => {
                return Err(UfsError::InvalidInput(format!(
                    "option {name} is set but no secret key ({})",
                    SECRET_KEY[0]
                )));
            }
            (None, Some((name, _))) => {
                return Err(UfsError::InvalidInput(format!(
                    "option {name} is set but no access key ({})",
                    ACCESS_KEY[0]
                )));
            }
        };
        let endpoint = match pick(options, ENDPOINT)? {
            Some((name, v)) => Some(check_endpoint(name, v)?),
            None => None,
        };
        let region = match pick(options, REGION)? {
            Some((name, v)) if v.chars().any(|c| c.is_whitespace() || c == '/') => {
                return Err(UfsError::InvalidInput(format!("option {name}: {v:?} is not a region name")));
            }
            Some((_, v)) => v.to_string(),
            None => DEFAULT_REGION.to_string(),
        };
        let path_style = match pick(options, PATH_STYLE)? {
            Some((name, v)) => parse_bool(name, v)?,
            // Virtual-host style puts the bucket in the host name, which cannot work for an IP endpoint
            // such as a test server on 127.0.0.1; AWS itself prefers virtual-host style.
            None => endpoint.is_some(),
        };
        Ok(Self { credentials, endpoint, region, path_style })
    }
}

/// The first alias present (non-empty), as `(alias, value)`; conflicting aliases are refused.
fn pick<'a>(options: &'a MountOptions, aliases: &[&'static str]) -> UfsResult<Option<(&'static str, &'a str)>> {
    let mut found: Option<(&'static str, &'a str)> = None;
    for &name in aliases {
        let Some(v) = options.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) else { continue };
        match found {
            None => found = Some((name, v)),
            Some((first, fv)) if fv != v => {
                // The values of secret options (keys, key ids) reach API answers and logs: named, not shown.
                let shown = if is_secret_key(name) { String::new() } else { format!(" ({fv:?} vs {v:?})") };
                return Err(UfsError::InvalidInput(format!("options {first} and {name} disagree{shown}")));
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

fn parse_bool(name: &str, v: &str) -> UfsResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(UfsError::InvalidInput(format!("option {name}: {v:?} is not true or false"))),
    }
}

/// Accepts `http(s)://host[:port][/]` or a bare `host[:port]` (OpenDAL then uses https).
fn check_endpoint(name: &str, v: &str) -> UfsResult<String> {
    let bad = |why: &str| UfsError::InvalidInput(format!("option {name}: {v:?} is not an endpoint ({why})"));
    let rest = match v.split_once("://") {
        Some((scheme, rest)) => {
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return Err(bad("scheme must be http or https"));
            }
            rest
        }
        None => v,
    };
    let host_port = rest.trim_end_matches('/');
    if host_port.is_empty() || host_port.contains('/') || host_port.contains(char::is_whitespace) {
        return Err(bad("expected scheme://host[:port]"));
    }
    // A bracketed IPv6 host holds colons of its own; leave those to the HTTP client.
    if !host_port.starts_with('[')
        && let Some((host, port)) = host_port.rsplit_once(':')
        && (host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(bad("bad port"));
    }
    Ok(v.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> MountOptions {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_alias_is_read() {
        for i in 0..3 {
            let o = opts(&[
                (ACCESS_KEY[i], "ak"),
                (SECRET_KEY[i], "sk"),
                (ENDPOINT[i], "http://127.0.0.1:9000/"),
                (REGION[i], "eu-west-3"),
                (PATH_STYLE[i], "FALSE"),
            ]);
            let s = S3Settings::parse(&o).unwrap();
            assert_eq!(s.credentials, Some(("ak".into(), "sk".into())), "alias set {i}");
            assert!(!format!("{s:?}").contains("sk"), "Debug masks the keys: {s:?}");
            assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
            assert_eq!(s.region, "eu-west-3");
            assert!(!s.path_style);
        }
    }

    #[test]
    fn defaults() {
        let s = S3Settings::parse(&opts(&[])).unwrap();
        assert_eq!(s, S3Settings { credentials: None, endpoint: None, region: "us-east-1".into(), path_style: false });
        let s = S3Settings::parse(&opts(&[("s3a.endpoint", "minio.local:9000"), ("s3.region", "")])).unwrap();
        assert!(s.path_style, "an endpoint defaults to path style");
        assert_eq!(s.region, DEFAULT_REGION, "an empty value counts as absent");
        let s = S3Settings::parse(&opts(&[("alluxio.underfs.s3.disable.dns.buckets", "true")])).unwrap();
        assert!(s.path_style);
    }

    #[test]
    fn agreeing_aliases_are_fine_and_disagreeing_ones_are_refused() {
        let same = opts(&[("s3.accessKeyId", "a"), ("aws.accessKeyId", "a"), ("s3.secretKey", "s")]);
        assert!(S3Settings::parse(&same).is_ok());
        let differ = opts(&[("s3.accessKeyId", "a"), ("aws.accessKeyId", "b"), ("s3.secretKey", "s")]);
        let err = S3Settings::parse(&differ).unwrap_err();
        assert!(
            matches!(&err, UfsError::InvalidInput(m) if m.contains("aws.accessKeyId") && m.contains("s3.accessKeyId"))
        );
        let region = opts(&[("s3.region", "eu-west-1"), ("s3a.region", "eu-west-3")]);
        let err = S3Settings::parse(&region).unwrap_err().to_string();
        assert!(err.contains("\"eu-west-1\" vs \"eu-west-3\""), "other values are shown: {err}");
    }

    #[test]
    fn disagreeing_secrets_are_named_not_shown() {
        for (first, second) in [("s3a.secretKey", "s3.secretKey"), ("s3a.accessKeyId", "aws.accessKeyId")] {
            let o = opts(&[(first, "first-sekret-1"), (second, "second-sekret-2"), ("s3a.endpoint", "http://h:1")]);
            let err = S3Settings::parse(&o).unwrap_err().to_string();
            assert!(err.contains(first) && err.contains(second) && err.contains("disagree"), "{err}");
            assert!(!err.contains("sekret"), "a secret in the message: {err}");
        }
    }

    #[test]
    fn malformed_values_name_the_option() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("s3.pathStyle", "maybe")], "s3.pathStyle"),
            (&[("s3a.path.style.access", "1")], "s3a.path.style.access"),
            (&[("s3.endpoint", "ftp://host")], "s3.endpoint"),
            (&[("s3a.endpoint", "http://host:notaport")], "s3a.endpoint"),
            (&[("alluxio.underfs.s3.endpoint", "http://")], "alluxio.underfs.s3.endpoint"),
            (&[("s3.region", "us east")], "s3.region"),
            (&[("s3a.accessKeyId", "ak")], "s3a.accessKeyId"),
            (&[("aws.secretKey", "sk")], "aws.secretKey"),
        ];
        for (kv, name) in cases {
            match S3Settings::parse(&opts(kv)) {
                Err(UfsError::InvalidInput(m)) => assert!(m.contains(name), "{m:?} should name {name}"),
                other => panic!("{kv:?}: expected InvalidInput, got {other:?}"),
            }
        }
    }

    #[test]
    fn endpoints_accepted() {
        for e in
            ["http://127.0.0.1:9000", "https://s3.amazonaws.com", "minio:9000", "http://[::1]:9000", "[::1]", "host"]
        {
            assert!(S3Settings::parse(&opts(&[("s3.endpoint", e)])).is_ok(), "{e}");
        }
    }
}
