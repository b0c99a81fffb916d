//! The bearer check in front of every HTTP surface of Loam. A listener's [`Guard`] holds its
//! [`Authenticator`], its [`Policy`] (what each method and path needs: nothing, or a [`Role`]) and whether
//! anonymous reads are open; [`Guard::apply`] puts it in front of a router as axum middleware, so a
//! request is refused before any handler runs and nothing changes.
//!
//! Refusals are `{"status": "…"}` bodies like every other Loam error: `401` with
//! `WWW-Authenticate: Bearer realm="loam"` (plus `error="invalid_token"` for a bad token, RFC 6750) for
//! missing or bad credentials, `403` for the wrong role. They name the problem and the role, never the
//! token and never a server path. A refusal is the client's error, logged at debug.

use crate::{AuthError, Authenticator, Role};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use loam_core::coordinator_api::StatusBody;
use std::sync::Arc;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health checks, documents about the API.
    Public,
    /// A principal holding a role that grants this one.
    Need(Role),
    /// A principal holding a role that grants either of these (the worker's `/v1/drain`: the `cluster`
    /// role of a member, or an admin's).
    Either(Role, Role),
}

/// What each request of a surface needs, by method and path.
pub type Policy = fn(&Method, &str) -> Access;

/// The rule every Loam HTTP surface follows: the `public` paths need nothing; paths under
/// `internal_prefix` (what cluster members call on each other) need [`Role::Cluster`]; reads (`GET`,
/// `HEAD`) need [`Role::Read`]; every other method needs `writes` (the surface's write role).
pub fn surface_access(method: &Method, path: &str, public: &[&str], internal_prefix: &str, writes: Role) -> Access {
    if public.contains(&path) {
        Access::Public
    } else if path.starts_with(internal_prefix) {
        Access::Need(Role::Cluster)
    } else if method == Method::GET || method == Method::HEAD {
        Access::Need(Role::Read)
    } else {
        Access::Need(writes)
    }
}

/// The check of one listener.
#[derive(Clone)]
pub struct Guard {
    auth: Authenticator,
    pub(crate) policy: Policy,
    pub(crate) anonymous_read: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("auth", &self.auth).field("anonymous_read", &self.anonymous_read).finish()
    }
}

impl Guard {
    /// A guard asking `auth` what `policy` says each request needs; with `anonymous_read`, a request
    /// that needs only [`Role::Read`] and sends no credentials passes.
    pub fn new(auth: Authenticator, policy: Policy, anonymous_read: bool) -> Self {
        Self { auth, policy, anonymous_read }
    }

    /// `router` behind this guard.
    pub fn apply<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.layer(middleware::from_fn_with_state(Arc::new(self), check))
    }

    /// What `method` on `path` needs, and whether a request with `authorization` may have it.
    pub fn admit(&self, method: &Method, path: &str, authorization: Option<&str>) -> Result<(), AuthError> {
        match (self.policy)(method, path) {
            Access::Public => Ok(()),
            Access::Need(Role::Read) if self.anonymous_read && authorization.is_none() => Ok(()),
            Access::Need(role) => self.auth.authorize(authorization, role).map(|_| ()),
            Access::Either(first, second) => match self.auth.authorize(authorization, first) {
                Err(AuthError::Forbidden { .. }) => self.auth.authorize(authorization, second).map(|_| ()),
                other => other.map(|_| ()),
            },
        }
    }
}

async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    // A header that is not visible ASCII is as good as none that names a token.
    let authorization = req.headers().get(AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{1}"));
    match guard.admit(req.method(), req.uri().path(), authorization) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::debug!(method = %req.method(), path = req.uri().path(), "refused: {e}");
            refusal(&e)
        }
    }
}

/// The answer to a refused request.
pub fn refusal(e: &AuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let challenge = match e {
        AuthError::Missing => Some(r#"Bearer realm="loam""#),
        AuthError::Invalid(_) => Some(r#"Bearer realm="loam", error="invalid_token""#),
        AuthError::Forbidden { .. } => Some(r#"Bearer realm="loam", error="insufficient_scope""#),
    };
    let mut r = (status, axum::Json(StatusBody { status: e.to_string() })).into_response();
    if let Some(c) = challenge {
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Principal, Provider};

    struct Fixed;
    impl Provider for Fixed {
        fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
            Ok((token == "reader-0123456789").then(|| Principal { name: "r".into(), roles: vec![Role::Read] }))
        }
    }

    fn policy(m: &Method, path: &str) -> Access {
        match (m, path) {
            (_, "/health") => Access::Public,
            (&Method::GET, _) => Access::Need(Role::Read),
            _ => Access::Need(Role::Admin),
        }
    }

    #[test]
    fn the_policy_decides_and_anonymous_reads_are_only_reads() {
        let auth = Authenticator::new(vec![Arc::new(Fixed)]);
        let closed = Guard::new(auth.clone(), policy, false);
        let open = Guard::new(auth, policy, true);
        let reader = Some("Bearer reader-0123456789");
        assert_eq!(closed.admit(&Method::POST, "/health", None), Ok(()));
        assert_eq!(closed.admit(&Method::GET, "/x", None), Err(AuthError::Missing));
        assert_eq!(closed.admit(&Method::GET, "/x", reader), Ok(()));
        assert_eq!(closed.admit(&Method::POST, "/x", reader).unwrap_err().status(), 403);
        assert_eq!(open.admit(&Method::GET, "/x", None), Ok(()));
        assert_eq!(
            open.admit(&Method::GET, "/x", Some("Bearer nope")).unwrap_err().status(),
            401,
            "a bad token is refused"
        );
        assert_eq!(open.admit(&Method::POST, "/x", None), Err(AuthError::Missing), "writes are never anonymous");
    }

    #[test]
    fn refusals_carry_a_challenge_and_a_status_body() {
        let r = refusal(&AuthError::Missing);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], r#"Bearer realm="loam""#);
        let r = refusal(&AuthError::Forbidden { who: "r".into(), need: Role::Admin });
        assert_eq!(r.status(), 403);
    }
}
