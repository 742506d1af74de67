//! Validated newtypes shared by the services. Parsing is the only way in, so a value of one
//! of these types is valid wherever it appears; every error names the offending field.

use crate::error::{ApiError, ApiResult};

/// A new opaque id: a short type prefix and a random UUID (`acc_3f2c…`). The prefix makes
/// ids self-describing in logs and federation keys; clients must not parse them.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Text with a length bound, trimmed; empty is refused when required.
pub fn text(field: &str, value: &str, max_chars: usize) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::validation(field, "must not be empty"));
    }
    optional_text(field, Some(trimmed), max_chars).map(Option::unwrap_or_default)
}

/// Optional text: blank becomes `None`.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> ApiResult<Option<String>> {
    let Some(trimmed) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if trimmed.chars().count() > max_chars {
        return Err(ApiError::validation(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ApiError::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// An integrator's own id for a record: 1–128 visible characters, unique per type.
pub fn external_id(field: &str, value: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 128 {
        return Err(ApiError::validation(field, "must be 1 to 128 characters"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::validation(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(value.to_owned())
}

/// An email address, with its domain lower-cased.
pub fn email(field: &str, value: &str) -> ApiResult<String> {
    let value = value.trim();
    let invalid = || ApiError::validation(field, "is not a valid email address");
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || !domain.contains('.')
        || !labels_ok
    {
        return Err(invalid());
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// A phone number as people write it: digits with `+`, spaces, dashes, dots and brackets.
pub fn phone(field: &str, value: &str) -> ApiResult<String> {
    let value = value.trim();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !allowed || !(5..=20).contains(&digits) || value.len() > 32 || value[1..].contains('+') {
        return Err(ApiError::validation(field, "is not a valid phone number"));
    }
    Ok(value.to_owned())
}

/// An integer percentage, 0 to 100.
pub fn percent(field: &str, value: i32) -> ApiResult<i32> {
    if (0..=100).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(field, "must be between 0 and 100"))
    }
}

/// ISO 4217 currencies we accept, with their number of minor-unit digits.
const CURRENCIES: &[(&str, u32)] = &[
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("INR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("USD", 2),
    ("ZAR", 2),
];

/// A currency code we know, and how many decimals its amounts have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    pub fn parse(field: &str, value: &str) -> ApiResult<Self> {
        let upper = value.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == upper)
            .map(|&(code, exponent)| Self { code, exponent })
            .ok_or_else(|| {
                ApiError::validation(
                    field,
                    format!("{value:?} is not a supported ISO 4217 currency code"),
                )
            })
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// An amount of money: integer minor units (cents) and a currency, so sums are exact.
/// On the API it is a decimal string (`"1234.50"`) beside the currency code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Parses a non-negative decimal string with at most the currency's number of decimals.
    pub fn parse(field: &str, amount: &str, currency: Currency) -> ApiResult<Self> {
        let invalid = |why: &str| ApiError::validation(field, why.to_owned());
        let amount = amount.trim();
        let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
        if whole.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return Err(invalid(
                "must be a non-negative decimal number such as 1250.00",
            ));
        }
        if amount.contains('.') && fraction.is_empty() {
            return Err(invalid(
                "must be a non-negative decimal number such as 1250.00",
            ));
        }
        if fraction.len() as u32 > currency.exponent {
            return Err(invalid(&format!(
                "{} allows at most {} decimal places",
                currency.code, currency.exponent
            )));
        }
        let scale = 10_i64.pow(currency.exponent);
        let padded = format!("{fraction:0<width$}", width = currency.exponent as usize);
        let minor = whole
            .parse::<i64>()
            .ok()
            .and_then(|w| w.checked_mul(scale))
            .and_then(|w| w.checked_add(padded.parse::<i64>().unwrap_or(0)))
            .filter(|m| *m <= 1_000_000_000_000_000)
            .ok_or_else(|| invalid("is too large"))?;
        Ok(Self { minor, currency })
    }

    pub fn from_minor(minor: i64, currency_code: &str) -> Option<Self> {
        Currency::parse("currency", currency_code)
            .ok()
            .map(|currency| Self { minor, currency })
    }

    /// The decimal string clients see.
    pub fn amount(&self) -> String {
        let exp = self.currency.exponent;
        if exp == 0 {
            return self.minor.to_string();
        }
        let scale = 10_i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale as u64,
            abs % scale as u64,
            width = exp as usize
        )
    }
}

/// A reference to a record of another service (an account or a partner): its id as
/// given. It cannot be checked here (services never read each other's tables); the
/// gateway resolves it, and a dangling one resolves to null.
pub fn reference(field: &str, value: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > 64
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(ApiError::validation(
            field,
            "must be the id of a record (letters, digits, '_' or '-', at most 64)",
        ));
    }
    Ok(value.to_owned())
}

/// Declares a closed value set stored as text: one enum that is a GraphQL enum, a sea-orm
/// active enum (text column, at most 16 characters) and a serde value, all spelled the
/// same (`MID_MARKET`). The caller needs `sea_orm::sea_query::StringLen` in scope.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Copy, Clone, Debug, PartialEq, Eq, Hash, async_graphql::Enum, sea_orm::EnumIter,
            sea_orm::DeriveActiveEnum, serde::Serialize, serde::Deserialize,
        )]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
        pub enum $name {
            $( #[sea_orm(string_value = $value)] $variant, )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }
    };
}

use sea_orm::sea_query::StringLen;

crate::text_enum!(
    /// A partner organisation's programme tier. The account service keeps it on the
    /// partner; the door carries a partner user's tier to every service as part of the
    /// caller, so a service narrows what a partner sees by tier without reading partners.
    PartnerTier { Platinum = "PLATINUM", Gold = "GOLD", Silver = "SILVER", Registered = "REGISTERED" }
);

impl PartnerTier {
    /// The tier a caller's claim names (`None`: none, or not a tier: no tier's rights).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| crate::domain::label(*t) == text)
    }
}

