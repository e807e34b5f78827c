//! What an answer says: the message and request id of an error body, a JSON answer decoded
//! without quoting it, and error text scrubbed of secrets and presigned signatures.

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use url::Url;

use super::attempt::{Answer, api_error};
use crate::cma::error::{ApiError, Endpoint, ErrorKind};
use crate::cma::wire::ErrorBody;
use crate::secret::Secret;

/// The longest message kept from an error body.
const MAX_MESSAGE_CHARS: usize = 300;
/// Headers that carry the service's request or trace id, most specific first.
const REQUEST_ID_HEADERS: [&str; 6] = [
    "x-request-id",
    "atl-request-id",
    "atl-traceid",
    "x-arequestid",
    "x-trace-id",
    "x-b3-traceid",
];

/// A Location fit for an error message: scheme, host and path, without the query (a
/// presigned URL's signature) or any user info.
pub(super) fn shown_location(location: &str) -> String {
    match Url::parse(location) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => location
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .collect(),
    }
}

/// The request id from the headers, else from the body.
pub(super) fn with_request_id(
    mut error: ApiError,
    headers: &HeaderMap,
    from_body: Option<String>,
) -> ApiError {
    let from_headers = REQUEST_ID_HEADERS.iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?.trim();
        plausible_id(value).then(|| value.to_owned())
    });
    error.request_id = from_headers.or(from_body.filter(|id| plausible_id(id)));
    error
}

fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic())
}

/// What an error body says: a message and possibly a request id.
pub(super) struct ServiceMessage {
    pub text: Option<String>,
    pub id: Option<String>,
    /// JSON with none of the message fields the client knows: a surprise, whose top-level
    /// keys (`{code, detail}`) are given here.
    pub unknown_envelope: Option<String>,
}

impl ServiceMessage {
    /// JSON `{status, errorMessage, id}`, other JSON, plain text, or an HTML page (its
    /// title only), trimmed and shortened.
    pub(super) fn read(headers: &HeaderMap, body: &[u8]) -> ServiceMessage {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return ServiceMessage {
                text: None,
                id: None,
                unknown_envelope: None,
            };
        }
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) {
            let parsed = serde_json::from_value::<ErrorBody>(value.clone()).ok();
            let id = parsed.as_ref().and_then(|body| body.id.clone());
            let (message, unknown_envelope) = match parsed.and_then(|body| body.text()) {
                Some(text) => (text, None),
                None => match &value {
                    serde_json::Value::String(text) => (text.clone(), None),
                    serde_json::Value::Object(map) => {
                        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                        (trimmed.to_owned(), Some(format!("{{{}}}", keys.join(", "))))
                    }
                    _ => (
                        trimmed.to_owned(),
                        Some("JSON that is not an object".to_owned()),
                    ),
                },
            };
            return ServiceMessage {
                text: Some(shorten(&message)),
                id,
                unknown_envelope,
            };
        }
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let looks_html = content_type.contains("html")
            || trimmed.starts_with("<!")
            || trimmed.to_ascii_lowercase().starts_with("<html");
        let message = if looks_html {
            match html_title(trimmed) {
                Some(title) => format!("an HTML page: {title}"),
                None => "an HTML page".to_owned(),
            }
        } else {
            trimmed.to_owned()
        };
        ServiceMessage {
            text: Some(shorten(&message)),
            id: None,
            unknown_envelope: None,
        }
    }
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title = html.get(open_end..close)?.trim();
    (!title.is_empty()).then(|| title.to_owned())
}

/// Whitespace collapsed, at most [`MAX_MESSAGE_CHARS`] characters.
pub(super) fn shorten(text: &str) -> String {
    crate::cma::text::shorten(text, MAX_MESSAGE_CHARS)
}

/// Decodes a 2xx JSON answer. The error describes the problem without quoting the body
/// (a token answer carries a secret).
pub(super) fn decode<T: DeserializeOwned>(
    endpoint: Endpoint,
    answer: &Answer,
) -> Result<T, ApiError> {
    let status = Some(200);
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        let error = api_error(endpoint, status, ErrorKind::Decode, "the answer is empty");
        return Err(with_request_id(error, &answer.headers, None));
    }
    serde_json::from_slice(&answer.body).map_err(|err| {
        let what = match err.classify() {
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Eof => "is JSON cut short",
            serde_json::error::Category::Data => "does not have the expected shape",
            serde_json::error::Category::Io => "could not be read",
        };
        let content_type = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("no content type");
        let message = format!(
            "the answer ({content_type}) {what} (line {}, column {})",
            err.line(),
            err.column()
        );
        let error = api_error(endpoint, status, ErrorKind::Decode, message);
        with_request_id(error, &answer.headers, None)
    })
}

/// Removes every secret value (and its Basic-auth encodings) from an error's text.
pub(super) fn redact(mut error: ApiError, secrets: &[String]) -> ApiError {
    error.message = crate::cma::text::redact(&error.message, secrets);
    if let ErrorKind::Redirect { location } = &mut error.kind {
        *location = crate::cma::text::redact(location, secrets);
    }
    error
}

