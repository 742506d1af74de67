//! The audit log's verification, this service's part: `Query.auditVerification` starts
//! it, and the account chains are checked here; the order and knowledge-base services add
//! theirs to the same `AuditVerification` entity, so one federated query verifies them
//! all. Who may verify which chains is the policy's `AuditChain` read rule.

use async_graphql::{Context, ID, Object, Result};
use crm_service_common::audit::graphql::{chains_for, requested};
use crm_service_common::audit::log::{AuditFilter, Audited, LogQuery, audited, reader};
use crm_service_common::principal::Principal;

crm_service_common::audit_verification_entity!(account, crate::SERVICE);
crm_service_common::audit_log_entity!(account, crate::SERVICE, audited_types);

/// The record types whose changes and reads this service's log keeps.
pub fn audited_types() -> Vec<Audited> {
    use crate::entity::*;
    vec![
        audited::<account::Entity>("Account"),
        audited::<contact::Entity>("Contact"),
        audited::<interaction::Entity>("Interaction"),
        audited::<lead::Entity>("Lead"),
        audited::<opportunity::Entity>("Opportunity"),
        audited::<deal_registration::Entity>("DealRegistration"),
        audited::<case::Entity>("Case"),
        audited::<case_comment::Entity>("CaseComment"),
        audited::<task::Entity>("Task"),
        audited::<partner::Entity>("Partner"),
        audited::<territory::Entity>("Territory"),
        audited::<account_share::Entity>("AccountShare"),
    ]
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Recomputes the audit log's hash chains and checks them against their signed heads
    /// and checkpoints: `organisation` is a partner's id, `company` or `all` (left out:
    /// your own organisation as a partner administrator, every chain as staff). Staff with
    /// the right may verify any chain; a partner administrator its own organisation's.
    async fn audit_verification(
        &self,
        ctx: &Context<'_>,
        organisation: Option<ID>,
    ) -> Result<AuditVerification> {
        let who = Principal::of(ctx);
        let organisation = requested(&who, organisation.map(|id| id.0));
        // Refused here already, so a caller without the right learns it once.
        chains_for(&who, &organisation).await?;
        Ok(AuditVerification { organisation })
    }

    /// The audit log, newest first: field changes and partners' reads, from every
    /// service. Staff with the right read every entry; a partner administrator its own
    /// organisation's entries and the company's changes to the records it sees (without
    /// the fields it may not read). `first` entries per service, completed to a whole
    /// moment; the next page is `before` the oldest time shown.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: AuditFilter,
        #[graphql(default = 50)] first: i32,
    ) -> Result<AuditLog> {
        // Refused here already, so a caller without the right learns it once.
        reader(&Principal::of(ctx)).await?;
        Ok(AuditLog {
            query: LogQuery::new(filter, first)?.key(),
        })
    }
}
