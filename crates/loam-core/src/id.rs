//! Identities: worker ids (`worker-<uuid>`), ring identities (`{"version": 1, "identifier": hex}`),
//! and file ids (`path_id`, the SHA-256 of the full UFS URI), all as Alluxio 3.x writes them.

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The version field of every identity Loam writes (Alluxio writes 1).
pub const IDENTITY_VERSION: i32 = 1;

/// A worker's id, `worker-<uuid>`; the UUID is kept in the worker's data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(Uuid);

impl WorkerId {
    /// A fresh random id, for a worker starting for the first time.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id of a worker named statically by host name: UUID v3 of the host name bytes.
    pub fn from_host_name(host: &str) -> Self {
        Self(name_uuid_from_bytes(host.as_bytes()))
    }

    /// The id's UUID.
    pub fn uuid(&self) -> Uuid {
        self.0
    }

    /// Wraps a UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The identity this worker has on the ring and in etcd.
    pub fn identity(&self) -> WorkerIdentity {
        WorkerIdentity { version: IDENTITY_VERSION, identifier: self.0.simple().to_string() }
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker-{}", self.0.hyphenated())
    }
}

/// The reason a string is not a worker id.
#[derive(Debug, thiserror::Error)]
#[error("invalid worker id {0:?}: expected worker-<uuid>")]
pub struct InvalidWorkerId(pub String);

impl FromStr for WorkerId {
    type Err = InvalidWorkerId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix("worker-")
            .and_then(|u| Uuid::parse_str(u).ok())
            .map(Self)
            .ok_or_else(|| InvalidWorkerId(s.to_string()))
    }
}

impl Serialize for WorkerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WorkerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Java's `UUID.nameUUIDFromBytes`: MD5 of the bytes, stamped as version 3, IETF variant.
pub fn name_uuid_from_bytes(bytes: &[u8]) -> Uuid {
    let digest: [u8; 16] = Md5::digest(bytes).into();
    uuid::Builder::from_md5_bytes(digest).into_uuid()
}

/// A worker's identity on the ring and in etcd: `{"version": 1, "identifier": "<32 hex>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerIdentity {
    /// Identity format version (Alluxio: 1).
    pub version: i32,
    /// The UUID as 32 lowercase hex digits.
    pub identifier: String,
}

impl WorkerIdentity {
    /// The raw bytes hashed onto the ring: the identifier's hex decoded (16 bytes for a UUID).
    /// An identifier that is not hex is hashed as its UTF-8 bytes, so foreign entries still place.
    pub fn identifier_bytes(&self) -> Vec<u8> {
        hex::decode(&self.identifier).unwrap_or_else(|_| self.identifier.as_bytes().to_vec())
    }

    /// The worker id this identity belongs to, if the identifier is a UUID.
    pub fn worker_id(&self) -> Option<WorkerId> {
        Uuid::parse_str(&self.identifier).ok().map(WorkerId)
    }
}

/// A file's id (`path_id`): lowercase hex SHA-256 of its full UFS URI.
pub fn file_id(ufs_uri: &str) -> String {
    hex::encode(Sha256::digest(ufs_uri.as_bytes()))
}

/// Whether `s` has the shape of a file id (64 lowercase hex digits).
pub fn is_file_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_id_round_trips() {
        let id = WorkerId::random();
        let s = id.to_string();
        assert!(s.starts_with("worker-"));
        assert_eq!(s.parse::<WorkerId>().unwrap(), id);
        assert_eq!(id.identity().identifier.len(), 32);
        assert_eq!(id.identity().worker_id(), Some(id));
        assert!("worker-xyz".parse::<WorkerId>().is_err());
        assert!("587899dd-0000-0000-0000-000000000000".parse::<WorkerId>().is_err());
    }

    #[test]
    fn java_name_uuid() {
        // Java: UUID.nameUUIDFromBytes("hello".getBytes()) = 5d41402a-bc4b-3a76-b971-9d911017c592
        assert_eq!(name_uuid_from_bytes(b"hello").to_string(), "5d41402a-bc4b-3a76-b971-9d911017c592");
    }

    #[test]
    fn file_id_is_sha256_hex() {
        assert_eq!(file_id("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(file_id(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(is_file_id(&file_id("x")));
        assert!(!is_file_id("abc"));
    }
}
