//! What an answer's text may show in a message, a log line or a report: whitespace collapsed,
//! cut to a length a person reads, and never a secret.

/// Whitespace collapsed, at most `max_chars` characters (and `…` when cut).
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let mut short: String = collapsed.chars().take(max_chars).collect();
        short.push('…');
        short
    }
}

/// `text` with every secret value (of four characters or more) replaced by `***`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_short_and_hold_no_secret() {
        assert_eq!(shorten("  a \n b  ", 10), "a b");
        assert_eq!(shorten("abcdef", 3), "abc…");
        let secrets = vec!["tok-1234".to_owned(), "abc".to_owned()];
        assert_eq!(redact("x tok-1234 abc", &secrets), "x *** abc");
    }
}
