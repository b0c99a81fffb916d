//! The token file (`--auth-token-file`): one `<role> <token>` pair per line, `#` comments and blank lines
//! ignored; a token may appear on several lines to hold several roles. Only SHA-256 digests of the tokens
//! are kept, compared in constant time. The file is re-read when it changes ([`crate::reload`]); a
//! version with an error (an unknown role, a token shorter than [`MIN_TOKEN_LEN`]) is refused whole,
//! naming the line, never the token.

use crate::reload::{CHECK_INTERVAL, Reloading};
use crate::{AuthError, Principal, Provider, Role, digest, digests_equal};
use std::path::Path;
use std::time::Duration;

/// The shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// One token of the file.
struct Entry {
    digest: [u8; 32],
    role: Role,
    line: usize,
}

/// Tokens from a file.
pub struct TokenFile {
    file: Reloading<Vec<Entry>>,
}

impl TokenFile {
    /// Reads `path` (it must exist and parse).
    pub fn open(path: &Path) -> Result<Self, String> {
        Self::open_checking_every(path, CHECK_INTERVAL)
    }

    /// [`TokenFile::open`], looking for changes every `interval`.
    pub fn open_checking_every(path: &Path, interval: Duration) -> Result<Self, String> {
        Ok(Self { file: Reloading::open(path, parse, interval)? })
    }
}

impl Provider for TokenFile {
    fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let d = digest(token);
        let entries = self.file.get();
        // Every entry is compared, matched or not, so the time taken says nothing about the tokens.
        let mut roles = Vec::new();
        let mut first_line = None;
        for e in entries.iter() {
            if digests_equal(&e.digest, &d) {
                roles.push(e.role);
                first_line.get_or_insert(e.line);
            }
        }
        Ok(first_line.map(|line| Principal { name: format!("token-file:{line}"), roles }))
    }
}

fn parse(text: &str, path: &Path) -> Result<Vec<Entry>, String> {
    let entries = entries(text, path)?;
    Ok(entries.into_iter().map(|(role, token, line)| Entry { digest: digest(&token), role, line }).collect())
}

/// The `(role, token, line)` entries of a token file's text, or the first error (naming the line, never the token).
pub(crate) fn entries(text: &str, path: &Path) -> Result<Vec<(Role, String, usize)>, String> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}, line {}", path.display(), i + 1);
        let mut words = line.split_whitespace();
        let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("{}: expected `<role> <token>`", at()));
        };
        let role: Role = role.parse().map_err(|e| format!("{}: {e}", at()))?;
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!("{}: the token is shorter than {MIN_TOKEN_LEN} characters", at()));
        }
        entries.push((role, token.to_string(), i + 1));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "admin-0123456789abcdef";
    const READER: &str = "read-0123456789abcdef";

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn tokens_map_to_their_roles() {
        let (_d, path) =
            file(&format!("# tokens\n\nadmin {ADMIN}\nread {READER}   # the dashboards\nwrite {READER}\n"));
        let t = TokenFile::open(&path).unwrap();
        let p = t.authenticate(ADMIN).unwrap().unwrap();
        assert_eq!((p.name.as_str(), p.roles.as_slice()), ("token-file:3", [Role::Admin].as_slice()));
        assert_eq!(t.authenticate(READER).unwrap().unwrap().roles, [Role::Read, Role::Write]);
        assert_eq!(t.authenticate("read-0123456789abcdeX").unwrap(), None);
    }

    #[test]
    fn bad_lines_are_named_without_the_token() {
        for (text, needle) in [
            (format!("root {ADMIN}\n"), "line 1: unknown role \"root\""),
            ("\nadmin tiny1\n".to_string(), "line 2: the token is shorter than 16"),
            (format!("admin {ADMIN} extra\n"), "line 1: expected `<role> <token>`"),
        ] {
            let (_d, path) = file(&text);
            let e = TokenFile::open(&path).err().unwrap();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains(ADMIN) && !e.contains("tiny1"), "{e}");
        }
    }

    #[test]
    fn a_changed_file_rotates_tokens_and_a_broken_one_is_refused() {
        let (_d, path) = file(&format!("admin {ADMIN}\n"));
        let t = TokenFile::open_checking_every(&path, Duration::ZERO).unwrap();
        assert!(t.authenticate(ADMIN).unwrap().is_some());
        std::fs::write(&path, format!("read {READER}\n")).unwrap();
        assert!(t.authenticate(ADMIN).unwrap().is_none(), "the old token is gone");
        assert!(t.authenticate(READER).unwrap().is_some(), "the new one works");
        std::fs::write(&path, "admin x\n").unwrap();
        assert!(t.authenticate(READER).unwrap().is_some(), "a broken version keeps the previous one");
        std::fs::remove_file(&path).unwrap();
        assert!(t.authenticate(READER).unwrap().is_some(), "so does a removed file");
    }
}
