//! The two URL columns: `server_url` (a Server/DC base URL, which may have a context path) and
//! `cloud_url` (a cloud site's root). Messages never repeat the URL: it could hold a password.

use url::Url;

use crate::loopback::is_loopback_host;

/// A Server/DC base URL: http(s), a host, an optional context path (`/jira`), no credentials,
/// query or fragment. Plain http is accepted on any host (instances inside a customer's
/// network often serve it; the run warns that the credential travels unencrypted).
/// Trailing slashes are dropped.
pub(crate) fn server_url(text: &str) -> Result<Url, String> {
    let mut url = common(text, "https://jira.acme.com")?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// A cloud site URL: `https://acme.atlassian.net`, the site's root (no path), https unless the
/// host is loopback (the simulator).
pub(crate) fn cloud_url(text: &str) -> Result<Url, String> {
    let url = common(text, "https://acme.atlassian.net")?;
    if let Some(host) = url.host()
        && url.scheme() == "http"
        && !is_loopback_host(&host)
    {
        return Err(format!(
            "plain http:// is refused for `{host}`, which is not a loopback host: use https:// \
             (http is allowed only for 127.0.0.0/8, ::1 and localhost)"
        ));
    }
    if url.path() != "/" {
        return Err(
            "must be the cloud site's root URL without a path, e.g. https://acme.atlassian.net \
             (no /wiki or /jira)"
                .to_owned(),
        );
    }
    Ok(url)
}

fn common(text: &str, example: &str) -> Result<Url, String> {
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(format!(
                "not a URL: it needs a scheme and a host, e.g. {example}"
            ));
        }
        Err(err) => return Err(format!("not a valid URL ({err}); expected e.g. {example}")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain credentials (user:password@); give them in server_auth or \
             cloud_token as a secret reference (the URL is not shown here)"
                .to_owned(),
        );
    }
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("only https:// URLs are supported, e.g. {example}"));
    }
    if url.host().is_none() {
        return Err(format!("has no host; expected e.g. {example}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (?…) or fragment (#…)".to_owned());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_keep_their_context_path_without_trailing_slash() {
        let url = server_url("https://jira.acme.com/jira/").unwrap();
        assert_eq!(url.as_str(), "https://jira.acme.com/jira");
        let url = server_url("https://JIRA.acme.com:8443").unwrap();
        assert_eq!(url.as_str(), "https://jira.acme.com:8443/");
        let url = server_url("http://127.0.0.1:8080/servers/alpha").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/servers/alpha");
    }

    #[test]
    fn plain_http_servers_are_accepted_anywhere_and_cloud_sites_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:1",
            "http://127.8.9.10",
            "http://localhost:8090",
            "http://LOCALHOST",
            "http://[::1]:9000",
        ] {
            assert!(server_url(ok).is_ok(), "{ok}");
            assert!(cloud_url(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://jira.acme.com",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.acme.com",
        ] {
            assert!(server_url(refused).is_ok(), "{refused}");
            let err = cloud_url(refused).unwrap_err();
            assert!(err.contains("plain http:// is refused"), "{refused}: {err}");
        }
    }

    #[test]
    fn malformed_urls_are_explained() {
        assert!(
            server_url("jira.acme.com")
                .unwrap_err()
                .contains("needs a scheme")
        );
        assert!(
            server_url("ftp://jira.acme.com")
                .unwrap_err()
                .contains("https://")
        );
        assert!(
            server_url("https://")
                .unwrap_err()
                .contains("not a valid URL")
        );
        assert!(
            server_url("https://jira.acme.com/?a=b")
                .unwrap_err()
                .contains("query")
        );
        assert!(
            server_url("https://jira.acme.com/#x")
                .unwrap_err()
                .contains("fragment")
        );
        assert!(
            server_url("https://acme com")
                .unwrap_err()
                .contains("not a valid URL")
        );
    }

    #[test]
    fn cloud_urls_are_site_roots() {
        assert_eq!(
            cloud_url("https://acme.atlassian.net/").unwrap().as_str(),
            "https://acme.atlassian.net/"
        );
        assert!(
            cloud_url("https://acme.atlassian.net/wiki")
                .unwrap_err()
                .contains("/wiki")
        );
    }

    #[test]
    fn credentials_are_refused_and_never_echoed() {
        for text in [
            "https://admin:Hunter2Secret@jira.acme.com",
            "https://admin@jira.acme.com",
            "http://admin:Hunter2Secret@example.com",
        ] {
            let err = server_url(text).unwrap_err();
            assert!(err.contains("credentials"), "{err}");
            assert!(
                !err.contains("Hunter2Secret") && !err.contains("admin@"),
                "{err}"
            );
            let err = cloud_url(text).unwrap_err();
            assert!(!err.contains("Hunter2Secret"), "{err}");
        }
        let err = server_url("https://admin:Hunter2Secret@jira acme.com").unwrap_err();
        assert!(!err.contains("Hunter2Secret"), "{err}");
    }
}
