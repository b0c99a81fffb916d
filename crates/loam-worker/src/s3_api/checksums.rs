//! The checksums GET and HEAD answer with `x-amz-checksum-mode: ENABLED` (and GetObjectAttributes'
//! `Checksum`): the ones stored with the object (`ObjectMetadata::checksum`, `part_checksums`), never
//! computed on the way out. As S3 answers:
//!
//! - without the header, no checksum header at all;
//! - the whole object (no `Range`, no `partNumber`, or `partNumber=1` of a single-part object): its
//!   checksum and `x-amz-checksum-type` (`FULL_OBJECT`, or `COMPOSITE` as `<base64>-<parts>`);
//! - `partNumber=n` of a multipart object: that part's checksum, where the upload computed it;
//! - a `Range`: none (a checksum of the whole would not describe the bytes sent).
//!
//! What is stored depends on the UFS (`loam_ufs::object_meta`): `file://` keeps every checksum, also
//! the ones computed while the body streamed (a trailer's, a FULL_OBJECT multipart one) and the parts';
//! an S3 UFS keeps only what is known before the body (a header's checksum; a multipart upload's, and
//! its parts' where they fit S3's 2 KB), so there the others are absent from the answer.

use crate::s3_api::verify::{Algorithm, ChecksumFields, Kind, ObjectChecksum};
use loam_ufs::ObjectMetadata;
use loam_ufs::object_meta::ChecksumType;
use s3s::dto::{ChecksumMode, GetObjectOutput, HeadObjectOutput};

/// Whether a request asked for checksums (`x-amz-checksum-mode: ENABLED`).
pub fn enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

/// The object's stored checksum (none when the record names an algorithm this worker does not know).
pub fn of_object(meta: &ObjectMetadata) -> Option<ObjectChecksum> {
    let c = meta.checksum.as_ref()?;
    Some(ObjectChecksum {
        algorithm: Algorithm::parse(&c.algorithm)?,
        value: c.value.clone(),
        kind: match c.kind {
            ChecksumType::FullObject => Kind::FullObject,
            ChecksumType::Composite => Kind::Composite,
        },
    })
}

/// The stored checksum of part `n` (1-based) of a multipart object: the checksum of the part's bytes,
/// under the object's checksum type (`x-amz-checksum-type` names the object's, as S3 answers a part GET).
pub fn of_part(meta: &ObjectMetadata, n: usize) -> Option<ObjectChecksum> {
    let whole = of_object(meta)?;
    let value = meta.part_checksums.get(n.checked_sub(1)?)?.clone();
    (meta.part_checksums.len() == meta.parts.len()).then_some(ObjectChecksum { value, ..whole })
}

/// Sets (or clears, with `None`) the checksum headers of a GET answer.
pub fn set_get(out: &mut GetObjectOutput, c: Option<&ObjectChecksum>) {
    let f = crate::s3_api::verify::fields(c);
    out.checksum_crc32 = f.crc32;
    out.checksum_crc32c = f.crc32c;
    out.checksum_crc64nvme = f.crc64nvme;
    out.checksum_sha1 = f.sha1;
    out.checksum_sha256 = f.sha256;
    out.checksum_type = f.kind;
}

/// Sets (or clears, with `None`) the checksum headers of a HEAD answer.
pub fn set_head(out: &mut HeadObjectOutput, c: Option<&ObjectChecksum>) {
    let ChecksumFields { crc32, crc32c, crc64nvme, sha1, sha256, kind } = crate::s3_api::verify::fields(c);
    (out.checksum_crc32, out.checksum_crc32c, out.checksum_crc64nvme) = (crc32, crc32c, crc64nvme);
    (out.checksum_sha1, out.checksum_sha256, out.checksum_type) = (sha1, sha256, kind);
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_ufs::object_meta::Checksum;

    fn multipart() -> ObjectMetadata {
        ObjectMetadata {
            checksum: Some(Checksum {
                algorithm: "CRC32".into(),
                value: "AAAAAA==-2".into(),
                kind: ChecksumType::Composite,
            }),
            parts: vec![5, 1],
            part_checksums: vec!["p1".into(), "p2".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_stored_checksums_are_answered_as_s3_names_them() {
        let m = multipart();
        let whole = of_object(&m).unwrap();
        assert_eq!(
            (whole.algorithm, whole.kind, whole.value.as_str()),
            (Algorithm::Crc32, Kind::Composite, "AAAAAA==-2")
        );
        let p2 = of_part(&m, 2).unwrap();
        assert_eq!((p2.algorithm, p2.kind, p2.value.as_str()), (Algorithm::Crc32, Kind::Composite, "p2"));
        assert!(of_part(&m, 0).is_none() && of_part(&m, 3).is_none());
        let partial = ObjectMetadata { part_checksums: vec!["p1".into()], ..multipart() };
        assert!(of_part(&partial, 1).is_none(), "part checksums must cover every part");
        assert!(of_object(&ObjectMetadata::default()).is_none());
        let mut out = GetObjectOutput::default();
        set_get(&mut out, Some(&whole));
        assert_eq!(
            (out.checksum_crc32.as_deref(), out.checksum_type.as_ref().map(|t| t.as_str())),
            (Some("AAAAAA==-2"), Some("COMPOSITE"))
        );
        set_get(&mut out, None);
        assert!(out.checksum_crc32.is_none() && out.checksum_type.is_none());
    }

    #[test]
    fn only_enabled_asks() {
        assert!(enabled(Some(&ChecksumMode::from_static(ChecksumMode::ENABLED))));
        assert!(!enabled(Some(&ChecksumMode::from("DISABLED".to_string()))) && !enabled(None));
    }
}
