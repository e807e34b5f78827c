//! Credentials: HTTP Basic (cloud: email and API token; server: username and password) and
//! Bearer (server personal access tokens). The simulator never logs either.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Well-formed credentials from an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    Basic { user: String, secret: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}:***)"),
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Credentials {
    /// The secret part: a PAT, or a Basic password (or API token).
    pub(crate) fn secret(&self) -> &str {
        match self {
            Credentials::Basic { secret, .. } => secret,
            Credentials::Bearer(token) => token,
        }
    }
}

/// The credentials of a request, or `None` when absent or malformed (both answer 401).
pub(crate) fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(STANDARD.decode(rest).ok()?).ok()?;
        let (user, secret) = decoded.split_once(':')?;
        if user.is_empty() || secret.is_empty() {
            return None;
        }
        Some(Credentials::Basic {
            user: user.to_owned(),
            secret: secret.to_owned(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Some(Credentials::Bearer(rest.to_owned()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_and_bearer_parse() {
        let basic = format!("Basic {}", STANDARD.encode("alice@x.example:tok:en"));
        assert_eq!(
            credentials(&headers(&basic)),
            Some(Credentials::Basic {
                user: "alice@x.example".into(),
                secret: "tok:en".into()
            })
        );
        assert_eq!(
            credentials(&headers("Bearer abc")),
            Some(Credentials::Bearer("abc".into()))
        );
        assert_eq!(
            credentials(&headers("bearer abc")),
            Some(Credentials::Bearer("abc".into()))
        );
    }

    #[test]
    fn malformed_credentials_are_none() {
        assert_eq!(credentials(&HeaderMap::new()), None);
        assert_eq!(credentials(&headers("Basic !!!")), None);
        let no_colon = format!("Basic {}", STANDARD.encode("alice"));
        assert_eq!(credentials(&headers(&no_colon)), None);
        let empty_token = format!("Basic {}", STANDARD.encode("alice:"));
        assert_eq!(credentials(&headers(&empty_token)), None);
        assert_eq!(credentials(&headers("Bearer ")), None);
        assert_eq!(credentials(&headers("Digest abc")), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let creds = Credentials::Basic {
            user: "a".into(),
            secret: "s3cr3t".into(),
        };
        assert!(!format!("{creds:?}").contains("s3cr3t"));
    }
}
