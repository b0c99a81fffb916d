//! Request ids: one per request a listener serves, so that every log line the request causes, on every
//! node it reaches, can be found by one string.
//!
//! The listeners' edge (`loam_listener`) takes the client's `x-request-id` when it is well-formed
//! ([`accept`]: 1 to [`MAX_LEN`] visible ASCII characters), else makes one ([`fresh`]); it answers it in
//! `x-request-id`, opens a `request` span with the id (so every line carries `request_id`), and runs the
//! handler in [`scope`], where [`current`] reads it: the peer client sends it on the calls it makes for
//! the request, so the other node's lines carry the same id. The S3 API answers the same id in
//! `x-amz-request-id`. Work a handler hands to a task of its own runs outside the scope.

use std::future::Future;

/// The header that carries a request id, in and out.
pub const HEADER: &str = "x-request-id";
/// The longest incoming id taken as it is.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: String;
}

/// A new id: 16 upper-case hex digits (as S3's `x-amz-request-id`).
///
/// Ids need to be unique, not secret: a per-process counter is mixed with a random seed drawn once
/// (splitmix64's finaliser is a bijection, so a process never repeats an id; the seed keeps processes
/// apart). A random id per request cost a `getrandom` system call each (`crng_make_state` in a profile
/// of small requests).
pub fn fresh() -> String {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:016X}", mix(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))))
}

/// splitmix64's finaliser: a bijection of `u64` that spreads consecutive inputs over all bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `id` may be taken from a client: 1 to [`MAX_LEN`] visible ASCII characters (no space, no
/// control character: it goes into log lines and headers as it is).
pub fn is_well_formed(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The incoming id when it is well-formed, else a new one.
pub fn accept(incoming: Option<&[u8]>) -> String {
    match incoming {
        Some(id) if is_well_formed(id) => String::from_utf8_lossy(id).into_owned(),
        _ => fresh(),
    }
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_sixteen_hex_digits_and_never_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| fresh()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter().all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn only_well_formed_ids_are_taken() {
        assert_eq!(accept(Some(b"abc-123")), "abc-123");
        for bad in [&b""[..], b"a b", b"a\nb", "é".as_bytes(), &[b'x'; MAX_LEN + 1]] {
            let id = accept(Some(bad));
            assert!(id.len() == 16 && id.as_bytes() != bad, "{bad:?} replaced");
        }
        assert_ne!(accept(None), accept(None));
    }
}
