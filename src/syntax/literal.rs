//! Validation of literal tokens that the grammar accepts loosely.

use std::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};

/// Parses a date (`2026-01-31`, midnight UTC) or an RFC 3339 date-time.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    if text.len() == 10 {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| dt.and_utc())
    } else {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|dt| dt.with_timezone(&Utc))
    }
}

// `KEYWORDS` and `KEYWORD_RULES`, read from grammar/seg.pest by build.rs.
include!(concat!(env!("OUT_DIR"), "/keywords.rs"));

/// A hint for duration units people often write instead of ours.
pub fn unit_hint(unit: &str) -> Option<&'static str> {
    match unit.to_ascii_lowercase().as_str() {
        "sec" | "secs" | "second" | "seconds" => Some("s"),
        "min" | "mins" | "minute" | "minutes" => Some("m"),
        "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "day" | "days" => Some("d"),
        "wk" | "wks" | "week" | "weeks" => Some("w"),
        _ => None,
    }
}

/// Resolves the escapes of a string body. Returns the value and, for each bad
/// escape, its byte range within `raw` and a message.
pub fn unescape(raw: &str) -> (String, Vec<(Range<usize>, String)>) {
    let mut out = String::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((j, 'u')) => {
                let rest = &raw[j + 1..];
                let close = rest.find('}');
                let body = rest
                    .strip_prefix('{')
                    .and_then(|r| close.map(|c| &r[..c - 1]));
                match body {
                    Some(hex)
                        if (1..=6).contains(&hex.len())
                            && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
                    {
                        let end = j + 1 + hex.len() + 2;
                        match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                            Some(ch) => out.push(ch),
                            None => errors.push((
                                i..end,
                                format!("`\\u{{{hex}}}` is not a Unicode scalar value"),
                            )),
                        }
                        while chars.peek().is_some_and(|(k, _)| *k < end) {
                            chars.next();
                        }
                    }
                    _ => {
                        let end = close.map_or(j + 1, |c| j + 1 + c + 1).min(raw.len());
                        errors.push((
                            i..end,
                            "`\\u` takes 1 to 6 hex digits in braces, as in `\\u{e9}`".to_string(),
                        ));
                        while chars.peek().is_some_and(|(k, _)| *k < end) {
                            chars.next();
                        }
                    }
                }
            }
            Some((j, other)) => errors.push((
                i..j + other.len_utf8(),
                format!("unknown escape `\\{other}`"),
            )),
            None => errors.push((i..i + 1, "a string cannot end with a lone `\\`".to_string())),
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_escape() {
        let (s, e) = unescape(r#"a\"b\\c\nd\te\u{e9}\u{1F600}"#);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s, "a\"b\\c\nd\te\u{e9}\u{1F600}");
    }

    #[test]
    fn reports_bad_escapes_with_their_ranges() {
        let (_, e) = unescape(r"x\qy");
        assert_eq!(e[0].0, 1..3);
        let (_, e) = unescape(r"\u{zz}");
        assert_eq!(e[0].0, 0..6);
        let (_, e) = unescape(r"\u{D800}");
        assert!(e[0].1.contains("scalar"));
        let (_, e) = unescape(r"\u{1234567}");
        assert_eq!(e.len(), 1);
        let (_, e) = unescape(r"\u12");
        assert_eq!(e.len(), 1);
    }
}
