//! Label values from outside the program (check names, progress item names, status codes),
//! folded into bounded, safe words: no URL, email, id or error text ever becomes a label.

/// What an unacceptable value is reported as.
pub(super) const OTHER: &str = "other";

/// The longest opaque name (check or progress item) kept as a label value.
const MAX_NAME_CHARS: usize = 64;

/// A check name or progress item name as the service spelled it (`AnonPermission`,
/// `Preflight Checks`), or [`OTHER`] when it looks like anything but a name: too long,
/// empty, or holding characters a URL, an email or a sentence would have.
pub(super) fn opaque_name(value: &str) -> &str {
    let value = value.trim();
    let acceptable = !value.is_empty()
        && value.chars().count() <= MAX_NAME_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.'));
    if acceptable { value } else { OTHER }
}

/// A check outcome in the service's upper case (`SUCCESS`, `WARNING`, `FAILED`, `SKIPPED`),
/// compared case-insensitively; anything else is `UNKNOWN`.
pub(super) fn check_outcome(value: &str) -> &'static str {
    const KNOWN: [&str; 4] = ["SUCCESS", "WARNING", "FAILED", "SKIPPED"];
    let value = value.trim();
    KNOWN
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(value))
        .unwrap_or("UNKNOWN")
}

/// An attempt's `code`: a three-digit HTTP status, or a short lower-case word the client
/// uses for attempts without a status (`timeout`, `connect`, `error`); else [`OTHER`].
pub(super) fn response_code(value: &str) -> &str {
    let is_status = value.len() == 3 && value.bytes().all(|b| b.is_ascii_digit());
    let is_word = (1..=16).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if is_status || is_word { value } else { OTHER }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_pass_and_urls_emails_sentences_do_not() {
        assert_eq!(opaque_name("AnonPermission"), "AnonPermission");
        assert_eq!(opaque_name(" Preflight Checks "), "Preflight Checks");
        assert_eq!(
            opaque_name("jira.projects-issues_2"),
            "jira.projects-issues_2"
        );
        for bad in [
            "",
            "https://acme.atlassian.net",
            "admin@acme.example",
            "We couldn't check the users: timeout!",
            "path/with/slashes",
            "line\nbreak",
            &"x".repeat(65),
        ] {
            assert_eq!(opaque_name(bad), OTHER, "{bad:?}");
        }
    }

    #[test]
    fn check_outcomes_are_upper_case_words_from_a_closed_set() {
        assert_eq!(check_outcome("FAILED"), "FAILED");
        assert_eq!(check_outcome("warning"), "WARNING");
        assert_eq!(check_outcome("Success"), "SUCCESS");
        assert_eq!(check_outcome("SKIPPED"), "SKIPPED");
        assert_eq!(check_outcome("EXPLODED"), "UNKNOWN");
    }

    #[test]
    fn codes_are_statuses_or_short_words() {
        assert_eq!(response_code("200"), "200");
        assert_eq!(response_code("429"), "429");
        assert_eq!(response_code("timeout"), "timeout");
        assert_eq!(response_code("connect"), "connect");
        assert_eq!(response_code("2000"), OTHER);
        assert_eq!(response_code("error: connection reset by peer"), OTHER);
        assert_eq!(response_code(""), OTHER);
    }
}