/// A status that moves through a validated state machine. Staying in the same status is
/// always allowed (it changes nothing); any other move must be listed in [`Lifecycle::next`].
pub trait Lifecycle: Copy + PartialEq + serde::Serialize + 'static {
    /// How the thing is named in an error, e.g. `an order`.
    const NOUN: &'static str;
    /// The statuses this one may move to.
    fn next(self) -> &'static [Self];

    /// Checks a move from `self` to `to`; an invalid one is `INVALID_STATE` naming the
    /// moves that are allowed.
    fn transition(self, to: Self) -> ApiResult<Self> {
        if self == to || self.next().contains(&to) {
            return Ok(to);
        }
        let allowed: Vec<String> = self.next().iter().map(|s| label(*s)).collect();
        let allowed = if allowed.is_empty() {
            "none: it is final".to_owned()
        } else {
            allowed.join(", ")
        };
        Err(ApiError::InvalidState {
            message: format!(
                "{} cannot go from {} to {} (allowed: {allowed})",
                Self::NOUN,
                label(self),
                label(to)
            ),
        })
    }
}

/// The API spelling of a value (`IN_TRANSIT`).
pub fn label<T: serde::Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_their_domain_lower_cased() {
        assert_eq!(
            email("email", " Ann.Lee@Example.COM ").ok().as_deref(),
            Some("Ann.Lee@example.com")
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@exa_mple.com",
            "ann@-x.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn money_is_exact_and_refuses_too_many_decimals() {
        let eur = Currency::parse("currency", "eur").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            Money::parse("amount", "1234.5", eur).map(|m| m.minor).ok(),
            Some(123_450)
        );
        assert_eq!(
            Money::parse("amount", "1234.5", eur)
                .map(|m| m.amount())
                .ok()
                .as_deref(),
            Some("1234.50")
        );
        assert!(Money::parse("amount", "1.234", eur).is_err());
        assert!(Money::parse("amount", "-1", eur).is_err());
        assert!(Money::parse("amount", "1e5", eur).is_err());
        assert!(Money::parse("amount", "99999999999999999999", eur).is_err());
        let jpy = Currency::parse("currency", "JPY").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            Money::parse("amount", "1500", jpy)
                .map(|m| m.amount())
                .ok()
                .as_deref(),
            Some("1500")
        );
        assert!(Currency::parse("currency", "XXX").is_err());
    }

    #[test]
    fn phones_and_texts_are_bounded() {
        assert!(phone("phone", "+49 (30) 1234-5678").is_ok());
        assert!(phone("phone", "call me").is_err());
        assert!(phone("phone", "12+34567").is_err());
        assert!(text("name", "   ", 10).is_err());
        assert!(text("name", &"x".repeat(11), 10).is_err());
        assert_eq!(optional_text("note", Some("  "), 10).ok(), Some(None));
    }
}
