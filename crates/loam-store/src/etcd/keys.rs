//! Key ranges in etcd's terms. etcd has no "prefix" on the wire: a prefix is the half-open range
//! `[prefix, prefix_end)`, where `prefix_end` is the prefix with its last byte below 0xff incremented
//! (trailing 0xff bytes dropped). Paging starts the range just past the last key seen, `start_after + "\0"`,
//! the smallest key that sorts after it.

/// The end (exclusive) of the range of keys that start with `prefix`. `[0]` for a prefix with no end (empty,
/// or all 0xff bytes): etcd reads a range end of `"\0"` as "every key from the start on".
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The start of a listing of `prefix` strictly after `start_after`: the later of the prefix itself and the
/// first key after `start_after`.
pub(super) fn list_start(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    let prefix = prefix.as_bytes().to_vec();
    match start_after {
        Some(after) => {
            let mut next = after.as_bytes().to_vec();
            next.push(0);
            next.max(prefix)
        }
        None => prefix,
    }
}

/// Whether the range `[start, end)` is empty. etcd's open end `"\0"` is never empty.
pub(super) fn range_is_empty(start: &[u8], end: &[u8]) -> bool {
    end != [0] && start >= end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn list_start_is_past_start_after_but_never_before_the_prefix() {
        assert_eq!(list_start("/p/", None), b"/p/");
        assert_eq!(list_start("/p/", Some("/p/b")), b"/p/b\0");
        assert_eq!(list_start("/p/", Some("/")), b"/p/", "a start_after before the prefix lists it whole");
        assert_eq!(list_start("/p/", Some("/z")), b"/z\0");
    }

    #[test]
    fn empty_ranges() {
        assert!(range_is_empty(b"/z\0", &prefix_end(b"/p/")));
        assert!(!range_is_empty(b"/p/b\0", &prefix_end(b"/p/")));
        assert!(!range_is_empty(b"\xff\xff", &[0]), "the open end never makes a range empty");
    }
}
