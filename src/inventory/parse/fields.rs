//! The single-value columns: `site`, `product`, `server_id`, `server_auth`, `cloud_user`,
//! `cloud_token`, `users`, `wave` and `name`. Each check returns the parsed value or a message.
//!
//! Messages repeat a value only where it cannot be a secret put in the wrong column by mistake
//! (site names, products, `users`); never for the secret columns, emails, Server IDs or names.

use super::problems::excerpt;
use crate::inventory::secret::{SecretRef, SecretRefError};
use crate::inventory::site::{Product, ServerAuth, UsersScope};

/// Site names end up in file names (`sites/<site>.json`), so they are short and plain.
const MAX_SITE_NAME: usize = 128;

/// `[a-z0-9][a-z0-9._-]*`, at most 128 characters.
pub(crate) fn site_name(text: &str) -> Result<String, String> {
    let valid = text.len() <= MAX_SITE_NAME
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if valid {
        return Ok(text.to_owned());
    }
    if text.len() > MAX_SITE_NAME {
        return Err(format!(
            "a site name is at most {MAX_SITE_NAME} characters (this one has {})",
            text.len()
        ));
    }
    let suggestion = suggest_site_name(text);
    let hint = match suggestion {
        Some(name) => format!(" (did you mean `{name}`?)"),
        None => String::new(),
    };
    Err(format!(
        "`{}` is not a valid site name: lower-case letters, digits, `.`, `_` and `-`, starting \
         with a letter or digit{hint}",
        excerpt(text)
    ))
}

fn suggest_site_name(text: &str) -> Option<String> {
    let mut name = String::new();
    for c in text.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name
        .trim_start_matches(['.', '_', '-'])
        .trim_end_matches('-')
        .to_owned();
    (!name.is_empty() && name.len() <= MAX_SITE_NAME).then_some(name)
}

/// `jira` or `confluence` (any case).
pub(crate) fn product(text: &str) -> Result<Product, String> {
    match text.to_ascii_lowercase().as_str() {
        "jira" => Ok(Product::Jira),
        "confluence" => Ok(Product::Confluence),
        other => {
            let hint = ["jira", "confluence"]
                .into_iter()
                .find(|known| strsim::levenshtein(other, known) <= 2)
                .map(|known| format!(" (did you mean `{known}`?)"))
                .unwrap_or_default();
            Err(format!(
                "unknown product `{}`: expected `jira` or `confluence`{hint}",
                excerpt(text)
            ))
        }
    }
}

/// A Server ID (`BXXX-XXXX-XXXX-XXXX`, sometimes all digits): no spaces, no control characters.
pub(crate) fn server_id(text: &str) -> Result<String, String> {
    if text.contains(|c: char| c.is_whitespace() || c.is_control()) {
        Err(
            "a Server ID has no spaces, e.g. BXXX-XXXX-XXXX-XXXX (Administration › System info)"
                .to_owned(),
        )
    } else if text.len() > 255 {
        Err("a Server ID is at most 255 characters".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// A secret reference to a PAT (`env:…`, `file:…`), or `basic:USERNAME:` then a reference to
/// the password.
pub(crate) fn server_auth(text: &str) -> Result<ServerAuth, String> {
    let Some(rest) = text.strip_prefix("basic:") else {
        return secret_ref(text, true).map(ServerAuth::Bearer);
    };
    let Some((username, reference)) = rest.split_once(':') else {
        return Err(
            "`basic:` needs a username and a password reference: basic:USERNAME:env:VAR_NAME \
             (the value is not shown)"
                .to_owned(),
        );
    };
    if username.is_empty() || username.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(
            "`basic:` needs a username without spaces: basic:USERNAME:env:VAR_NAME".to_owned(),
        );
    }
    let password =
        secret_ref(reference, false).map_err(|message| format!("password: {message}"))?;
    Ok(ServerAuth::Basic {
        username: username.to_owned(),
        password,
    })
}

/// `env:NAME` or `file:/abs/path`; anything else is a literal secret and is not repeated.
pub(crate) fn secret_ref(text: &str, basic_allowed: bool) -> Result<SecretRef, String> {
    SecretRef::parse(text).map_err(|err| match err {
        SecretRefError::Literal if basic_allowed => {
            format!("{err}, or basic:USERNAME:env:VAR_NAME for a password (the value is not shown)")
        }
        SecretRefError::Literal => format!("{err} (the value is not shown)"),
        other => other.to_string(),
    })
}

/// The cloud admin's email address: `local@domain.tld`, no spaces. Not repeated in messages:
/// a token pasted here by mistake must not be printed.
pub(crate) fn cloud_user(text: &str) -> Result<String, String> {
    let valid = match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| !label.is_empty())
                && !text.contains(|c: char| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(text.to_owned())
    } else {
        Err("must be the email address of a cloud site admin, e.g. admin@acme.com".to_owned())
    }
}

/// `all` (the default when empty) or `none`, any case.
pub(crate) fn users(text: &str) -> Result<UsersScope, String> {
    match text.to_ascii_lowercase().as_str() {
        "" | "all" => Ok(UsersScope::All),
        "none" => Ok(UsersScope::None),
        _ => Err(format!(
            "`{}` is not a users scope: write `all` (the default) or `none`",
            excerpt(text)
        )),
    }
}

/// `scope_json`: the job's `scope` exactly as the row wants it sent, a JSON object.
pub(crate) fn scope_json(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    const EXAMPLE: &str = r#"{"projects":{"includedKeys":["ABC"],"includedData":"all"}}"#;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) if !map.is_empty() => Ok(map),
        Ok(serde_json::Value::Object(_)) => Err(format!(
            "is an empty JSON object: give the scope to send, e.g. {EXAMPLE}"
        )),
        Ok(_) => Err(format!("must be a JSON object, e.g. {EXAMPLE}")),
        Err(err) => Err(format!(
            "is not valid JSON ({err}); write the scope as a JSON object, e.g. {EXAMPLE} (in CSV, a cell with commas or quotes is quoted and its quotes doubled)"
        )),
    }
}

