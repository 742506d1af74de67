//! The audit log's verification, this service's part: its chains on the federated
//! `AuditVerification` entity (the account service starts the query).

crm_service_common::audit_verification_entity!(knowledge_base, crate::SERVICE);
crm_service_common::audit_log_entity!(knowledge_base, crate::SERVICE, audited_types);

/// The record types whose changes and reads this service's log keeps.
pub fn audited_types() -> Vec<crm_service_common::audit::log::Audited> {
    use crm_service_common::audit::log::audited;
    vec![audited::<crate::entity::article::Entity>("Article")]
}
