//! The account service's vocabulary: closed value sets stored as text. No I/O here.
//!
//! Each enum is defined once and maps to a text column and to a GraphQL enum; enums carry
//! no data a caller could be denied, so sharing the definition exposes nothing.

use sea_orm::sea_query::StringLen;

use crm_service_common::text_enum;

text_enum!(
    /// The size class of a customer.
    Segment { Smb = "SMB", MidMarket = "MID_MARKET", Enterprise = "ENTERPRISE" }
);
text_enum!(
    /// How much attention an account gets.
    AccountTier { Strategic = "STRATEGIC", Key = "KEY", Standard = "STANDARD" }
);
text_enum!(
    /// Where an account is in its relationship with us.
    LifecycleStage { Prospect = "PROSPECT", Customer = "CUSTOMER", Churned = "CHURNED", Partner = "PARTNER" }
);
text_enum!(
    PartnerKind { Supplier = "SUPPLIER", Distributor = "DISTRIBUTOR" }
);
pub use crm_service_common::domain::PartnerTier;
text_enum!(
    /// The channel of an interaction or a case.
    Channel { Email = "EMAIL", Phone = "PHONE", Chat = "CHAT", Meeting = "MEETING", Social = "SOCIAL", Web = "WEB" }
);
text_enum!(
    Direction { Inbound = "INBOUND", Outbound = "OUTBOUND" }
);
text_enum!(
    LeadSource { Web = "WEB", Referral = "REFERRAL", Event = "EVENT", Partner = "PARTNER", Outbound = "OUTBOUND", Other = "OTHER" }
);
text_enum!(
    LeadStatus { New = "NEW", Working = "WORKING", Qualified = "QUALIFIED", Disqualified = "DISQUALIFIED", Converted = "CONVERTED" }
);
text_enum!(
    OpportunityStage {
        Prospecting = "PROSPECTING", Qualification = "QUALIFICATION", Proposal = "PROPOSAL",
        Negotiation = "NEGOTIATION", ClosedWon = "CLOSED_WON", ClosedLost = "CLOSED_LOST",
    }
);
text_enum!(
    ForecastCategory { Pipeline = "PIPELINE", BestCase = "BEST_CASE", Commit = "COMMIT", Closed = "CLOSED", Omitted = "OMITTED" }
);
text_enum!(
    CaseStatus { New = "NEW", Open = "OPEN", Pending = "PENDING", Resolved = "RESOLVED", Closed = "CLOSED" }
);
text_enum!(
    CasePriority { Low = "LOW", Medium = "MEDIUM", High = "HIGH", Urgent = "URGENT" }
);
text_enum!(
    /// Where a deal registration is: submitted and waiting for review, approved (an
    /// opportunity is attributed to the partner while it is protected), rejected with a
    /// reason, or expired (protection ran out before the deal was won). A partner
    /// withdraws one by archiving it.
    RegistrationStatus {
        Submitted = "SUBMITTED", Approved = "APPROVED", Rejected = "REJECTED", Expired = "EXPIRED",
    }
);
text_enum!(
    /// The kind of record a task or a notification is about.
    RecordKind {
        Account = "ACCOUNT", Contact = "CONTACT", Lead = "LEAD", Opportunity = "OPPORTUNITY", Case = "CASE",
        DealRegistration = "DEAL_REGISTRATION",
    }
);
text_enum!(
    /// What a notification tells.
    NotificationKind {
        TaskReminder = "TASK_REMINDER", TaskAssigned = "TASK_ASSIGNED", SlaBreached = "SLA_BREACHED",
        CaseAssigned = "CASE_ASSIGNED", CaseComment = "CASE_COMMENT",
        RegistrationApproved = "REGISTRATION_APPROVED", RegistrationRejected = "REGISTRATION_REJECTED",
        RegistrationExpired = "REGISTRATION_EXPIRED", CaseReply = "CASE_REPLY",
        LeadAccepted = "LEAD_ACCEPTED", LeadDeclined = "LEAD_DECLINED", LeadRouted = "LEAD_ROUTED",
        LineAdded = "LINE_ADDED", ShipmentException = "SHIPMENT_EXCEPTION",
    }
);

impl RecordKind {
    /// The record type's name in the policy.
    pub fn policy_type(self) -> &'static str {
        match self {
            Self::Account => "Account",
            Self::Contact => "Contact",
            Self::Lead => "Lead",
            Self::Opportunity => "Opportunity",
            Self::Case => "Case",
            Self::DealRegistration => "DealRegistration",
        }
    }

    /// The id prefix of the record type (the store's `Record::PREFIX`).
    pub fn of_id(id: &str) -> Option<Self> {
        let prefix = id.split_once('_').map(|(p, _)| p)?;
        Self::ALL.iter().copied().find(|k| k.prefix() == prefix)
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Self::Account => "acc",
            Self::Contact => "con",
            Self::Lead => "lead",
            Self::Opportunity => "opp",
            Self::Case => "case",
            Self::DealRegistration => "reg",
        }
    }
}

