//! The audit log's verification, this service's part: its chains on the federated
//! `AuditVerification` entity (the account service starts the query).

crm_service_common::audit_verification_entity!(order_visibility, crate::SERVICE);
crm_service_common::audit_log_entity!(order_visibility, crate::SERVICE, audited_types);

/// The record types whose changes and reads this service's log keeps.
pub fn audited_types() -> Vec<crm_service_common::audit::log::Audited> {
    use crate::entity::*;
    use crm_service_common::audit::log::audited;
    vec![
        audited::<product::Entity>("Product"),
        audited::<order::Entity>("Order"),
        audited::<order_line::Entity>("OrderLine"),
        audited::<shipment::Entity>("Shipment"),
    ]
}
