//! Global search, this service's part: `Query.search` starts it, and the accounts,
//! contacts, leads, opportunities and cases that match come from here; the order and
//! knowledge-base services add their types to the same `SearchResults` entity (keyed by
//! the text and the size), so one federated query answers across the CRM. Every type
//! goes through the caller's policy and field rules (`crm_service_common::search`).

use async_graphql::{ComplexObject, Context, Object, Result};
use crm_service_common::search::{checked, hits};
use crm_service_common::search_hits;

use super::account::{Account, AccountFilter};
use super::case::{Case, CaseFilter};
use super::contact::{Contact, ContactFilter};
use super::lead::{Lead, LeadFilter};
use super::opportunity::{Opportunity, OpportunityFilter};
use crate::entity::{account, case, contact, lead, opportunity};

search_hits!(AccountHits, Account);
search_hits!(ContactHits, Contact);
search_hits!(LeadHits, Lead);
search_hits!(OpportunityHits, Opportunity);
search_hits!(CaseHits, Case);

crm_service_common::search_results_entity!();

#[ComplexObject]
impl SearchResults {
    /// Accounts by name or domain (name only where the domain is masked).
    async fn accounts(&self, ctx: &Context<'_>) -> Result<AccountHits> {
        Ok(AccountHits(
            hits::<account::Entity, AccountFilter>(ctx, &self.text, self.first)
                .await?
                .map(Account),
        ))
    }
    /// Contacts by name or email (names only where the email may be masked).
    async fn contacts(&self, ctx: &Context<'_>) -> Result<ContactHits> {
        Ok(ContactHits(
            hits::<contact::Entity, ContactFilter>(ctx, &self.text, self.first)
                .await?
                .map(Contact),
        ))
    }
    /// Leads by name, company or email.
    async fn leads(&self, ctx: &Context<'_>) -> Result<LeadHits> {
        Ok(LeadHits(
            hits::<lead::Entity, LeadFilter>(ctx, &self.text, self.first)
                .await?
                .map(Lead),
        ))
    }
    /// Opportunities by name.
    async fn opportunities(&self, ctx: &Context<'_>) -> Result<OpportunityHits> {
        Ok(OpportunityHits(
            hits::<opportunity::Entity, OpportunityFilter>(ctx, &self.text, self.first)
                .await?
                .map(Opportunity),
        ))
    }
    /// Cases by subject.
    async fn cases(&self, ctx: &Context<'_>) -> Result<CaseHits> {
        Ok(CaseHits(
            hits::<case::Entity, CaseFilter>(ctx, &self.text, self.first)
                .await?
                .map(Case),
        ))
    }
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Searches accounts, contacts, leads, opportunities, cases, orders and articles at
    /// once: the best `first` (1–20, default 5) of each type the caller may read.
    async fn search(
        &self,
        text: String,
        #[graphql(default = 5)] first: i32,
    ) -> Result<SearchResults> {
        let (text, first) = checked(&text, first)?;
        Ok(SearchResults { text, first })
    }
}