/// A case moves new → open → pending ⇄ open → resolved → closed; a resolved case can be
/// reopened, a closed one is final (a new case follows up on it).
impl crm_service_common::domain::Lifecycle for CaseStatus {
    const NOUN: &'static str = "a case";
    fn next(self) -> &'static [Self] {
        match self {
            Self::New => &[Self::Open, Self::Pending, Self::Resolved],
            Self::Open => &[Self::Pending, Self::Resolved],
            Self::Pending => &[Self::Open, Self::Resolved],
            Self::Resolved => &[Self::Closed, Self::Open],
            Self::Closed => &[],
        }
    }
}

/// A registration is decided once (approved or rejected); an approval's protection runs
/// out (expired, by the job runner) and staff may approve an expired one again.
impl crm_service_common::domain::Lifecycle for RegistrationStatus {
    const NOUN: &'static str = "a deal registration";
    fn next(self) -> &'static [Self] {
        match self {
            Self::Submitted => &[Self::Approved, Self::Rejected],
            Self::Approved => &[Self::Expired],
            Self::Expired => &[Self::Approved],
            Self::Rejected => &[],
        }
    }
}

impl RegistrationStatus {
    /// Still counts against the partner's limit and in conflict checks.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Submitted | Self::Approved)
    }
}

/// What a partner's tier allows in this service.
pub trait TierLimits {
    /// How many open (submitted or approved) deal registrations a partner of this tier
    /// may have at once.
    fn registration_limit(self) -> u64;
    /// How many routed leads a distributor of this tier works at once (routed and not
    /// yet converted, disqualified or given back).
    fn lead_capacity(self) -> u64;
}

impl TierLimits for PartnerTier {
    fn registration_limit(self) -> u64 {
        match self {
            Self::Platinum => 100,
            Self::Gold => 50,
            Self::Silver => 20,
            Self::Registered => 5,
        }
    }

    fn lead_capacity(self) -> u64 {
        match self {
            Self::Platinum => 40,
            Self::Gold => 20,
            Self::Silver => 10,
            Self::Registered => 5,
        }
    }
}

/// Hours a distributor has to accept or decline a lead routed to it; then it returns to
/// the pool.
pub const LEAD_RESPONSE_HOURS: i64 = 48;

/// Days an approval protects a partner's claim on a deal unless the reviewer says otherwise.
pub const REGISTRATION_PROTECTION_DAYS: i64 = 90;

impl CaseStatus {
    /// Whether the case still needs work (its SLA runs unless it is pending).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed)
    }
}

impl CasePriority {
    /// One level up (what an escalation does), urgent staying urgent.
    pub fn raised(self) -> Self {
        match self {
            Self::Low => Self::Medium,
            Self::Medium => Self::High,
            Self::High | Self::Urgent => Self::Urgent,
        }
    }
}

text_enum!(
    /// Where a data export is: waiting for its job, being gathered, ready to download.
    DataExportStatus { Pending = "PENDING", Running = "RUNNING", Done = "DONE", Erased = "ERASED", Expired = "EXPIRED" }
);

text_enum!(
    /// Where an erasure request is: waiting for its job, or done in this service (the
    /// other services follow through its event).
    DataErasureStatus { Pending = "PENDING", Done = "DONE" }
);

text_enum!(
    /// Why we may contact or share a person's data.
    ConsentPurpose { Marketing = "MARKETING", PartnerSharing = "PARTNER_SHARING" }
);

text_enum!(
    /// The channel a consent covers.
    ConsentChannel { Email = "EMAIL", Phone = "PHONE" }
);

text_enum!(
    /// Where a consent statement came from: the person's own form (a web form, a signed
    /// paper), an import from another system, the company's staff (a call, a meeting) or a
    /// partner that collected it and passed it on.
    ConsentSource { Form = "FORM", Import = "IMPORT", Staff = "STAFF", Partner = "PARTNER" }
);

impl OpportunityStage {
    /// The probability a new opportunity in this stage gets when none is given.
    pub fn default_probability(self) -> i32 {
        match self {
            Self::Prospecting => 10,
            Self::Qualification => 20,
            Self::Proposal => 50,
            Self::Negotiation => 75,
            Self::ClosedWon => 100,
            Self::ClosedLost => 0,
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Self::ClosedWon | Self::ClosedLost)
    }

    /// The forecast category that follows from the stage when none is given.
    pub fn default_forecast(self) -> ForecastCategory {
        match self {
            Self::Prospecting | Self::Qualification => ForecastCategory::Pipeline,
            Self::Proposal => ForecastCategory::BestCase,
            Self::Negotiation => ForecastCategory::Commit,
            Self::ClosedWon => ForecastCategory::Closed,
            Self::ClosedLost => ForecastCategory::Omitted,
        }
    }
}

impl CasePriority {
    /// Hours until the first response is due.
    pub fn sla_hours(self) -> i64 {
        match self {
            Self::Urgent => 4,
            Self::High => 8,
            Self::Medium => 24,
            Self::Low => 72,
        }
    }
}

