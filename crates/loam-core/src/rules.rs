//! Path rules of the cache policies (TTL, priority, quota): their values, how they are stored in the
//! cluster store and how they appear on the wire.
//!
//! Each rule is one store key, `store_keys::rule_key(cluster, kind, path)`, whose value is a JSON
//! [`StoredRule`] carrying its own `version`, so the coordinator writes and every worker watches the same
//! records. On the wire a rule is a [`PathRule`]: the normalised cluster path plus the kind's fields
//! (`ttlSeconds`, `priority`, `quotaBytes`), flattened. Matching is longest prefix (`path::PathRules`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Version of the stored rule records.
pub const RULE_RECORD_VERSION: u32 = 1;

/// One kind of path rule.
pub trait RuleKind: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static {
    /// The kind's name in store keys (`ttl`, `priority`, `quota`).
    const KIND: &'static str;
    /// The `501` message when the kind is disabled.
    const DISABLED: &'static str;
    /// The start of the `404` message of a `GET ?path=` with no rule there (the path follows).
    const NOT_FOUND: &'static str;
    /// Checks a value a user sent; `Err` says what is wrong.
    fn validate(&self) -> Result<(), String>;
}

/// Evict cached data under a path once it has been cached longer than `ttl_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TtlRule {
    /// Seconds since the data was cached.
    #[serde(rename = "ttlSeconds")]
    pub ttl_seconds: u64,
}

impl RuleKind for TtlRule {
    const KIND: &'static str = "ttl";
    const DISABLED: &'static str = "TTL not enabled";
    const NOT_FOUND: &'static str = "No TTL policy found for path: ";
    fn validate(&self) -> Result<(), String> {
        if self.ttl_seconds == 0 { Err("ttlSeconds must be positive".into()) } else { Ok(()) }
    }
}

/// An eviction priority level; data under no rule is `Medium`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
// The wire form is lowercase (the serde impls below); any case is read.
#[schema(rename_all = "lowercase")]
pub enum Priority {
    /// Evicted first.
    Low,
    /// The level of data under no rule.
    #[default]
    Medium,
    /// Evicted last.
    High,
}

impl Priority {
    /// Every level, lowest first (the eviction order).
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    /// Parses `high`, `medium` or `low`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Priority::Low),
            "medium" => Some(Priority::Medium),
            "high" => Some(Priority::High),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// 0 for `Low` up to 2 for `High`, for per-level arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Priority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Priority::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("malformed priority {s:?} (expected high, medium or low)")))
    }
}

/// The eviction priority of cached data under a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriorityRule {
    /// The level.
    pub priority: Priority,
}

