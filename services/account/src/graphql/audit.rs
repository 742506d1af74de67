//! The audit log's verification, this service's part: `Query.auditVerification` starts
//! it, and the account chains are checked here; the order and knowledge-base services add
//! theirs to the same `AuditVerification` entity, so one federated query verifies them
//! all. Who may verify which chains is the policy's `AuditChain` read rule.

use async_graphql::{Context, ID, Object, Result};
use crm_service_common::audit::graphql::{chains_for, requested};
use crm_service_common::principal::Principal;

crm_service_common::audit_verification_entity!(account, crate::SERVICE);

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
}
