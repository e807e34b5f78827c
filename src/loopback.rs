//! Which hosts are this machine's own. Plain http is allowed to them for the cloud API, an
//! artifact download and a settings URL (the simulator and the tests live there); anywhere
//! else a secret would travel unencrypted. The inventory, the settings and the API client all
//! ask, so the answer lives below them.

use std::net::IpAddr;

use url::{Host, Url};

/// `localhost` (any case) or a loopback address.
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Whether `url`'s host is loopback (a URL without a host is not).
pub fn is_loopback_url(url: &Url) -> bool {
    url.host().is_some_and(|host| is_loopback_host(&host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_and_loopback_addresses_are_loopback_and_nothing_else_is() {
        for loopback in [
            "http://127.0.0.1:1",
            "http://127.8.9.10",
            "http://localhost:8090",
            "http://LOCALHOST",
            "http://[::1]:9000",
        ] {
            assert!(
                is_loopback_url(&Url::parse(loopback).unwrap()),
                "{loopback}"
            );
        }
        for remote in [
            "http://jira.acme.com",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.acme.com",
        ] {
            assert!(!is_loopback_url(&Url::parse(remote).unwrap()), "{remote}");
        }
    }
}
