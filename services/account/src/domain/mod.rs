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
text_enum!(
    PartnerTier { Platinum = "PLATINUM", Gold = "GOLD", Silver = "SILVER", Registered = "REGISTERED" }
);
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
    /// The kind of record a task or a notification is about.
    RecordKind { Account = "ACCOUNT", Contact = "CONTACT", Lead = "LEAD", Opportunity = "OPPORTUNITY", Case = "CASE" }
);
text_enum!(
    /// What a notification tells.
    NotificationKind {
        TaskReminder = "TASK_REMINDER", TaskAssigned = "TASK_ASSIGNED", SlaBreached = "SLA_BREACHED",
        CaseAssigned = "CASE_ASSIGNED", CaseComment = "CASE_COMMENT",
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

/// Why we may contact or share a person's data.
#[derive(Copy, Clone, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum ConsentPurpose {
    Marketing,
    PartnerSharing,
}

/// The channel a consent covers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum ConsentChannel {
    Email,
    Phone,
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
