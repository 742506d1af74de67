//! How long kinds of data are kept, each by a setting in days: partners' reads in the
//! audit log (`CRM_READ_LOG_RETENTION_DAYS`, 365 by default; the audit sealer applies
//! it), closed cases (`CRM_CASE_RETENTION_DAYS`, kept for good by default) and the
//! documents of data exports (`CRM_EXPORT_RETENTION_DAYS`, 30 by default; a recurring job
//! of the account service applies both). All run on the service's clock.

use chrono::{DateTime, Utc};

/// Partners' reads in the audit log.
pub const READ_LOG: Setting = Setting {
    variable: "CRM_READ_LOG_RETENTION_DAYS",
    default_days: Some(365),
};

/// Closed (and resolved) cases, counted from when they were resolved.
pub const CLOSED_CASES: Setting = Setting {
    variable: "CRM_CASE_RETENTION_DAYS",
    default_days: None,
};

/// The documents of finished data exports (a person's whole data, in one place), counted
/// from when they finished.
pub const EXPORTS: Setting = Setting {
    variable: "CRM_EXPORT_RETENTION_DAYS",
    default_days: Some(30),
};

/// One retention setting: its environment variable and what applies when it is unset.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub variable: &'static str,
    /// `None`: kept for good unless configured.
    pub default_days: Option<i64>,
}

impl Setting {
    /// The configured retention.
    pub fn from_env(self) -> Retention {
        self.parse(std::env::var(self.variable).ok().as_deref())
    }

    /// A value of the setting: 1 to 36,500 days, or `off` (kept for good); anything else
    /// is reported and the default applies.
    pub fn parse(self, value: Option<&str>) -> Retention {
        match value.map(str::trim) {
            None | Some("") => Retention(self.default_days),
            Some("off") => Retention(None),
            Some(days) => match days.parse::<i64>() {
                Ok(days) if (1..=36_500).contains(&days) => Retention(Some(days)),
                _ => {
                    tracing::warn!(
                        variable = self.variable,
                        value = days,
                        "not a number of days from 1 to 36500 (or off): the default applies"
                    );
                    Retention(self.default_days)
                }
            },
        }
    }
}

/// How long one kind of data is kept (`None`: for good).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention(pub Option<i64>);

impl Retention {
    /// Data older than this is past its retention (`None`: kept for good).
    pub fn cutoff(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.map(|days| now - chrono::Duration::days(days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_days_or_off_and_fall_back_to_the_default() {
        assert_eq!(READ_LOG.parse(None), Retention(Some(365)));
        assert_eq!(READ_LOG.parse(Some(" 30 ")), Retention(Some(30)));
        assert_eq!(READ_LOG.parse(Some("off")), Retention(None));
        assert_eq!(READ_LOG.parse(Some("0")), Retention(Some(365)));
        assert_eq!(READ_LOG.parse(Some("soon")), Retention(Some(365)));
        assert_eq!(CLOSED_CASES.parse(None), Retention(None));
        assert_eq!(CLOSED_CASES.parse(Some("2555")), Retention(Some(2555)));
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        let now = now.unwrap_or_default();
        assert_eq!(
            Retention(Some(1)).cutoff(now),
            Some(now - chrono::Duration::days(1))
        );
        assert_eq!(Retention(None).cutoff(now), None);
    }
}