/// The values to redact for a Basic-auth identity: the password and the header's encoding.
pub(super) fn basic_secrets(user: &str, password: &Secret) -> Vec<String> {
    vec![password.expose().to_owned(), basic_encoding(user, password)]
}

/// The `Authorization` header of Basic auth, marked sensitive (never logged by the HTTP
/// stack, kept out of HPACK's table).
pub(super) fn basic_authorization(user: &str, password: &Secret) -> HeaderValue {
    let mut value = HeaderValue::try_from(format!("Basic {}", basic_encoding(user, password)))
        .expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

fn basic_encoding(user: &str, password: &Secret) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn error_bodies_in_every_shape_give_a_message_and_id() {
        let json = ServiceMessage::read(
            &HeaderMap::new(),
            br#"{"status":400,"errorMessage":"Invalid flow","id":"req-1"}"#,
        );
        assert_eq!(json.text.as_deref(), Some("Invalid flow"));
        assert_eq!(json.id.as_deref(), Some("req-1"));
        let other = ServiceMessage::read(&HeaderMap::new(), br#"{"message":"nope","id":42}"#);
        assert_eq!(other.text.as_deref(), Some("nope"));
        assert_eq!(other.id.as_deref(), Some("42"));
        let listed = ServiceMessage::read(&HeaderMap::new(), br#"{"errors":["a","b"]}"#);
        assert_eq!(listed.text.as_deref(), Some("a; b"));
        let nested = ServiceMessage::read(
            &HeaderMap::new(),
            br#"{"errors":[{"message":"Invalid flow"},{"code":7}]}"#,
        );
        assert_eq!(nested.text.as_deref(), Some("Invalid flow"));
        let inner = ServiceMessage::read(
            &HeaderMap::new(),
            br#"{"error":{"message":"Job not found","code":404}}"#,
        );
        assert_eq!(inner.text.as_deref(), Some("Job not found"));
        assert!(inner.unknown_envelope.is_none());
        let other = ServiceMessage::read(&HeaderMap::new(), br#"{"code":7,"detail":"x"}"#);
        assert_eq!(other.text.as_deref(), Some(r#"{"code":7,"detail":"x"}"#));
        assert_eq!(other.unknown_envelope.as_deref(), Some("{code, detail}"));
        let plain = ServiceMessage::read(
            &HeaderMap::new(),
            b"  The destination cloud site is not authorized.\n  Reconnect it. ",
        );
        assert_eq!(
            plain.text.as_deref(),
            Some("The destination cloud site is not authorized. Reconnect it.")
        );
        let html = ServiceMessage::read(
            &headers(&[("content-type", "text/html")]),
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>x</h1></body></html>",
        );
        assert_eq!(html.text.as_deref(), Some("an HTML page: 502 Bad Gateway"));
        assert!(
            ServiceMessage::read(&HeaderMap::new(), b" \n")
                .text
                .is_none()
        );
        let long = "x".repeat(1000);
        let text = ServiceMessage::read(&HeaderMap::new(), long.as_bytes())
            .text
            .unwrap();
        assert_eq!(text.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn request_ids_come_from_headers_first_then_the_body() {
        let error = api_error(Endpoint::GetJob, Some(500), ErrorKind::Server, "x");
        let from_header = with_request_id(
            error.clone(),
            &headers(&[("atl-traceid", "abc123")]),
            Some("body-id".into()),
        );
        assert_eq!(from_header.request_id.as_deref(), Some("abc123"));
        let from_body = with_request_id(error.clone(), &HeaderMap::new(), Some("body-id".into()));
        assert_eq!(from_body.request_id.as_deref(), Some("body-id"));
        let junk = with_request_id(error, &HeaderMap::new(), Some("has space".into()));
        assert_eq!(junk.request_id, None);
    }

    #[test]
    fn locations_are_shown_without_query_or_user_info() {
        assert_eq!(
            shown_location("https://user:pw@evil.example/x?X-Amz-Signature=abc#f"),
            "https://evil.example/x"
        );
        assert_eq!(shown_location("/relative/path?sig=1"), "/relative/path");
    }

    #[test]
    fn secrets_are_redacted_from_messages() {
        let secrets = basic_secrets("a@b.c", &Secret::new("tok-123456"));
        let error = api_error(
            Endpoint::GetJob,
            Some(400),
            ErrorKind::BadRequest,
            format!("bad token tok-123456 in {}", secrets[1]),
        );
        let redacted = redact(error, &secrets);
        assert_eq!(redacted.message, "bad token *** in ***");
    }

    #[test]
    fn decode_errors_never_quote_the_body() {
        let answer = Answer {
            headers: headers(&[("content-type", "application/json")]),
            body: br#"{"token": 12345678, "uri": "x"}"#.to_vec(),
        };
        let error =
            decode::<crate::cma::wire::TokenResponse>(Endpoint::CreateToken, &answer).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Decode);
        assert!(!error.message.contains("12345678"), "{}", error.message);
        assert!(
            error.message.contains("expected shape"),
            "{}",
            error.message
        );
    }
}