/// A web domain such as `example.com`: lower-cased, no scheme or path.
pub fn web_domain(field: &str, value: &str) -> crm_service_common::ApiResult<String> {
    let value = value.trim().trim_end_matches('.').to_lowercase();
    let ok = value.len() <= 253
        && value.contains('.')
        && value.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(value)
    } else {
        Err(crm_service_common::ApiError::validation(
            field,
            "is not a valid domain such as example.com",
        ))
    }
}

/// One rule's share of a lead's score: which rule, what it found, how many points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScorePart {
    pub rule: &'static str,
    pub finding: String,
    pub points: i32,
}

/// Mail providers anyone can sign up with: an address there says nothing about the
/// company, so it counts less than one at the company's own domain.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "mail.com",
    "yandex.ru",
];

/// Days a completed task on a lead (a call made, a mail answered) counts as recent.
pub const LEAD_ACTIVITY_DAYS: i64 = 30;
/// Points per recent activity, and the most activities that count.
const POINTS_PER_ACTIVITY: i32 = 10;
const MOST_ACTIVITIES: i32 = 3;

/// A lead's score, rule by rule: how it came to us (source), how well we can reach a
/// decision maker (fit: a company address, a phone number), and how warm it is now
/// (tasks on it completed in the last [`LEAD_ACTIVITY_DAYS`] days). The rules read only
/// the lead itself and work done on it, so everyone who may read the lead may read why it
/// scores what it does.
pub fn lead_score(
    source: LeadSource,
    email: Option<&str>,
    phone: Option<&str>,
    recent_activities: i32,
) -> Vec<ScorePart> {
    let (points, how) = match source {
        LeadSource::Referral => (30, "referred by a customer or contact"),
        LeadSource::Partner => (25, "brought by a partner"),
        LeadSource::Event => (20, "met at an event"),
        LeadSource::Web => (15, "came through the website"),
        LeadSource::Outbound => (10, "found by our own outreach"),
        LeadSource::Other => (5, "another source"),
    };
    let mut parts = vec![ScorePart {
        rule: "Source",
        finding: how.into(),
        points,
    }];
    let domain = email
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase());
    parts.push(match domain {
        Some(d) if FREE_MAIL.contains(&d.as_str()) => ScorePart {
            rule: "Fit: email",
            finding: format!("a personal address at {d}"),
            points: 5,
        },
        Some(d) => ScorePart {
            rule: "Fit: email",
            finding: format!("a company address at {d}"),
            points: 20,
        },
        None => ScorePart {
            rule: "Fit: email",
            finding: "no email address".into(),
            points: 0,
        },
    });
    parts.push(ScorePart {
        rule: "Fit: phone",
        finding: if phone.is_some() {
            "a phone number".into()
        } else {
            "no phone number".into()
        },
        points: if phone.is_some() { 10 } else { 0 },
    });
    let counted = recent_activities.clamp(0, MOST_ACTIVITIES);
    parts.push(ScorePart {
        rule: "Recent activity",
        finding: match recent_activities {
            0 => format!("no task completed in the last {LEAD_ACTIVITY_DAYS} days"),
            1 => format!("1 task completed in the last {LEAD_ACTIVITY_DAYS} days"),
            n => format!(
                "{n} tasks completed in the last {LEAD_ACTIVITY_DAYS} days (at most {MOST_ACTIVITIES} count)"
            ),
        },
        points: counted * POINTS_PER_ACTIVITY,
    });
    parts
}

/// The score of the parts: their sum, 0 to 100.
pub fn score_total(parts: &[ScorePart]) -> i32 {
    parts.iter().map(|p| p.points).sum::<i32>().clamp(0, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_scores_by_readable_rules() {
        let parts = lead_score(
            LeadSource::Referral,
            Some("maya@willow.example"),
            Some("+49 30 1234"),
            5,
        );
        assert_eq!(
            parts.iter().map(|p| p.points).collect::<Vec<_>>(),
            [30, 20, 10, 30]
        );
        assert_eq!(score_total(&parts), 90);
        let cold = lead_score(LeadSource::Other, Some("x@GMAIL.com"), None, 0);
        assert_eq!(score_total(&cold), 10);
        assert!(cold[1].finding.contains("personal"));
        assert_eq!(score_total(&lead_score(LeadSource::Web, None, None, 0)), 15);
    }

    #[test]
    fn domains_are_normalised_and_urls_refused() {
        assert_eq!(
            web_domain("domain", " Example.COM. ").ok().as_deref(),
            Some("example.com")
        );
        assert!(web_domain("domain", "https://example.com/x").is_err());
        assert!(web_domain("domain", "localhost").is_err());
    }

    #[test]
    fn closed_stages_forecast_as_closed_or_omitted() {
        assert_eq!(
            OpportunityStage::ClosedWon.default_forecast(),
            ForecastCategory::Closed
        );
        assert!(OpportunityStage::ClosedLost.is_closed());
        assert_eq!(OpportunityStage::ALL.len(), 6);
    }
}