impl RuleKind for PriorityRule {
    const KIND: &'static str = "priority";
    const DISABLED: &'static str = "Priority eviction not enabled";
    const NOT_FOUND: &'static str = "No priority rule found for path: ";
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A limit on the cached bytes of the data under a path, cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaRule {
    /// The limit in bytes.
    #[serde(rename = "quotaBytes")]
    pub quota_bytes: u64,
}

impl RuleKind for QuotaRule {
    const KIND: &'static str = "quota";
    const DISABLED: &'static str = "Quota not enabled";
    const NOT_FOUND: &'static str = "No quota item found for path: ";
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Whether a quota still has room (`usedBytes + reservedBytes < quotaBytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum QuotaState {
    /// Below the limit.
    Available,
    /// At or above the limit: workers admit no new pages under the path.
    Exceeded,
}

impl QuotaState {
    /// The state of a quota of `quota` bytes with `used + reserved` bytes held or planned.
    pub fn of(quota: u64, used: u64, reserved: u64) -> Self {
        if used.saturating_add(reserved) < quota { QuotaState::Available } else { QuotaState::Exceeded }
    }
}

/// A quota as `GET /api/v1/quota` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaStatus {
    /// The normalised cluster path.
    pub path: String,
    /// `Available` or `Exceeded`.
    pub state: QuotaState,
    /// The limit.
    pub quota_bytes: u64,
    /// Cached bytes under the path, all workers and replicas, as last reported.
    pub used_bytes: u64,
    /// Bytes that running load jobs under the path planned but have not loaded yet.
    pub reserved_bytes: u64,
}

/// Version of the quota usage records.
pub const QUOTA_USAGE_VERSION: u32 = 1;

/// One worker's cached bytes under each quota path, as it last reported them to the cluster store
/// (`store_keys::quota_usage_key`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsageRecord {
    /// [`QUOTA_USAGE_VERSION`].
    pub version: u32,
    /// Cached bytes per quota path (paths with nothing cached are left out).
    pub used: std::collections::BTreeMap<String, u64>,
}

impl QuotaUsageRecord {
    /// Decodes a stored value; `Err` says why for another version or an undecodable value.
    pub fn decode(raw: &[u8]) -> Result<Self, String> {
        let r: QuotaUsageRecord = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
        if r.version != QUOTA_USAGE_VERSION {
            return Err(format!("unknown quota usage record version {}", r.version));
        }
        Ok(r)
    }
}

/// Cluster-wide cached bytes per quota path: the sum of the workers' records.
pub fn sum_usage<'a>(
    records: impl IntoIterator<Item = &'a QuotaUsageRecord>,
) -> std::collections::BTreeMap<String, u64> {
    let mut total = std::collections::BTreeMap::new();
    for r in records {
        for (path, bytes) in &r.used {
            *total.entry(path.clone()).or_insert(0u64) += bytes;
        }
    }
    total
}

/// A rule as shown on the wire: the cluster path and the kind's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PathRule<T> {
    /// The normalised cluster path (`/data/dir`).
    pub path: String,
    /// The kind's fields.
    #[serde(flatten)]
    pub rule: T,
}

/// A rule as stored: a [`PathRule`] with the record version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRule<T> {
    /// [`RULE_RECORD_VERSION`].
    pub version: u32,
    /// The rule.
    #[serde(flatten)]
    pub rule: PathRule<T>,
}

impl<T: RuleKind> StoredRule<T> {
    /// A current-version record of `rule` at `path`.
    pub fn new(path: String, rule: T) -> Self {
        Self { version: RULE_RECORD_VERSION, rule: PathRule { path, rule } }
    }

    /// Decodes a stored value; `Err` says why for another version or an undecodable value.
    pub fn decode(raw: &[u8]) -> Result<PathRule<T>, String> {
        let stored: StoredRule<T> = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
        if stored.version != RULE_RECORD_VERSION {
            return Err(format!("unknown {} rule record version {}", T::KIND, stored.version));
        }
        Ok(stored.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_the_store_format() {
        let raw = serde_json::to_vec(&StoredRule::new("/d/x".into(), TtlRule { ttl_seconds: 5 })).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v, serde_json::json!({"version": 1, "path": "/d/x", "ttlSeconds": 5}));
        assert_eq!(StoredRule::<TtlRule>::decode(&raw).unwrap().rule.ttl_seconds, 5);
        assert!(StoredRule::<TtlRule>::decode(br#"{"version": 9, "path": "/d", "ttlSeconds": 5}"#).is_err());
    }

    #[test]
    fn quota_state_and_usage_sums() {
        assert_eq!(QuotaState::of(10, 4, 5), QuotaState::Available);
        assert_eq!(QuotaState::of(10, 5, 5), QuotaState::Exceeded);
        let a = QuotaUsageRecord { version: 1, used: [("/d".to_string(), 3)].into() };
        let b = QuotaUsageRecord { version: 1, used: [("/d".to_string(), 4), ("/e".to_string(), 1)].into() };
        let sum = sum_usage([&a, &b]);
        assert_eq!((sum["/d"], sum["/e"]), (7, 1));
        let s = QuotaStatus {
            path: "/d".into(),
            state: QuotaState::Exceeded,
            quota_bytes: 1,
            used_bytes: 2,
            reserved_bytes: 0,
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"path": "/d", "state": "Exceeded", "quotaBytes": 1, "usedBytes": 2, "reservedBytes": 0})
        );
    }

    #[test]
    fn priorities_parse_in_any_case_and_order_low_first() {
        assert_eq!(Priority::parse("HiGh"), Some(Priority::High));
        assert_eq!(Priority::parse("urgent"), None);
        assert!(Priority::Low < Priority::Medium && Priority::Medium < Priority::High);
        let r: PriorityRule = serde_json::from_str(r#"{"priority": "LOW"}"#).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::json!({"priority": "low"}));
        assert!(serde_json::from_str::<PriorityRule>(r#"{"priority": "x"}"#).is_err());
    }
}
