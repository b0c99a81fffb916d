//! [`ObjectMetadata`] in an S3 object's own metadata (see `object_meta`): the four headers OpenDAL writes
//! natively, user metadata as `x-amz-meta-*`, and the rest in the reserved key's record ([`Reserved`],
//! base64 of its JSON so that any value fits a header).

use crate::object_meta::{ObjectMetadata, RECORD_VERSION, RESERVED_KEY, Reserved};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use opendal::Metadata;
use std::collections::BTreeMap;

/// S3's limit on user metadata (keys and values, UTF-8 bytes).
const S3_USER_METADATA_LIMIT: usize = 2048;

/// The user metadata to send for `meta`: printable-ASCII values as they are, the rest (and the fields
/// OpenDAL has no option for) in [`RESERVED_KEY`]. What S3 API derives is left out where it would take
/// the object over S3's 2 KB (the client's own metadata may use all of it): first the parts (reads then
/// know the parts through the completing worker only), then the checksum (reads then answer none).
pub fn user_metadata(meta: &ObjectMetadata) -> BTreeMap<String, String> {
    let size = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let mut out = user_metadata_with(meta, true, true);
    if size(&out) > S3_USER_METADATA_LIMIT && !meta.parts.is_empty() {
        tracing::debug!("the part sizes and checksums are not stored with an S3 object: no room for them");
        out = user_metadata_with(meta, true, false);
    }
    if size(&out) > S3_USER_METADATA_LIMIT && meta.checksum.is_some() {
        tracing::debug!("the checksum is not stored with an S3 object whose user metadata leaves no room for it");
        out = user_metadata_with(meta, false, false);
    }
    out
}

fn user_metadata_with(meta: &ObjectMetadata, checksum: bool, parts: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut reserved = Reserved {
        v: RECORD_VERSION,
        expires: meta.expires.clone(),
        content_language: meta.content_language.clone(),
        checksum: meta.checksum.clone().filter(|_| checksum),
        parts: if parts { meta.parts.clone() } else { Vec::new() },
        part_checksums: if parts { meta.part_checksums.clone() } else { Vec::new() },
        ..Default::default()
    };
    for (k, v) in &meta.user {
        if v.bytes().all(|b| (0x20..0x7f).contains(&b)) && v.trim() == v {
            out.insert(k.clone(), v.clone());
        } else {
            reserved.user.insert(k.clone(), v.clone());
        }
    }
    if reserved != (Reserved { v: RECORD_VERSION, ..Default::default() }) {
        let json = serde_json::to_vec(&reserved).expect("a record of strings serialises");
        out.insert(RESERVED_KEY.to_string(), URL_SAFE_NO_PAD.encode(json));
    }
    out
}

/// The metadata an S3 stat returned (the reserved record decoded and left out of the user metadata).
pub fn from_stat(m: &Metadata) -> ObjectMetadata {
    let mut meta = ObjectMetadata {
        content_type: m.content_type().map(str::to_string),
        cache_control: m.cache_control().map(str::to_string),
        content_disposition: m.content_disposition().map(str::to_string),
        content_encoding: m.content_encoding().map(str::to_string),
        ..Default::default()
    };
    let Some(user) = m.user_metadata() else { return meta };
    for (k, v) in user {
        let k = k.to_ascii_lowercase();
        if k != RESERVED_KEY {
            meta.user.insert(k, v.to_string());
            continue;
        }
        let rec = URL_SAFE_NO_PAD.decode(v).ok().and_then(|b| serde_json::from_slice::<Reserved>(&b).ok());
        match rec {
            Some(rec) if rec.v == RECORD_VERSION => {
                meta.expires = rec.expires;
                meta.content_language = rec.content_language;
                meta.checksum = rec.checksum;
                meta.parts = rec.parts;
                meta.part_checksums = rec.part_checksums;
                meta.user.extend(rec.user);
            }
            _ => loam_core::warn_limited!("an S3 object's {RESERVED_KEY} metadata record is unreadable; ignored"),
        }
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_headers_cannot_carry_goes_in_the_reserved_record() {
        let mut meta = ObjectMetadata { expires: Some("Thu, 01 Jan 2037 00:00:00 GMT".into()), ..Default::default() };
        meta.user.insert("plain".into(), "ascii value".into());
        meta.user.insert("fancy".into(), "grüße ✓".into());
        let sent = user_metadata(&meta);
        assert_eq!(sent["plain"], "ascii value");
        assert!(!sent.contains_key("fancy"));
        let rec: Reserved = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&sent[RESERVED_KEY]).unwrap()).unwrap();
        assert_eq!(rec.user["fancy"], "grüße ✓");
        assert_eq!(rec.expires, meta.expires);
        let checksum = crate::object_meta::Checksum {
            algorithm: "SHA256".into(),
            value: "x".into(),
            kind: crate::object_meta::ChecksumType::FullObject,
        };
        let with_sum = ObjectMetadata { checksum: Some(checksum), ..Default::default() };
        let rec: Reserved =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&user_metadata(&with_sum)[RESERVED_KEY]).unwrap()).unwrap();
        assert_eq!(rec.checksum, with_sum.checksum, "a checksum known before the body is kept");
        let mut full = with_sum.clone();
        full.user.insert("big".into(), "x".repeat(S3_USER_METADATA_LIMIT - 3));
        let sent = user_metadata(&full);
        assert!(
            !sent.contains_key(RESERVED_KEY) && sent["big"].len() == S3_USER_METADATA_LIMIT - 3,
            "no room: no checksum"
        );
        assert!(!user_metadata(&ObjectMetadata::default()).contains_key(RESERVED_KEY), "nothing reserved: no key");
    }

    #[test]
    fn parts_are_kept_where_they_fit_and_left_out_before_the_checksum() {
        let record = |m: &ObjectMetadata| -> Reserved {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&user_metadata(m)[RESERVED_KEY]).unwrap()).unwrap()
        };
        let checksum = crate::object_meta::Checksum {
            algorithm: "CRC32".into(),
            value: "JRTCyQ==".into(),
            kind: crate::object_meta::ChecksumType::FullObject,
        };
        let few = ObjectMetadata {
            checksum: Some(checksum),
            parts: vec![5 << 20, 5 << 20, 7],
            part_checksums: vec!["JRTCyQ==".into(), "QoZTGg==".into(), "YAgjqw==".into()],
            ..Default::default()
        };
        let rec = record(&few);
        assert_eq!((rec.parts.clone(), rec.part_checksums.clone()), (few.parts.clone(), few.part_checksums.clone()));
        let mut back = opendal::MetadataBuilder::file(0);
        back.user_metadata(user_metadata(&few));
        assert_eq!(from_stat(&back.build()), few, "read back whole");
        let many = ObjectMetadata { parts: vec![5 << 20; 500], part_checksums: vec!["JRTCyQ==".into(); 500], ..few };
        let rec = record(&many);
        assert!(rec.parts.is_empty() && rec.part_checksums.is_empty(), "500 parts do not fit 2 KB");
        assert_eq!(rec.checksum, many.checksum, "the checksum still does");
    }
}
