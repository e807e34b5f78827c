//! A Server/DC instance's refusals that no retry can change, read from its answer's words.

use crate::cma::error::{Endpoint, ErrorKind};

/// Phrases of the plain-text answer to an attach whose cloud site is not connected.
const NOT_CONNECTED_PHRASES: [&str; 3] = ["not authorized", "reconnect", "not connected"];
/// The server's answer to a save-token with an expired token or a mismatched pair.
const SAVE_TOKEN_FAILED: &str = "exception in saving token";

/// A server answer that is final whatever its status: an attach refused because the cloud
/// site is not connected (the fix is a connect), or a save-token the server could not apply
/// (an expired token or a mismatched pair; a new token is needed, not the same again).
pub(super) fn refusal(endpoint: Endpoint, status: u16, text: Option<&str>) -> Option<ErrorKind> {
    let text = text?.to_lowercase();
    match endpoint {
        // Any 4xx/5xx with the refusal's words; a 401/403 only when it also speaks of the
        // cloud site (else it is the server refusing our own credentials).
        Endpoint::Attach
            if status >= 400
                && !matches!(status, 404 | 429)
                && NOT_CONNECTED_PHRASES.iter().any(|p| text.contains(p))
                && (!matches!(status, 401 | 403) || text.contains("cloud site")) =>
        {
            Some(ErrorKind::NotConnected)
        }
        Endpoint::SaveToken if status >= 500 && text.contains(SAVE_TOKEN_FAILED) => {
            Some(ErrorKind::BadRequest)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_refusals_are_not_connected_whatever_the_casing() {
        for (status, text) in [
            (
                400,
                "The destination cloud site is NOT AUTHORIZED with the server.",
            ),
            (500, "Please reconnect the cloud site"),
            (500, "cloud site not connected"),
        ] {
            assert_eq!(
                refusal(Endpoint::Attach, status, Some(text)),
                Some(ErrorKind::NotConnected),
                "{status} {text}"
            );
        }
        // Other statuses carry it too (the status is undocumented).
        assert_eq!(
            refusal(
                Endpoint::Attach,
                403,
                Some(
                    "The destination cloud site https://a.atlassian.net is not authorized with the server. Reconnect it."
                )
            ),
            Some(ErrorKind::NotConnected)
        );
        assert_eq!(
            refusal(Endpoint::Attach, 409, Some("please reconnect")),
            Some(ErrorKind::NotConnected)
        );
        // Credentials problems on the server itself stay what they are.
        assert_eq!(refusal(Endpoint::Attach, 401, Some("not authorized")), None);
        assert_eq!(refusal(Endpoint::Attach, 403, Some("not authorized")), None);
        assert_eq!(
            refusal(Endpoint::Attach, 500, Some("NullPointerException")),
            None
        );
        assert_eq!(refusal(Endpoint::Attach, 500, None), None);
        assert_eq!(refusal(Endpoint::GetJob, 400, Some("not connected")), None);
    }

    #[test]
    fn a_failed_save_token_is_final() {
        assert_eq!(
            refusal(Endpoint::SaveToken, 500, Some("Exception in saving token.")),
            Some(ErrorKind::BadRequest)
        );
        assert_eq!(refusal(Endpoint::SaveToken, 503, Some("busy")), None);
    }
}
