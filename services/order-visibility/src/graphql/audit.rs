//! The audit log's verification, this service's part: its chains on the federated
//! `AuditVerification` entity (the account service starts the query).

crm_service_common::audit_verification_entity!(order_visibility, crate::SERVICE);
