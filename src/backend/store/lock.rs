//! S3 Object Lock as the store keeps it: a bucket created with object lock (always versioned,
//! never suspended) may have a default retention; each object version may have a retention
//! (governance or compliance, until a time) and a legal hold. A version under either cannot be
//! deleted (governance: unless the request bypasses it); a compliance retention can only be
//! extended; a governance one shortened or removed only with the bypass.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Mode {
    Governance,
    Compliance,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "GOVERNANCE" => Some(Mode::Governance),
            "COMPLIANCE" => Some(Mode::Compliance),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Governance => "GOVERNANCE",
            Mode::Compliance => "COMPLIANCE",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retention {
    pub mode: Mode,
    /// Milliseconds since the epoch.
    pub until: u64,
}

/// A bucket's default retention: new versions get `mode` for this long.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DefaultRetention {
    pub mode: Mode,
    pub days: u32,
    /// Where it was given in years (`days` is 365 each): answered as it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<u32>,
}

/// A bucket with object lock, and its default retention if it has one.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BucketLock {
    pub default: Option<DefaultRetention>,
}

impl DefaultRetention {
    /// The retention a version written at `now` gets.
    pub fn from(&self, now: u64) -> Retention {
        Retention {
            mode: self.mode,
            until: now + u64::from(self.days) * 86_400_000,
        }
    }
}

/// Whether a retention protects a version at `now`.
pub fn protects(retention: Option<&Retention>, now: u64) -> bool {
    retention.is_some_and(|r| r.until > now)
}

/// Whether a version under `retention` and `legal_hold` may be deleted at `now`.
pub fn may_delete(retention: Option<&Retention>, legal_hold: bool, bypass: bool, now: u64) -> bool {
    if legal_hold {
        return false;
    }
    match retention {
        Some(r) if r.until > now => r.mode == Mode::Governance && bypass,
        _ => true,
    }
}

/// Whether a version's retention may change from `old` to `new` at `now`: an expired or absent
/// retention may become anything; an active compliance one only later in compliance; an active
/// governance one anything later, and anything at all with the bypass.
pub fn may_change(
    old: Option<&Retention>,
    new: Option<&Retention>,
    bypass: bool,
    now: u64,
) -> bool {
    let Some(old) = old.filter(|o| o.until > now) else {
        return true;
    };
    let extends = new.is_some_and(|n| n.until >= old.until);
    match old.mode {
        Mode::Compliance => extends && new.is_some_and(|n| n.mode == Mode::Compliance),
        Mode::Governance => bypass || (extends && new.is_some_and(|n| n.mode == old.mode)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn r(mode: Mode, until: u64) -> Retention {
        Retention { mode, until }
    }

    #[test]
    fn holds_and_active_retentions_keep_a_version() {
        let gov = r(Mode::Governance, NOW + 1);
        let comp = r(Mode::Compliance, NOW + 1);
        let expired = r(Mode::Compliance, NOW);
        assert!(may_delete(None, false, false, NOW));
        assert!(!may_delete(None, true, true, NOW));
        assert!(!may_delete(Some(&gov), false, false, NOW));
        assert!(may_delete(Some(&gov), false, true, NOW));
        assert!(!may_delete(Some(&comp), false, true, NOW));
        assert!(may_delete(Some(&expired), false, false, NOW));
        assert!(protects(Some(&comp), NOW) && !protects(Some(&expired), NOW));
    }

    #[test]
    fn compliance_only_extends_and_governance_needs_the_bypass_to_shrink() {
        let comp = r(Mode::Compliance, NOW + 10);
        let gov = r(Mode::Governance, NOW + 10);
        let later = |m| r(m, NOW + 20);
        let sooner = |m| r(m, NOW + 5);
        assert!(may_change(
            Some(&comp),
            Some(&later(Mode::Compliance)),
            false,
            NOW
        ));
        assert!(!may_change(
            Some(&comp),
            Some(&sooner(Mode::Compliance)),
            true,
            NOW
        ));
        assert!(!may_change(
            Some(&comp),
            Some(&later(Mode::Governance)),
            true,
            NOW
        ));
        assert!(!may_change(Some(&comp), None, true, NOW));
        assert!(may_change(
            Some(&gov),
            Some(&later(Mode::Governance)),
            false,
            NOW
        ));
        assert!(!may_change(
            Some(&gov),
            Some(&sooner(Mode::Governance)),
            false,
            NOW
        ));
        assert!(may_change(
            Some(&gov),
            Some(&sooner(Mode::Governance)),
            true,
            NOW
        ));
        assert!(!may_change(Some(&gov), None, false, NOW));
        assert!(may_change(Some(&gov), None, true, NOW));
        assert!(!may_change(
            Some(&gov),
            Some(&later(Mode::Compliance)),
            false,
            NOW
        ));
        // Expired: anything goes.
        let old = r(Mode::Compliance, NOW);
        assert!(may_change(Some(&old), None, false, NOW));
        let d = DefaultRetention {
            mode: Mode::Governance,
            days: 1,
            years: None,
        };
        assert_eq!(d.from(NOW), r(Mode::Governance, NOW + 86_400_000));
    }
}
