//! The write matrix, proved against the running API: every create, update, upsert and
//! archive mutation of the supergraph × every persona of the demo × every field of its input
//! is allowed exactly when the oracle (`tests/oracle`, written from ACCESS-MATRIX.md) says.
//! The mutations and their inputs are read from the schema by introspection, so a new record
//! type cannot skip the proof: a mutation that is neither a record write nor named below
//! (with the test that covers it) fails the test.
//!
//! Each probe sets one field on a record that does not exist (or, to create, with only that
//! field), so the answer is the policy's: a right refused is `FORBIDDEN` (naming the field when
//! a field rule refuses it); a right granted gets past the policy to `NOT_FOUND` (no such
//! record) or `VALIDATION` (the rest of the input is missing).

use std::collections::BTreeMap;

use crm_e2e::gateway_as;
use crm_oracle::{Fields, write_right};
use crm_system::GatewaySettings;
use serde_json::{Value, json};

/// Mutations that are not record writes, and the tests that prove who may call them.
const COVERED_ELSEWHERE: &[(&str, &str)] = &[
    // Imports: a file's rows are written by the bulk upserts below, each row by the
    // type's one upsert (`crm_service_common::import::upsert_one`, the upsert this matrix
    // proves), as the import's owner.
    (
        "createImport",
        "imports::an_account_file_is_checked_without_writing_then_run_row_by_row",
    ),
    (
        "addImportRows",
        "imports::a_large_file_is_sent_in_parts_and_resumes_after_a_stop",
    ),
    (
        "checkImport",
        "imports::an_account_file_is_checked_without_writing_then_run_row_by_row",
    ),
    (
        "runImport",
        "imports::an_account_file_is_checked_without_writing_then_run_row_by_row",
    ),
    (
        "cancelImport",
        "imports::a_large_file_is_sent_in_parts_and_resumes_after_a_stop",
    ),
    (
        "deleteImport",
        "imports::an_account_file_is_checked_without_writing_then_run_row_by_row",
    ),
    (
        "importAccounts",
        "imports::an_account_file_is_checked_without_writing_then_run_row_by_row",
    ),
    (
        "importContacts",
        "imports::a_sales_users_contacts_refer_to_accounts_by_external_id_within_its_rights",
    ),
    (
        "importProducts",
        "imports::a_supplier_imports_only_its_own_products_and_exports_only_its_slice",
    ),
    (
        "importOrders",
        "imports::a_large_file_is_sent_in_parts_and_resumes_after_a_stop",
    ),
    (
        "importOrderLines",
        "imports::a_large_file_is_sent_in_parts_and_resumes_after_a_stop",
    ),
    (
        "grantAccountShare",
        "writes::sales_revokes_a_share_it_granted_and_no_one_elses",
    ),
    (
        "revokeAccountShare",
        "writes::sales_revokes_a_share_it_granted_and_no_one_elses",
    ),
    ("setPartnerTerritories", "web::partner and territory forms"),
    // Reviews are article updates by a second writer: who may (writers of articles, never
    // the authors, never a reader) is proved per persona in the knowledge base's tests.
    (
        "approveArticle",
        "crm-knowledge-base api::edits_to_a_live_article_wait_for_a_second_writer_and_every_version_is_kept",
    ),
    (
        "rejectArticle",
        "crm-knowledge-base api::edits_to_a_live_article_wait_for_a_second_writer_and_every_version_is_kept",
    ),
    (
        "restoreArticleRevision",
        "crm-knowledge-base api::edits_to_a_live_article_wait_for_a_second_writer_and_every_version_is_kept",
    ),
    // A reader's own answer and view of an article it reads; case links by support.
    (
        "giveArticleFeedback",
        "crm-knowledge-base api::readers_answer_and_are_counted_and_only_staff_read_the_answers",
    ),
    (
        "recordArticleView",
        "crm-knowledge-base api::readers_answer_and_are_counted_and_only_staff_read_the_answers",
    ),
    (
        "linkArticleToCase",
        "crm-knowledge-base api::cases_and_articles_link_through_each_readers_policy",
    ),
    (
        "unlinkArticleFromCase",
        "crm-knowledge-base api::cases_and_articles_link_through_each_readers_policy",
    ),
    (
        "convertLead",
        "access_hostile::a_write_that_would_leave_records_the_caller_may_not_change_keeps_nothing",
    ),
    (
        "recordShipmentStatus",
        "web::a distributor updates a shipment end to end",
    ),
    (
        "signIn",
        "identity::sign_in_gives_tokens_and_wrong_or_unknown_credentials_read_the_same",
    ),
    (
        "refreshSession",
        "identity::a_refresh_token_works_once_and_presenting_it_again_ends_the_session",
    ),
    (
        "signOut",
        "identity::signing_out_ends_the_session_and_its_tokens",
    ),
    (
        "requestDataExport",
        "privacy::an_export_holds_every_canary_planted_for_the_person_and_only_admins_ask",
    ),
    (
        "eraseDataSubject",
        "erasure::an_erased_persons_canary_is_found_nowhere_and_the_chains_still_verify",
    ),
    (
        "createApiKey",
        "identity::a_partner_admin_manages_its_own_organisations_keys_only",
    ),
    (
        "revokeApiKey",
        "identity::a_revoked_key_is_refused_from_the_next_request_on",
    ),
    // Webhooks: managed like API keys (an admin any organisation's, a partner admin its
    // own); every mutation is probed per persona in the integrations binary, and the
    // deliveries in its first test.
    (
        "createWebhook",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "updateWebhook",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "rotateWebhookSecret",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "deleteWebhook",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "pingWebhook",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "replayWebhookDelivery",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "replayDeadWebhookDeliveries",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "takeOverWebhook",
        "crm-e2e integrations::webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed",
    ),
    (
        "takeOverApiKey",
        "identity::a_key_stops_with_its_owner_until_another_admin_takes_it_over",
    ),
    (
        "inviteUser",
        "identity::partner_users_invite_no_one_and_a_partner_invitation_names_its_kind",
    ),
    (
        "revokeInvitation",
        "identity::a_partner_admin_neither_invites_to_nor_revokes_for_another_organisation",
    ),
    (
        "redeemInvitation",
        "identity::an_invitation_is_redeemed_once_into_a_user_who_can_sign_in",
    ),
    (
        "setUserDisabled",
        "identity::a_key_cannot_change_its_owner_or_take_keys_over",
    ),
    ("saveView", "web::saved views"),
    (
        "markNotificationsRead",
        "workspace::support_sales_and_partners_work_cases_tasks_and_notifications",
    ),
    (
        "setMyTimeZone",
        "workspace::support_sales_and_partners_work_cases_tasks_and_notifications",
    ),
    (
        "setMyLocale",
        "web::staff_work_records_through_forms_with_only_the_actions_the_policy_grants",
    ),
    (
        "retryJob",
        "workspace::support_sales_and_partners_work_cases_tasks_and_notifications",
    ),
    ("deleteSavedView", "web::saved views"),
    (
        "routeLead",
        "partners::distributors_register_deals_and_staff_decide",
    ),
    (
        "acceptLead",
        "partners::distributors_register_deals_and_staff_decide",
    ),
    (
        "declineLead",
        "partners::distributors_register_deals_and_staff_decide",
    ),
    (
        "approveDealRegistration",
        "partners::distributors_register_deals_and_staff_decide",
    ),
    (
        "rejectDealRegistration",
        "partners::distributors_register_deals_and_staff_decide",
    ),
    (
        "extendDealRegistration",
        "partners::distributors_register_deals_and_staff_decide",
    ),
    (
        "addPolicyRule",
        "policy_propagation and the policy editor tests",
    ),
    (
        "removePolicyRule",
        "policy_propagation and the policy editor tests",
    ),
];

