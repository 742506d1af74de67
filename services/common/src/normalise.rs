//! The one normaliser of the names and web domains that say two records are the same
//! customer: "ACME, Inc." and "Acme Incorporated" are one company, `https://www.acme.com/x`
//! and `acme.com` one domain. Deal registration's conflict check uses it; import and
//! duplicate detection compare the same keys. No I/O.

/// Legal forms and filler words that don't tell companies apart (compared after
/// lower-casing and removing punctuation, so "Inc." is `inc` and "S.A." is `sa`).
const LEGAL_FORMS: &[&str] = &[
    "inc",
    "incorporated",
    "ltd",
    "limited",
    "llc",
    "llp",
    "lp",
    "plc",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "ag",
    "kg",
    "ug",
    "se",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "ab",
    "as",
    "aps",
    "pty",
    "pte",
    "kk",
    "group",
    "holding",
    "holdings",
];

/// A company name as a comparison key: lower case, accents folded, `&` as "and",
/// punctuation and legal forms dropped, words joined by one space. Two names with the same
/// key name the same company as far as a person would tell. A name made only of legal
/// forms ("The Company Ltd") keeps its words rather than becoming empty.
pub fn company_key(name: &str) -> String {
    let folded: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .collect();
    let spaced = folded.replace(['&', '+'], " and ");
    // "S.A." and "a.s." are one token each once their dots go; other punctuation
    // separates words.
    let words: Vec<String> = spaced
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '/' | '-' | '(' | ')' | ';'))
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut kept: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !LEGAL_FORMS.contains(w))
        .collect();
    if kept.first() == Some(&"the") {
        kept.remove(0);
    }
    if kept.is_empty() {
        kept = words.iter().map(String::as_str).collect();
    }
    kept.join(" ")
}

/// The letter without its accent, for the Latin letters names use most.
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ś' | 'š' | 'ß' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        'ł' => 'l',
        'ř' => 'r',
        other => other,
    }
}

/// A web domain as a comparison key, from what people type: a bare domain, a URL
/// (`https://www.acme.com/contact`) or an email address (`jo@acme.com`). Lower case, no
/// scheme, user, port, path or trailing dot, and no leading `www.`. `None` when what is
/// left is not a domain name (no dot, an empty or over-long label, other characters).
pub fn domain_key(input: &str) -> Option<String> {
    let mut rest = input.trim().to_lowercase();
    if let Some((_, after)) = rest.split_once("://") {
        rest = after.to_owned();
    }
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.truncate(host_end);
    if let Some((_, host)) = rest.rsplit_once('@') {
        rest = host.to_owned();
    }
    if let Some((host, port)) = rest.rsplit_once(':')
        && port.chars().all(|c| c.is_ascii_digit())
    {
        rest = host.to_owned();
    }
    let host = rest.trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    let plausible = host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    plausible.then(|| host.to_owned())
}

/// An email address as a comparison key: trimmed and lower case (`Jo.Doe@ACME.com ` and
/// `jo.doe@acme.com` are one mailbox as far as people are concerned). SQL compares
/// `lower(email)`, which agrees for the addresses the validator accepts (trimmed).
pub fn email_key(input: &str) -> String {
    input.trim().to_lowercase()
}

/// A phone number as a comparison key: its digits (`+49 (30) 123-45` is `493012345`).
/// SQL computes the same from the characters the validator lets through (see the contact
/// entity's `PHONE_DIGITS`).
pub fn phone_key(input: &str) -> String {
    input.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_one_company_share_a_key() {
        let same = [
            "ACME, Inc.",
            "Acme Incorporated",
            "acme",
            "The ACME Company",
            "  Acme   Ltd ",
            "Ácme GmbH",
        ];
        for name in same {
            assert_eq!(company_key(name), "acme", "{name}");
        }
        assert_eq!(company_key("Smith & Sons"), "smith and sons");
        assert_eq!(company_key("Smith and Sons Ltd."), "smith and sons");
        assert_eq!(
            company_key("Müller-Lüdenscheidt S.A."),
            "muller ludenscheidt"
        );
        assert_ne!(company_key("Acme Logistics"), company_key("Acme"));
    }

    #[test]
    fn a_name_of_legal_forms_only_keeps_its_words() {
        assert_eq!(company_key("The Company Ltd"), "the company ltd");
        assert_eq!(company_key("Group"), "group");
        assert_eq!(company_key(""), "");
    }

    #[test]
    fn urls_addresses_and_domains_share_a_key() {
        for input in [
            "acme.com",
            "ACME.com.",
            "https://www.acme.com/contact?x=1",
            "http://acme.com:8080",
            "jo.doe@acme.com",
            " www.Acme.COM ",
        ] {
            assert_eq!(domain_key(input).as_deref(), Some("acme.com"), "{input}");
        }
        assert_eq!(
            domain_key("shop.acme.co.uk").as_deref(),
            Some("shop.acme.co.uk")
        );
    }

    #[test]
    fn one_mailbox_and_one_number_share_a_key() {
        assert_eq!(email_key(" Jo.Doe@ACME.com "), "jo.doe@acme.com");
        assert_eq!(phone_key("+49 (30) 123-45.6"), "4930123456");
        assert_eq!(phone_key("030 12345"), phone_key("030-12345"));
    }

    #[test]
    fn what_is_not_a_domain_has_no_key() {
        for input in [
            "",
            "acme",
            "acme..com",
            "-acme.com",
            "ac me.com",
            "http://",
            "a@",
        ] {
            assert_eq!(domain_key(input), None, "{input}");
        }
    }
}
