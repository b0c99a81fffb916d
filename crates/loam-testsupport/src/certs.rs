//! Test certificates: a CA and leaf certificates it signs, made by the `openssl` CLI (installed by
//! `scripts/setup-test-deps.sh`) in a temporary directory, as PEM files for servers and clients.
//!
//! Keys are P-256 (quick to make); a leaf is good for both server and client authentication and names
//! `127.0.0.1` and `localhost`, so one leaf serves either side of a loopback test. The openssl CLI instead
//! of a Rust crate: no new dependency, and the same files that etcd (Go's TLS) and rustls both read.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA with its key, in its own temporary directory (removed on drop, with every leaf made from it).
pub struct TestCa {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM): what a peer trusts.
    pub cert: PathBuf,
    key: PathBuf,
}

/// A leaf certificate and its private key (PEM files inside the CA's directory).
#[derive(Clone, Debug)]
pub struct LeafCert {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

/// Runs openssl with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (run scripts/setup-test-deps.sh): {e}"));
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

const KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("loam-certs-").tempdir().expect("create a temp dir for certs");
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subject];
        args.extend(KEY);
        args.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        args.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
        openssl(dir.path(), &args);
        Self { cert: dir.path().join("ca.pem"), key: dir.path().join("ca.key"), dir }
    }

    /// A leaf named `name` (its CN, which etcd takes as the user of a client certificate without a
    /// token), signed by this CA, for `127.0.0.1` and `localhost`, server and client use.
    pub fn leaf(&self, name: &str) -> LeafCert {
        let dir = self.dir.path();
        let (key, csr, cert, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        std::fs::write(
            dir.join(&ext),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .expect("write the extensions file");
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-nodes", "-subj", &subject, "-keyout", &key, "-out", &csr];
        args.extend(KEY);
        openssl(dir, &args);
        let ca_key = self.key.to_string_lossy().into_owned();
        let ca_cert = self.cert.to_string_lossy().into_owned();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        );
        LeafCert { cert: dir.join(cert), key: dir.join(key) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_verifies_against_its_ca_only() {
        let ca = TestCa::new("test-ca");
        let leaf = ca.leaf("server");
        let other = TestCa::new("other-ca");
        let verify = |ca: &TestCa| {
            Command::new("openssl")
                .args(["verify", "-CAfile"])
                .arg(&ca.cert)
                .arg(&leaf.cert)
                .output()
                .expect("run openssl verify")
                .status
                .success()
        };
        assert!(verify(&ca));
        assert!(!verify(&other));
        assert!(std::fs::read_to_string(&leaf.key).unwrap().contains("PRIVATE KEY"));
    }
}
