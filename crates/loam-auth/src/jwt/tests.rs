//! JWTs signed here with keys made here: ES256 by ring, RS256 by a key `openssl` generates.

use super::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl Signer {
    fn ec() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::Ec(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap())
    }

    fn rsa(dir: &Path) -> Self {
        let (pem, der) = (dir.join("rsa.pem"), dir.join("rsa.der"));
        let openssl = |args: &[&str], out: &Path| {
            let ok = std::process::Command::new("openssl").args(args).arg(out).status().unwrap().success();
            assert!(ok, "openssl {args:?}");
        };
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"], &pem);
        // PKCS#1 DER, which ring reads.
        openssl(&["pkey", "-in", pem.to_str().unwrap(), "-outform", "DER", "-out"], &der);
        Signer::Rsa(RsaKeyPair::from_der(&std::fs::read(der).unwrap()).unwrap())
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Signer::Rsa(k) => {
                let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
        }
    }

    fn sign(&self, kid: &str, claims: &Value) -> String {
        let alg = match self {
            Signer::Ec(_) => "ES256",
            Signer::Rsa(_) => "RS256",
        };
        let head = b64(json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string().as_bytes());
        let signed = format!("{head}.{}", b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Ec(k) => k.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig).unwrap();
                sig
            }
        };
        format!("{signed}.{}", b64(&sig))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn provider(dir: &Path, keys: Value) -> JwtProvider {
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": keys }).to_string()).unwrap();
    let cfg = JwtConfig {
        jwks,
        audience: "loam".into(),
        issuer: Some("https://kubernetes.default.svc".into()),
        role_claim: "loam.io/roles".into(),
        subject_roles: vec![("system:serviceaccount:loam:loam-worker".into(), Role::Cluster)],
    };
    JwtProvider::open_checking_every(cfg, Duration::ZERO).unwrap()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": "https://kubernetes.default.svc", "aud": ["loam"], "sub": "alice", "exp": now() + 600});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

#[test]
fn es256_and_rs256_tokens_give_their_roles() {
    let dir = tempfile::tempdir().unwrap();
    let (ec, rsa) = (Signer::ec(), Signer::rsa(dir.path()));
    let p = provider(dir.path(), json!([ec.jwk("e1"), rsa.jwk("r1")]));
    let t = ec.sign("e1", &claims(json!({"loam.io/roles": ["admin", "bogus"]})));
    assert_eq!(p.authenticate(&t).unwrap().unwrap(), Principal { name: "alice".into(), roles: vec![Role::Admin] });
    let t = rsa.sign("r1", &claims(json!({"loam.io/roles": "read write"})));
    assert_eq!(p.authenticate(&t).unwrap().unwrap().roles, [Role::Read, Role::Write]);
    // A Kubernetes service-account token: no role claim, a role by its subject.
    let sa = claims(json!({"sub": "system:serviceaccount:loam:loam-worker", "kubernetes.io": {"namespace": "loam"}}));
    assert_eq!(p.authenticate(&rsa.sign("r1", &sa)).unwrap().unwrap().roles, [Role::Cluster]);
}

#[test]
fn bad_tokens_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (ec, other) = (Signer::ec(), Signer::ec());
    let p = provider(dir.path(), json!([ec.jwk("e1")]));
    let refused = |t: String, why: &str| {
        let e = p.authenticate(&t).unwrap_err();
        assert!(e.to_string().contains(why), "{e} lacks {why}");
        assert_eq!(e.status(), 401);
    };
    refused(other.sign("e1", &claims(json!({}))), "does not verify");
    refused(ec.sign("e1", &claims(json!({"exp": now() - 3600}))), "expired");
    refused(ec.sign("e1", &claims(json!({"nbf": now() + 3600}))), "not valid yet");
    refused(ec.sign("e1", &claims(json!({"aud": "someone-else"}))), "audience");
    refused(ec.sign("e1", &claims(json!({"iss": "https://evil"}))), "issuer");
    let no_exp = {
        let mut c = claims(json!({}));
        c.as_object_mut().unwrap().remove("exp");
        c
    };
    refused(ec.sign("e1", &no_exp), "no exp");
    // Unsigned and HMAC tokens: the header alone says no.
    let body = b64(claims(json!({"loam.io/roles": "admin"})).to_string().as_bytes());
    for alg in ["none", "HS256"] {
        let head = b64(json!({"alg": alg}).to_string().as_bytes());
        refused(format!("{head}.{body}.{}", b64(b"sig")), "is not accepted");
    }
    // A token that is no JWT is left to the other providers.
    assert_eq!(p.authenticate("plain-token-0123456789").unwrap(), None);
    // A tampered payload does not verify.
    let t = ec.sign("e1", &claims(json!({"loam.io/roles": "read"})));
    let parts: Vec<&str> = t.split('.').collect();
    refused(format!("{}.{body}.{}", parts[0], parts[2]), "does not verify");
}

#[test]
fn a_rotated_jwks_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Signer::ec(), Signer::ec());
    let p = provider(dir.path(), json!([old.jwk("k1")]));
    let t_old = old.sign("k1", &claims(json!({"loam.io/roles": "read"})));
    let t_new = new.sign("k2", &claims(json!({"loam.io/roles": "read"})));
    assert!(p.authenticate(&t_old).is_ok() && p.authenticate(&t_new).is_err());
    std::fs::write(dir.path().join("jwks.json"), json!({"keys": [new.jwk("k2")]}).to_string()).unwrap();
    assert!(p.authenticate(&t_old).is_err() && p.authenticate(&t_new).unwrap().is_some());
    let e = parse_jwks(r#"{"keys": [{"kty": "oct", "k": "AA"}]}"#, Path::new("j")).unwrap_err();
    assert!(e.contains("no RS256 or ES256"), "{e}");
}