/// A free label (`wave`) or job name (`name`): no control characters (a line break in a
/// quoted field, a tab).
pub(crate) fn label(text: &str) -> Result<String, String> {
    if text.contains(char::is_control) {
        Err("must not contain line breaks, tabs or other control characters".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names() {
        for ok in [
            "acme",
            "acme-jira-prod",
            "0day",
            "a.b_c-d",
            &"a".repeat(128),
        ] {
            assert_eq!(site_name(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "-acme",
            ".acme",
            "_a",
            "Acme",
            "acme jira",
            "acmé",
            &"a".repeat(129),
        ] {
            assert!(site_name(bad).is_err(), "{bad}");
        }
        let err = site_name("Acme Jira/Prod").unwrap_err();
        assert!(err.contains("did you mean `acme-jira-prod`?"), "{err}");
    }

    #[test]
    fn products() {
        assert_eq!(product("jira"), Ok(Product::Jira));
        assert_eq!(product("Confluence"), Ok(Product::Confluence));
        let err = product("jria").unwrap_err();
        assert!(err.contains("unknown product `jria`"), "{err}");
        assert!(err.contains("did you mean `jira`?"), "{err}");
        assert!(!product("bitbucket").unwrap_err().contains("did you mean"));
    }

    #[test]
    fn server_ids() {
        assert_eq!(
            server_id("RMJK-8WAW-JKMI-CNOY").as_deref(),
            Ok("RMJK-8WAW-JKMI-CNOY")
        );
        assert_eq!(server_id("123456789").as_deref(), Ok("123456789"));
        assert!(server_id("RMJK 8WAW").is_err());
    }

    #[test]
    fn server_auth_bearer_and_basic() {
        assert_eq!(
            server_auth("env:ACME_PAT"),
            Ok(ServerAuth::Bearer(SecretRef::Env("ACME_PAT".into())))
        );
        assert_eq!(
            server_auth("basic:migrator:file:/etc/cmafleet/acme.pw"),
            Ok(ServerAuth::Basic {
                username: "migrator".into(),
                password: SecretRef::File("/etc/cmafleet/acme.pw".into()),
            })
        );
        assert!(
            server_auth("basic:migrator")
                .unwrap_err()
                .contains("username and a password")
        );
        assert!(
            server_auth("basic::env:X")
                .unwrap_err()
                .contains("username")
        );
        assert!(server_auth("env:").unwrap_err().contains("variable name"));
        assert!(
            server_auth("file:relative/x")
                .unwrap_err()
                .contains("absolute path")
        );
    }

    #[test]
    fn literal_secrets_are_refused_without_being_repeated() {
        for (text, secret) in [
            (
                "NDY4NjYxNjk3NzgxOkL2mQxSecretPat",
                "NDY4NjYxNjk3NzgxOkL2mQxSecretPat",
            ),
            ("basic:migrator:Hunter2Secret", "Hunter2Secret"),
            ("basic:Hunter2Secret", "Hunter2Secret"),
        ] {
            let err = server_auth(text).unwrap_err();
            assert!(!err.contains(secret), "{err}");
            assert!(
                err.contains("not shown") || err.contains("basic:USERNAME"),
                "{err}"
            );
        }
        let err = secret_ref("ATATT3xFfGF0TopSecretCloudToken", false).unwrap_err();
        assert!(err.contains("literal secret"), "{err}");
        assert!(!err.contains("ATATT3x"), "{err}");
    }

    #[test]
    fn cloud_users_are_emails_and_are_not_echoed() {
        assert!(cloud_user("admin@acme.com").is_ok());
        assert!(cloud_user("first.last+migr@sub.acme.co.uk").is_ok());
        for bad in [
            "ops",
            "@globex.org",
            "ops@globex",
            "ops@globex..org",
            "o s@globex.org",
            "o@p@globex.org",
        ] {
            let err = cloud_user(bad).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
    }

    #[test]
    fn users_scope() {
        assert_eq!(users(""), Ok(UsersScope::All));
        assert_eq!(users("ALL"), Ok(UsersScope::All));
        assert_eq!(users("none"), Ok(UsersScope::None));
        assert!(users("some").unwrap_err().contains("`all`"));
    }

    #[test]
    fn scope_json_must_be_a_non_empty_object() {
        let map =
            scope_json(r#"{"spaces":{"includedKeys":["ENG"],"includedData":"ALL"}}"#).unwrap();
        assert_eq!(map["spaces"]["includedData"], "ALL");
        assert!(scope_json("[1]").unwrap_err().contains("JSON object"));
        assert!(scope_json("{}").unwrap_err().contains("empty"));
        assert!(
            scope_json("{projects:1}")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn labels_refuse_control_characters() {
        assert_eq!(label("wave 1 — pilot").as_deref(), Ok("wave 1 — pilot"));
        assert!(label("two\nlines").is_err());
    }
}
