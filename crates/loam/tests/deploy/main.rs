//! Deployment artefacts, one test binary: the container image (`scripts/build-image.sh`, checked by
//! running the binary from the image's exported root filesystem) and the Kubernetes manifests
//! (`deploy/k8s`, rendered with `kubectl kustomize` and checked by `scripts/k8s_manifests.py`).

mod image;
mod k8s;
mod kubernetes;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test.
pub const LOAM: &str = env!("CARGO_BIN_EXE_loam");

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// Runs `cmd` to completion; panics with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
