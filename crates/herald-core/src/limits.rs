//! Per-app limits: defaults from DESIGN.md, each overridable per app within hard bounds.

use serde::{Deserialize, Serialize};

/// The limits one app works under. Every breach is reported as a [`LimitBreach`] naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Named attribute slots (Tencent: 10).
    pub attribute_slots: u32,
    /// Tags one account may carry.
    pub tags_per_account: u32,
    /// Distinct tags in use across the app.
    pub distinct_tags: u32,
    /// Length of one tag, in bytes.
    pub tag_bytes: u32,
    /// Length of one attribute value, in bytes.
    pub attribute_value_bytes: u32,
    /// Accounts named in one push's `accounts` audience.
    pub accounts_per_push: u32,
    /// Accounts in one batch call (import, tags, attributes).
    pub accounts_per_batch: u32,
    /// Longest offline storage a push may ask for, in seconds (7 days).
    pub max_offline_ttl_secs: u32,
    /// Offline pushes kept for one device; older ones are dropped first.
    pub offline_pushes_per_device: u32,
    /// Size of a push's message body, in bytes.
    pub message_bytes: u32,
    /// Minimum time between two broadcast pushes (all, tag or attribute audiences), in seconds.
    pub broadcast_min_interval_secs: u32,
    /// Broadcast pushes per UTC day.
    pub broadcast_daily_quota: u32,
    /// Signed API requests per second for the whole app.
    pub requests_per_second: u32,
    /// Nodes in one audience expression.
    pub audience_nodes: u32,
    /// Nesting depth of one audience expression.
    pub audience_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            attribute_slots: 10,
            tags_per_account: 100,
            distinct_tags: 10_000,
            tag_bytes: 50,
            attribute_value_bytes: 50,
            accounts_per_push: 1_000,
            accounts_per_batch: 1_000,
            max_offline_ttl_secs: 604_800,
            offline_pushes_per_device: 100,
            message_bytes: 10_240,
            broadcast_min_interval_secs: 1,
            broadcast_daily_quota: 100,
            requests_per_second: 1_000,
            audience_nodes: 1_000,
            audience_depth: 16,
        }
    }
}

/// A limit that a request went past: which one, its value, and what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("limit {limit} is {value}, got {actual}")]
pub struct LimitBreach {
    pub limit: &'static str,
    pub value: u64,
    pub actual: u64,
}

impl LimitBreach {
    /// `Err` when `actual` exceeds `value`.
    pub fn check(limit: &'static str, value: u32, actual: usize) -> Result<(), LimitBreach> {
        let actual = u64::try_from(actual).unwrap_or(u64::MAX);
        if actual > u64::from(value) {
            Err(LimitBreach { limit, value: u64::from(value), actual })
        } else {
            Ok(())
        }
    }
}

/// A change to some limits; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsPatch {
    pub attribute_slots: Option<u32>,
    pub tags_per_account: Option<u32>,
    pub distinct_tags: Option<u32>,
    pub tag_bytes: Option<u32>,
    pub attribute_value_bytes: Option<u32>,
    pub accounts_per_push: Option<u32>,
    pub accounts_per_batch: Option<u32>,
    pub max_offline_ttl_secs: Option<u32>,
    pub offline_pushes_per_device: Option<u32>,
    pub message_bytes: Option<u32>,
    pub broadcast_min_interval_secs: Option<u32>,
    pub broadcast_daily_quota: Option<u32>,
    pub requests_per_second: Option<u32>,
    pub audience_nodes: Option<u32>,
    pub audience_depth: Option<u32>,
}

/// A limit set outside what herald can honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit {field} must be between {min} and {max}, got {got}")]
pub struct InvalidLimit {
    pub field: &'static str,
    pub min: u32,
    pub max: u32,
    pub got: u32,
}

