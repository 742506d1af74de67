//! The caller as a resolver sees it. The gateway authenticates the client and sends each
//! subgraph request a token it signed (`internal_auth`); the token's caller becomes this
//! one typed `Principal`. Nothing else identifies a caller inside a service: no header, no
//! argument.

use async_graphql::Context;

use crate::internal_auth::Caller;

/// Which side of the business the caller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// No one signed in (development, or a public door).
    Anonymous,
    /// Staff of the company.
    Internal,
    /// A supplier organisation's user.
    Supplier,
    /// A distributor organisation's user.
    Distributor,
    /// A program with an API key.
    Integrator,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::Internal => "internal",
            PrincipalKind::Supplier => "supplier",
            PrincipalKind::Distributor => "distributor",
            PrincipalKind::Integrator => "integrator",
        }
    }

    /// An unknown kind is anonymous: a caller never gains rights from a typo.
    pub fn parse(text: &str) -> Self {
        match text {
            "internal" => PrincipalKind::Internal,
            "supplier" => PrincipalKind::Supplier,
            "distributor" => PrincipalKind::Distributor,
            "integrator" => PrincipalKind::Integrator,
            _ => PrincipalKind::Anonymous,
        }
    }
}

/// Who is calling: user (or API key) id, organisation, roles and the policy version the
/// gateway decided with. Facts a service owns (a distributor's territories) are looked up
/// by that service, not carried here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub kind: PrincipalKind,
    /// The partner organisation of a supplier or distributor user (or of an API key bound
    /// to one).
    pub partner_id: Option<String>,
    pub roles: Vec<String>,
    pub policy_version: u64,
    /// The sign-in session, for a user signed in with a password.
    pub session_id: Option<String>,
    /// Where an anonymous request came from (for the sign-in throttle).
    pub source: Option<String>,
    /// A partner caller's programme tier, as the door last heard it from the account
    /// service (`None`: staff, or a partner of no known tier, which reads as no tier).
    pub partner_tier: Option<crate::domain::PartnerTier>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self::from_caller(&Caller::anonymous())
    }

    /// Whoever calls a service that checks no gateway tokens (`--insecure-no-gateway-auth`,
    /// a service's own tests): such a port is only for a trusted operator, who acts as an
    /// internal admin.
    pub fn local_operator() -> Self {
        Self {
            subject: "local-operator".into(),
            kind: PrincipalKind::Internal,
            partner_id: None,
            roles: vec!["admin".into()],
            policy_version: 0,
            session_id: None,
            source: None,
            partner_tier: None,
        }
    }

    pub fn from_caller(caller: &Caller) -> Self {
        let kind = PrincipalKind::parse(&caller.kind);
        Self {
            subject: caller.subject.clone(),
            kind,
            // Only partner kinds (and integrators bound to a partner) have an organisation.
            partner_id: match kind {
                PrincipalKind::Anonymous | PrincipalKind::Internal => None,
                _ => caller.partner_id.clone(),
            },
            roles: caller.roles.clone(),
            policy_version: caller.policy_version,
            session_id: caller.session_id.clone(),
            source: caller.source.clone(),
            // Only a partner organisation has a tier; an unknown word is no tier.
            partner_tier: match kind {
                PrincipalKind::Anonymous | PrincipalKind::Internal => None,
                _ => caller
                    .partner_tier
                    .as_deref()
                    .and_then(crate::domain::PartnerTier::parse),
            },
        }
    }

    /// The request's principal; anonymous when the request carried none (a subgraph run
    /// without gateway tokens, in local tests).
    pub fn of<'a>(ctx: &'a Context<'_>) -> std::borrow::Cow<'a, Principal> {
        match ctx.data_opt::<Principal>() {
            Some(principal) => std::borrow::Cow::Borrowed(principal),
            None => std::borrow::Cow::Owned(Principal::anonymous()),
        }
    }

    /// The caller's partner organisation, for the scopes that need one (an empty id is none).
    pub fn partner(&self) -> Option<&str> {
        self.partner_id.as_deref().filter(|p| !p.is_empty())
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_signed_in(&self) -> bool {
        self.kind != PrincipalKind::Anonymous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_becomes_a_principal_and_unknown_kinds_are_anonymous() {
        let caller = Caller {
            partner_tier: None,
            subject: "usr_1".into(),
            kind: "distributor".into(),
            partner_id: Some("ptn_1".into()),
            roles: vec!["partner_admin".into()],
            policy_version: 7,
            session_id: None,
            source: None,
        };
        let principal = Principal::from_caller(&caller);
        assert_eq!(principal.kind, PrincipalKind::Distributor);
        assert_eq!(principal.partner_id.as_deref(), Some("ptn_1"));
        assert!(principal.has_role("partner_admin") && principal.is_signed_in());
        assert_eq!(principal.policy_version, 7);

        let staff_with_partner = Caller {
            partner_tier: None,
            kind: "internal".into(),
            ..caller.clone()
        };
        assert_eq!(Principal::from_caller(&staff_with_partner).partner_id, None);
        let odd = Caller {
            partner_tier: None,
            kind: "Internal ".into(),
            ..caller
        };
        assert_eq!(Principal::from_caller(&odd).kind, PrincipalKind::Anonymous);
    }
}