const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";

/// The schema as the admin introspects it: input types' fields and enums' first values.
struct Schema {
    client: reqwest::Client,
    url: String,
    admin: String,
    inputs: BTreeMap<String, Vec<(String, Value)>>,
}

impl Schema {
    async fn introspect(&self, query: &str, variables: Value) -> Value {
        let (_, body) =
            gateway_as(&self.client, &self.url, Some(&self.admin), query, variables).await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// The fields of an input type, each with a value of its type.
    async fn input_fields(&mut self, name: &str) -> Vec<(String, Value)> {
        if let Some(fields) = self.inputs.get(name) {
            return fields.clone();
        }
        let data = self
            .introspect(
                &format!("query($n: String!) {{ __type(name: $n) {{ inputFields {{ name type {{ {TYPE_REF} }} }} }} }}"),
                json!({ "n": name }),
            )
            .await;
        let mut fields = Vec::new();
        for field in data["__type"]["inputFields"]
            .as_array()
            .expect("input fields")
        {
            let value = Box::pin(self.value_of(&field["type"])).await;
            fields.push((field["name"].as_str().expect("name").to_owned(), value));
        }
        self.inputs.insert(name.to_owned(), fields.clone());
        fields
    }

    /// A value of the GraphQL type `ty` (an input object gets its required fields).
    async fn value_of(&mut self, ty: &Value) -> Value {
        match (ty["kind"].as_str(), ty["name"].as_str()) {
            (Some("NON_NULL"), _) => Box::pin(self.value_of(&ty["ofType"])).await,
            (Some("LIST"), _) => json!([]),
            (Some("SCALAR"), Some("Int")) => json!(1),
            (Some("SCALAR"), Some("Float")) => json!(1.0),
            (Some("SCALAR"), Some("Boolean")) => json!(true),
            (Some("SCALAR"), Some("ID")) => json!("zzz_missing"),
            (Some("SCALAR"), Some("DateTime")) => json!("2026-01-01T00:00:00Z"),
            (Some("SCALAR"), Some("NaiveDate")) => json!("2026-01-01"),
            (Some("SCALAR"), _) => json!("x"),
            (Some("ENUM"), Some(name)) => {
                let data = self
                    .introspect(
                        "query($n: String!) { __type(name: $n) { enumValues { name } } }",
                        json!({ "n": name }),
                    )
                    .await;
                data["__type"]["enumValues"][0]["name"].clone()
            }
            (Some("INPUT_OBJECT"), Some(name)) => {
                let required = self
                    .introspect(
                        "query($n: String!) { __type(name: $n) { inputFields { name type { kind } } } }",
                        json!({ "n": name }),
                    )
                    .await;
                let fields = Box::pin(self.input_fields(name)).await;
                let mut object = serde_json::Map::new();
                for field in required["__type"]["inputFields"]
                    .as_array()
                    .expect("fields")
                {
                    if field["type"]["kind"] == "NON_NULL" {
                        let name = field["name"].as_str().expect("name");
                        if let Some((_, value)) = fields.iter().find(|(f, _)| f == name) {
                            object.insert(name.to_owned(), value.clone());
                        }
                    }
                }
                Value::Object(object)
            }
            other => panic!("no value for {other:?}"),
        }
    }
}

/// The input type of a mutation's `input` argument.
fn input_type(mutation: &Value) -> Option<String> {
    let input = mutation["args"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == "input")?;
    let mut ty = &input["type"];
    while ty["name"].is_null() {
        ty = &ty["ofType"];
    }
    ty["name"].as_str().map(str::to_owned)
}

fn outcome(body: &Value) -> (String, Option<String>) {
    let error = &body["errors"][0]["extensions"];
    (
        error["code"].as_str().unwrap_or("OK").to_owned(),
        error["field"].as_str().map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_write_by_every_persona_and_field_is_allowed_exactly_as_the_matrix_says() {
    let (system, _dir, created) =
        crm_e2e::system_with_settings(2, GatewaySettings::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let users = crm_identity::all_users(&system.databases.identity)
        .await
        .expect("users");
    let mut personas: Vec<(String, String, String)> = Vec::new();
    for user in &users {
        let persona = (user.kind.clone(), user.roles.clone(), user.id.clone());
        if !personas
            .iter()
            .any(|(k, r, _)| *k == persona.0 && *r == persona.1)
        {
            personas.push(persona);
        }
    }
    assert!(
        personas.len() >= 9,
        "departments and partner roles: {personas:?}"
    );
    let mut schema = Schema {
        client: client.clone(),
        url: url.clone(),
        admin: system.identity.issuer.issue("usr_admin", None, 900),
        inputs: BTreeMap::new(),
    };
    let mutations = schema
        .introspect(
            &format!("{{ __schema {{ mutationType {{ fields {{ name args {{ name type {{ {TYPE_REF} }} }} }} }} }} }}"),
            json!({}),
        )
        .await["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutations")
        .clone();

    let mut probes = 0;
    let mut wrong = Vec::new();
    let mut by_answer: BTreeMap<String, usize> = BTreeMap::new();
    for mutation in &mutations {
        let name = mutation["name"].as_str().expect("name");
        if COVERED_ELSEWHERE.iter().any(|(m, _)| *m == name) {
            continue;
        }
        let Some((action, ty)) = ["create", "update", "upsert", "archive"]
            .into_iter()
            .find_map(|a| name.strip_prefix(a).map(|ty| (a, ty)))
            .filter(|(_, ty)| ty.starts_with(char::is_uppercase))
        else {
            panic!("{name} is neither a record write nor covered elsewhere: add it to this proof");
        };
        let fields = match input_type(mutation) {
            Some(input) => schema.input_fields(&input).await,
            None => Vec::new(),
        };
        let query = match action {
            "create" => {
                format!("mutation($input: {ty}Input!) {{ {name}(input: $input) {{ id }} }}")
            }
            "update" => format!(
                "mutation($input: {ty}Input!) {{ {name}(id: \"zzz_missing\", version: 1, input: $input) {{ id }} }}"
            ),
            "upsert" => format!(
                "mutation($input: {ty}Input!, $x: String!) {{ {name}(externalId: $x, input: $input) {{ id }} }}"
            ),
            _ => format!("mutation {{ {name}(id: \"zzz_missing\", version: 1) {{ id }} }}"),
        };
        // Archive sends no input; the others each field alone.
        let inputs: Vec<Option<(String, Value)>> = if action == "archive" {
            vec![None]
        } else {
            fields.iter().cloned().map(Some).collect()
        };
        for (kind, roles, user_id) in &personas {
            let right = write_right(kind, roles, ty);
            let token = system.identity.issuer.issue(user_id, None, 900);
            for field in &inputs {
                probes += 1;
                let variables = match field {
                    Some((field, value)) => {
                        let mut input = serde_json::Map::new();
                        input.insert(field.clone(), value.clone());
                        json!({ "input": input, "x": format!("WM-{probes}") })
                    }
                    None => json!({}),
                };
                let (_, body) = gateway_as(&client, &url, Some(&token), &query, variables).await;
                let (code, refused_field) = outcome(&body);
                let granted = match action {
                    "create" | "upsert" => right.create,
                    "update" => right.update,
                    _ => right.archive.then_some(Fields::Any),
                };
                let expected_ok = match (granted, field) {
                    (None, _) => false,
                    (Some(fields), Some((field, _))) => fields.allows(field),
                    (Some(_), None) => true,
                };
                let field_name = field.as_ref().map(|(f, _)| f.as_str()).unwrap_or("-");
                let correct = if expected_ok {
                    code != "FORBIDDEN"
                } else if granted.is_some() {
                    code == "FORBIDDEN"
                        && refused_field.as_deref() == Some(&*format!("input.{field_name}"))
                } else {
                    code == "FORBIDDEN"
                };
                if !correct {
                    wrong.push(format!(
                        "{kind}/{roles} {name} {field_name}: expected {}, got {code} {refused_field:?}",
                        if expected_ok { "allowed" } else { "refused" }
                    ));
                }
                *by_answer
                    .entry(format!(
                        "{} {code}",
                        if expected_ok { "allowed" } else { "refused" }
                    ))
                    .or_default() += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {probes} probes differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    crm_e2e::report(
        "write_matrix",
        &format!(
            "write matrix: {probes} probes (mutation × persona × input field) as the oracle says; by expectation and answer: {by_answer:?}\n"
        ),
    );
    crm_e2e::finish(system, created).await;
}
