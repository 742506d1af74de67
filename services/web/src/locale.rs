//! How numbers and amounts are written for a user: per locale (the profile's setting,
//! `Me.locale`), the grouping and decimal marks and where the currency goes. The API keeps
//! the preference; writing numbers is the web's job, so the styles live here.

/// How one locale writes numbers and amounts.
pub(crate) struct NumberStyle {
    /// The language tag the profile stores (`de-DE`).
    pub tag: &'static str,
    /// The choice as the profile lists it.
    pub label: &'static str,
    /// Between groups of three digits.
    group: &'static str,
    /// Between the whole and the fraction.
    decimal: &'static str,
    /// The currency before the number (`€1,234.50`, `€ 1.234,50`) or after it
    /// (`1.234,50 €`).
    currency_first: bool,
    /// A space between the currency and the number.
    spaced: bool,
}

const NBSP: &str = "\u{a0}";
const NARROW_NBSP: &str = "\u{202f}";

/// The locales the profile offers; the first is the default.
pub(crate) const LOCALES: &[NumberStyle] = &[
    style(
        "en-US",
        "English (United States): 1,234.50",
        ",",
        ".",
        true,
        false,
    ),
    style(
        "en-GB",
        "English (United Kingdom): 1,234.50",
        ",",
        ".",
        true,
        false,
    ),
    style(
        "de-DE",
        "Deutsch (Deutschland): 1.234,50",
        ".",
        ",",
        false,
        true,
    ),
    style("de-CH", "Deutsch (Schweiz): 1’234.50", "’", ".", true, true),
    style(
        "fr-FR",
        "Français (France): 1 234,50",
        NARROW_NBSP,
        ",",
        false,
        true,
    ),
    style(
        "nl-NL",
        "Nederlands (Nederland): 1.234,50",
        ".",
        ",",
        true,
        true,
    ),
    style("es-ES", "Español (España): 1.234,50", ".", ",", false, true),
    style(
        "it-IT",
        "Italiano (Italia): 1.234,50",
        ".",
        ",",
        false,
        true,
    ),
];

const fn style(
    tag: &'static str,
    label: &'static str,
    group: &'static str,
    decimal: &'static str,
    currency_first: bool,
    spaced: bool,
) -> NumberStyle {
    NumberStyle {
        tag,
        label,
        group,
        decimal,
        currency_first,
        spaced,
    }
}

/// The style of a language tag; the default for one the web does not know.
pub(crate) fn style_of(tag: &str) -> &'static NumberStyle {
    LOCALES.iter().find(|s| s.tag == tag).unwrap_or(&LOCALES[0])
}

impl NumberStyle {
    /// A whole number with its groups marked (`1,234,567`; `1.234.567`).
    pub fn whole(&self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(self.group);
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    }

    /// `amount` (the API's decimal text, "-1234.5") grouped, with the currency's sign
    /// where it has a common one, else its code. Text that is not a decimal is shown as
    /// it came.
    pub fn money(&self, amount: &str, currency: &str) -> String {
        let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
        let Ok(units) = whole.parse::<i64>() else {
            return format!("{amount} {currency}");
        };
        let sign = if whole.starts_with('-') { "-" } else { "" };
        let grouped = self.whole(units.abs());
        let number = if fraction.is_empty() {
            grouped
        } else {
            format!("{grouped}{}{fraction}", self.decimal)
        };
        let symbol = match currency {
            "EUR" => Some("€"),
            "USD" => Some("$"),
            "GBP" => Some("£"),
            _ => None,
        };
        let space = if self.spaced { NBSP } else { "" };
        match (symbol, self.currency_first) {
            (Some(symbol), true) => format!("{sign}{symbol}{space}{number}"),
            // A code before the number only where the locale spaces it ("CHF 1’234.50").
            (None, true) if self.spaced => format!("{sign}{currency}{NBSP}{number}"),
            (None, true) => format!("{sign}{number} {currency}"),
            (Some(symbol), false) => format!("{sign}{number}{NBSP}{symbol}"),
            (None, false) => format!("{sign}{number}{NBSP}{currency}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_each_locale_writes_them() {
        let en = style_of("en-US");
        assert_eq!(en.money("164329.00", "EUR"), "€164,329.00");
        assert_eq!(en.money("-0.50", "USD"), "-$0.50");
        assert_eq!(en.money("1250.00", "CHF"), "1,250.00 CHF");
        assert_eq!(en.money("n/a", "EUR"), "n/a EUR");
        assert_eq!(en.whole(-1234567), "-1,234,567");
        let de = style_of("de-DE");
        assert_eq!(de.money("164329.00", "EUR"), "164.329,00\u{a0}€");
        assert_eq!(de.whole(1234), "1.234");
        assert_eq!(
            style_of("fr-FR").money("1234.5", "EUR"),
            "1\u{202f}234,5\u{a0}€"
        );
        assert_eq!(
            style_of("de-CH").money("1250.00", "CHF"),
            "CHF\u{a0}1’250.00"
        );
        assert_eq!(style_of("nl-NL").money("-12", "EUR"), "-€\u{a0}12");
        assert_eq!(style_of("xx-XX").tag, "en-US");
    }
}
