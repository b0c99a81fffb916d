//! Certificates for TLS tests, made by the `openssl` CLI (`scripts/setup-test-deps.sh` installs it) in a
//! temporary directory: a CA per test, and certificates it signs for `localhost` and `127.0.0.1`, each
//! good for both server and client authentication. ECDSA P-256 keys in PKCS#8, as rustls reads them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA and the directory its files live in (removed on drop).
pub struct TestCa {
    dir: tempfile::TempDir,
    name: String,
}

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl TestCa {
    /// A new self-signed CA named `name` (its files are `<name>-ca.pem` and `<name>-ca.key`).
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = Self { dir, name: name.into() };
        let (cert, key) = (ca.cert(), ca.dir.path().join(format!("{name}-ca.key")));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
        ]);
        ca
    }

    /// The CA's certificate: what clients trust (`--ca-cert`) or servers check clients against.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join(format!("{}-ca.pem", self.name))
    }

    /// The directory of the CA's files, where tests may put more.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A certificate for `localhost` and `127.0.0.1` named `cn`, signed by this CA, as `<cn>.pem` and
    /// `<cn>.key` in [`TestCa::dir`] (an existing pair is replaced, in place).
    pub fn issue(&self, cn: &str) -> CertFiles {
        let d = self.dir.path();
        let files = CertFiles { cert: d.join(format!("{cn}.pem")), key: d.join(format!("{cn}.key")) };
        let (csr, ext) = (d.join(format!("{cn}.csr")), d.join(format!("{cn}.ext")));
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n\
             subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("write the extensions file");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            s(&files.key),
            "-out",
            s(&csr),
        ]);
        let ca_key = d.join(format!("{}-ca.key", self.name));
        openssl(&[
            "x509",
            "-req",
            "-in",
            s(&csr),
            "-CA",
            s(&self.cert()),
            "-CAkey",
            s(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            s(&ext),
            "-out",
            s(&files.cert),
        ]);
        files
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn openssl(args: &[&str]) {
    let out =
        Command::new("openssl").args(args).output().expect("run openssl (scripts/setup-test-deps.sh installs it)");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}
