//! The Kubernetes manifests: every overlay (and the ServiceMonitor component) renders with `kubectl
//! kustomize` and passes every check of `scripts/k8s_manifests.py` (schemas, selectors, references, ports,
//! probe paths, the config files through `loam --print-config`, securityContext); and each check fails on
//! a copy of the render broken in its one way.

use super::{LOAM, repo, run_ok};
use std::path::Path;
use std::process::Command;

/// The probe endpoints of each process, from the code.
fn probes() -> Vec<String> {
    use loam_core::probe_api::*;
    let worker = [WORKER_HEALTH_PATH, WORKER_READY_PATH];
    let coordinator = [COORDINATOR_HEALTH_PATH, COORDINATOR_READY_PATH];
    let mut out = Vec::new();
    for p in worker {
        out.extend(["--probe".to_string(), format!("worker={p}")]);
    }
    for p in coordinator {
        out.extend(["--probe".to_string(), format!("coordinator={p}")]);
    }
    out
}

fn python() -> std::path::PathBuf {
    loam_testsupport::s3_server::venv_dir().join("bin/python")
}

fn render(kustomization: &Path, out: &Path) {
    let rendered = run_ok(Command::new("kubectl").arg("kustomize").arg(kustomization));
    std::fs::write(out, rendered.stdout).expect("write the render");
}

/// `k8s_manifests.py check`: (passed, what it printed).
fn check(render: &Path, secrets: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("scripts/k8s_manifests.py")).arg("check").arg(render).args(["--loam", LOAM]);
    cmd.args(probes());
    if let Some(s) = secrets {
        cmd.arg("--secrets").arg(s);
    }
    let out = cmd.output().expect("run scripts/k8s_manifests.py (scripts/setup-test-deps.sh installs its venv)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The Secrets the production and daemonset overlays expect, as `make-secrets.sh` makes them.
fn made_secrets(dir: &Path) -> std::path::PathBuf {
    let secrets = dir.join("secrets");
    run_ok(Command::new("bash").arg(repo().join("deploy/k8s/make-secrets.sh")).arg(&secrets));
    secrets
}

#[test]
fn every_overlay_renders_and_passes_the_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = made_secrets(tmp.path());
    let k8s = repo().join("deploy/k8s");
    // The component, on top of the dev overlay (it is optional, so no overlay of ours includes it).
    let with_monitor = tmp.path().join("with-servicemonitor");
    std::fs::create_dir(&with_monitor).unwrap();
    // kustomize takes only relative paths: up to / from the temporary directory, then down to the repo.
    let up = "../".repeat(with_monitor.components().count() - 1);
    let rel = |p: &str| format!("{up}{}", k8s.join(p).strip_prefix("/").unwrap().display());
    std::fs::write(
        with_monitor.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{}]\ncomponents: [{}]\n",
            rel("overlays/dev"),
            rel("components/servicemonitor")
        ),
    )
    .unwrap();
    let cases = [
        ("dev", k8s.join("overlays/dev"), None),
        ("production", k8s.join("overlays/production"), Some(secrets.as_path())),
        ("daemonset", k8s.join("overlays/daemonset"), Some(secrets.as_path())),
        ("dev+servicemonitor", with_monitor.clone(), None),
    ];
    for (label, dir, secrets) in cases {
        let out = tmp.path().join(format!("{label}.yaml"));
        render(&dir, &out);
        let (ok, text) = check(&out, secrets);
        assert!(ok, "{label}: the checks failed:\n{text}");
        if label == "dev+servicemonitor" {
            assert!(std::fs::read_to_string(&out).unwrap().contains("kind: ServiceMonitor"));
        }
    }
    // Without the Secrets it expects, production fails the references check: they are not in its render.
    let out = tmp.path().join("production.yaml");
    let (ok, text) = check(&out, None);
    assert!(!ok && text.contains("names Secret 'loam-tokens', which does not exist"), "{text}");
}

#[test]
fn each_check_fails_on_a_render_broken_its_way() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("dev.yaml");
    render(&repo().join("deploy/k8s/overlays/dev"), &dev);
    let cases = [
        ("schema", "schema: Service/loam-coordinator: Additional properties are not allowed"),
        ("selector", "selector: Service/loam-coordinator selects no pod"),
        ("headless", "Service/loam-worker is not headless"),
        ("secret", "names key 'secret' of Secret 'loam-s3-keys', which it lacks"),
        ("configmap", "names ConfigMap 'loam-conf', which does not exist"),
        ("port", "port: Service/loam-s3 targets port 's3api'"),
        ("probe-port", "livenessProbe uses port 'metrics', no container port"),
        ("probe-path", "readinessProbe path '/v1/healthz' is not an endpoint of worker"),
        ("config", "refuses /etc/loam/worker.toml"),
        ("security", "worker lacks: readOnlyRootFilesystem"),
        ("prestop", "preStop is ['loam', 'worker', 'drain'], not"),
    ];
    for (mutation, expected) in cases {
        let broken = tmp.path().join(format!("{mutation}.yaml"));
        run_ok(
            Command::new(python())
                .arg(repo().join("scripts/k8s_manifests.py"))
                .args(["break", mutation])
                .arg(&dev)
                .arg(&broken),
        );
        let (ok, text) = check(&broken, None);
        assert!(!ok, "{mutation}: the broken render passed:\n{text}");
        assert!(text.contains(expected), "{mutation}: expected {expected:?} in:\n{text}");
    }
}

#[test]
fn the_image_tag_is_the_workspace_version() {
    let kustomization = std::fs::read_to_string(repo().join("deploy/k8s/base/kustomization.yaml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        kustomization.contains(&format!("newTag: \"{version}\"")),
        "deploy/k8s/base/kustomization.yaml must tag the image {version}"
    );
}
