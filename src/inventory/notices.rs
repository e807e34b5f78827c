//! What a valid inventory still deserves a word about before anything is sent: servers
//! reached over plain http (their credential travels unencrypted), and job-definition parts
//! whose wire form no public document shows (cmafleet infers it; `scope_json` lets the user
//! decide). `validate`, `plan` and `run` say each once, listing the lines it concerns.

use std::collections::BTreeMap;
use std::fmt;

use super::site::{Product, Site, UsersScope};

/// How many line numbers a notice lists before "… and N more".
const LINES_SHOWN: usize = 8;

/// One thing to say about an inventory, with the rows it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// CSV lines of the rows concerned, ascending.
    pub lines: Vec<usize>,
    /// What to know and what to do about it.
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .take(LINES_SHOWN)
            .map(ToString::to_string)
            .collect();
        if self.lines.len() > LINES_SHOWN {
            lines.push(format!("… and {} more", self.lines.len() - LINES_SHOWN));
        }
        let noun = if self.lines.len() == 1 {
            "line"
        } else {
            "lines"
        };
        write!(f, "{} ({noun} {})", self.message, lines.join(", "))
    }
}

/// The parts of a job definition sent in a form no public example shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Inferred {
    JiraUsers,
    UsersNone,
    AllKeys,
    ConfluenceIncludedData,
    JiraApps,
}

impl Inferred {
    fn describe(self) -> &'static str {
        match self {
            Inferred::JiraUsers => "`usersAndGroups` on a Jira job (`users` column)",
            Inferred::UsersNone => "`usersAndGroups.mode: NONE` (`users = none`)",
            Inferred::AllKeys => {
                "a projects/spaces scope without `includedKeys` (empty `keys`: all)"
            }
            Inferred::ConfluenceIncludedData => {
                "`includedData: \"all\"` in lower case on a Confluence job"
            }
            Inferred::JiraApps => "`apps` on a Jira job (`apps` column)",
        }
    }

    fn of(site: &Site) -> Vec<Inferred> {
        if site.scope_json.is_some() {
            return Vec::new();
        }
        let mut inferred = Vec::new();
        if site.product == Product::Jira {
            inferred.push(Inferred::JiraUsers);
            if !site.apps.is_empty() {
                inferred.push(Inferred::JiraApps);
            }
        } else {
            inferred.push(Inferred::ConfluenceIncludedData);
        }
        if site.users == UsersScope::None {
            inferred.push(Inferred::UsersNone);
        }
        if site.keys.is_empty() {
            inferred.push(Inferred::AllKeys);
        }
        inferred
    }
}

/// Every notice of an inventory's sites: plain-http servers, then inferred wire forms
/// (`validate` says both; `plan` too; `run` only the first).
pub fn notices<'a>(sites: impl IntoIterator<Item = &'a Site> + Clone) -> Vec<Notice> {
    let mut notices = plain_http(sites.clone());
    notices.extend(inferred_wire_forms(sites));
    notices
}

/// One notice per Server/DC instance reached over plain http off this machine: its
/// credential crosses the network unencrypted.
pub fn plain_http<'a>(sites: impl IntoIterator<Item = &'a Site>) -> Vec<Notice> {
    let mut plain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for site in sites {
        let url = &site.server_url;
        let off_machine = url
            .host()
            .is_some_and(|host| !crate::loopback::is_loopback_host(&host));
        if url.scheme() == "http" && off_machine {
            let place = match (url.host_str(), url.port_or_known_default()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                _ => site.server_id.clone(),
            };
            plain.entry(place).or_default().push(site.line);
        }
    }
    plain
        .into_iter()
        .map(|(place, lines)| Notice {
            lines,
            message: format!(
                "server {place} is reached over plain http: its credential (server_auth) travels unencrypted on the network; use https:// if the instance serves it"
            ),
        })
        .collect()
}

/// One notice per job-definition part sent in a form no public example shows, with the
/// rows that send it.
pub fn inferred_wire_forms<'a>(sites: impl IntoIterator<Item = &'a Site>) -> Vec<Notice> {
    let mut inferred: BTreeMap<Inferred, Vec<usize>> = BTreeMap::new();
    for site in sites {
        for point in Inferred::of(site) {
            inferred.entry(point).or_default().push(site.line);
        }
    }
    inferred
        .into_iter()
        .map(|(point, lines)| Notice {
            lines,
            message: format!(
                "wire form inferred (no public example shows it): {}; to decide it yourself, give the row's scope as JSON in a `scope_json` column (sent as is)",
                point.describe()
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(rows: &[&str]) -> Vec<Site> {
        let mut text = String::from(
            "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users,apps,scope_json\n",
        );
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        crate::inventory::parse(&text).unwrap()
    }

    #[test]
    fn a_plain_http_server_is_named_once_with_its_lines() {
        let found = notices(&sites(&[
            "a,jira,http://jira.acme.internal:8080,S1,env:P,https://a.atlassian.net,u@a.co,env:T,ABC,,,",
            "l,jira,http://127.0.0.1:8080,S3,env:P,https://l.atlassian.net,u@a.co,env:T,ABC,,,",
            "b,jira,http://jira.acme.internal:8080/,S1,env:P,https://b.atlassian.net,u@a.co,env:T,DEF,,,",
            "c,jira,https://jira.other.com,S2,env:P,https://c.atlassian.net,u@a.co,env:T,GHI,,,",
        ]));
        let plain: Vec<&Notice> = found
            .iter()
            .filter(|notice| notice.message.contains("plain http"))
            .collect();
        assert_eq!(
            plain.len(),
            1,
            "loopback never leaves the machine: {found:#?}"
        );
        assert_eq!(plain[0].lines, vec![2, 4]);
        assert!(plain[0].to_string().contains("jira.acme.internal:8080"));
        assert!(plain[0].to_string().ends_with("(lines 2, 4)"));
    }

    #[test]
    fn inferred_wire_forms_are_grouped_and_scope_json_silences_them() {
        let found = notices(&sites(&[
            "a,jira,https://j.acme.com,S1,env:P,https://a.atlassian.net,u@a.co,env:T,,none,com.x,",
            r#"b,jira,https://k.acme.com,S2,env:P,https://b.atlassian.net,u@a.co,env:T,,,,"{""projects"":{""includedData"":""ALL""}}""#,
        ]));
        let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
        for expected in [
            "usersAndGroups` on a Jira job",
            "mode: NONE",
            "without `includedKeys`",
            "`apps` on a Jira job",
        ] {
            let notice = messages
                .iter()
                .find(|message| message.contains(expected))
                .unwrap_or_else(|| panic!("no notice about {expected}: {messages:#?}"));
            assert!(notice.ends_with("(line 2)"), "{notice}");
        }
    }
}