/// Hard bounds per field: (name, min, max). Maxima exist because storage and wire formats
/// assume them (e.g. ten attribute slots, seven days of offline storage).
const BOUNDS: [(&str, u32, u32); 15] = [
    ("attribute_slots", 0, 10),
    ("tags_per_account", 1, 10_000),
    ("distinct_tags", 1, 10_000_000),
    ("tag_bytes", 1, 1_024),
    ("attribute_value_bytes", 1, 1_024),
    ("accounts_per_push", 1, 100_000),
    ("accounts_per_batch", 1, 100_000),
    ("max_offline_ttl_secs", 0, 604_800),
    ("offline_pushes_per_device", 0, 10_000),
    ("message_bytes", 1, 1_048_576),
    ("broadcast_min_interval_secs", 0, 86_400),
    ("broadcast_daily_quota", 0, 1_000_000),
    ("requests_per_second", 1, 1_000_000),
    ("audience_nodes", 1, 100_000),
    ("audience_depth", 1, 64),
];

impl Limits {
    fn fields_mut(&mut self) -> [&mut u32; 15] {
        [
            &mut self.attribute_slots,
            &mut self.tags_per_account,
            &mut self.distinct_tags,
            &mut self.tag_bytes,
            &mut self.attribute_value_bytes,
            &mut self.accounts_per_push,
            &mut self.accounts_per_batch,
            &mut self.max_offline_ttl_secs,
            &mut self.offline_pushes_per_device,
            &mut self.message_bytes,
            &mut self.broadcast_min_interval_secs,
            &mut self.broadcast_daily_quota,
            &mut self.requests_per_second,
            &mut self.audience_nodes,
            &mut self.audience_depth,
        ]
    }

    /// Checks every field against its hard bounds.
    pub fn validate(mut self) -> Result<Self, InvalidLimit> {
        for (value, (field, min, max)) in self.fields_mut().into_iter().zip(BOUNDS) {
            if !(min..=max).contains(value) {
                return Err(InvalidLimit { field, min, max, got: *value });
            }
        }
        Ok(self)
    }

    /// These limits with `patch` applied, validated.
    pub fn apply(mut self, patch: &LimitsPatch) -> Result<Self, InvalidLimit> {
        let changes = [
            patch.attribute_slots,
            patch.tags_per_account,
            patch.distinct_tags,
            patch.tag_bytes,
            patch.attribute_value_bytes,
            patch.accounts_per_push,
            patch.accounts_per_batch,
            patch.max_offline_ttl_secs,
            patch.offline_pushes_per_device,
            patch.message_bytes,
            patch.broadcast_min_interval_secs,
            patch.broadcast_daily_quota,
            patch.requests_per_second,
            patch.audience_nodes,
            patch.audience_depth,
        ];
        for (field, change) in self.fields_mut().into_iter().zip(changes) {
            if let Some(value) = change {
                *field = value;
            }
        }
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_bounds() {
        assert_eq!(Limits::default().validate(), Ok(Limits::default()));
    }

    #[test]
    fn patch_changes_only_named_fields() {
        let patch = LimitsPatch { tags_per_account: Some(20), ..Default::default() };
        let limits = Limits::default().apply(&patch).unwrap();
        assert_eq!(limits.tags_per_account, 20);
        assert_eq!(limits.distinct_tags, Limits::default().distinct_tags);
    }

    #[test]
    fn patch_outside_bounds_names_the_field() {
        let patch = LimitsPatch { max_offline_ttl_secs: Some(604_801), ..Default::default() };
        let err = Limits::default().apply(&patch).unwrap_err();
        assert_eq!(err.field, "max_offline_ttl_secs");
        assert_eq!(err.max, 604_800);
    }

    #[test]
    fn breach_reports_limit_and_value() {
        assert!(LimitBreach::check("tag_bytes", 50, 50).is_ok());
        let breach = LimitBreach::check("tag_bytes", 50, 51).unwrap_err();
        assert_eq!((breach.limit, breach.value, breach.actual), ("tag_bytes", 50, 51));
    }

    #[test]
    fn unknown_limit_name_is_refused() {
        let err = serde_json::from_str::<LimitsPatch>(r#"{"tags_per_acount":3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
