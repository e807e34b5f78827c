//! Tests of `parse` as a whole: one per validation rule, line numbers, ordering, scale.

use super::*;
use crate::inventory::secret::SecretRef;
use crate::inventory::site::{Product, ServerAuth, UsersScope, definition_hash};

mod file;

pub(super) const HEADER: &str = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users,apps,global_entities,wave,name";

/// A valid Jira row with the given columns replaced (values are CSV-quoted as needed).
fn row(overrides: &[(&str, &str)]) -> String {
    let defaults = [
        ("site", "acme-jira"),
        ("product", "jira"),
        ("server_url", "https://jira.acme.com"),
        ("server_id", "BXXX-XXXX-XXXX-XXXX"),
        ("server_auth", "env:ACME_PAT"),
        ("cloud_url", "https://acme.atlassian.net"),
        ("cloud_user", "admin@acme.com"),
        ("cloud_token", "env:ACME_TOKEN"),
        ("keys", "ABC;DEF"),
        ("users", ""),
        ("apps", ""),
        ("global_entities", ""),
        ("wave", "pilot"),
        ("name", ""),
    ];
    for (column, _) in overrides {
        assert!(
            defaults.iter().any(|(name, _)| name == column),
            "no column {column}"
        );
    }
    defaults
        .iter()
        .map(|(column, default)| {
            let value = overrides
                .iter()
                .find(|(name, _)| name == column)
                .map_or(*default, |(_, value)| *value);
            quote(value)
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn inventory(rows: &[String]) -> String {
    let mut text = format!("{HEADER}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(sites) => panic!("expected problems, got {} sites", sites.len()),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

/// The problems of a one-row inventory.
fn row_problems(overrides: &[(&str, &str)]) -> Vec<String> {
    problems(&inventory(&[row(overrides)]))
}

fn assert_one(problems: &[String], expected_start: &str) {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(expected_start),
        "{:?} does not start with {expected_start:?}",
        problems[0]
    );
}

#[test]
fn a_valid_row_becomes_a_site() {
    let text = inventory(&[
        row(&[
            ("apps", "com.a.b; com.c.d"),
            ("users", "none"),
            ("name", "ACME, core"),
        ]),
        row(&[
            ("site", "acme-wiki"),
            ("product", "confluence"),
            ("server_url", "http://127.0.0.1:8090/servers/wiki/"),
            ("server_id", "1234567"),
            ("server_auth", "basic:migrator:file:/etc/cmafleet/wiki.pw"),
            ("cloud_url", "https://ACME.atlassian.net/"),
            ("keys", "DOCS;~jsmith"),
            ("global_entities", "GLOBAL_PAGE_TEMPLATES"),
            ("wave", ""),
        ]),
    ]);
    let sites = parse(&text).unwrap();
    assert_eq!(sites.len(), 2);
    let jira = &sites[0];
    assert_eq!(jira.line, 2);
    assert_eq!(jira.name, "acme-jira");
    assert_eq!(jira.product, Product::Jira);
    assert_eq!(jira.server_url_str(), "https://jira.acme.com");
    assert_eq!(jira.server_id, "BXXX-XXXX-XXXX-XXXX");
    assert_eq!(
        jira.server_auth,
        ServerAuth::Bearer(SecretRef::Env("ACME_PAT".into()))
    );
    assert_eq!(jira.cloud_url_str(), "https://acme.atlassian.net");
    assert_eq!(jira.cloud_user, "admin@acme.com");
    assert_eq!(jira.cloud_token, SecretRef::Env("ACME_TOKEN".into()));
    assert_eq!(jira.keys, ["ABC", "DEF"]);
    assert_eq!(jira.users, UsersScope::None);
    assert_eq!(jira.apps, ["com.a.b", "com.c.d"]);
    assert!(jira.global_entities.is_empty());
    assert_eq!(jira.wave.as_deref(), Some("pilot"));
    assert_eq!(jira.job_name(), "ACME, core");

    let wiki = &sites[1];
    assert_eq!(wiki.line, 3);
    assert_eq!(wiki.server_url_str(), "http://127.0.0.1:8090/servers/wiki");
    assert_eq!(wiki.cloud_url_str(), "https://acme.atlassian.net");
    assert_eq!(
        wiki.server_auth,
        ServerAuth::Basic {
            username: "migrator".into(),
            password: SecretRef::File("/etc/cmafleet/wiki.pw".into()),
        }
    );
    assert_eq!(wiki.keys, ["DOCS", "~jsmith"]);
    assert_eq!(wiki.users, UsersScope::All);
    assert_eq!(wiki.global_entities, ["GLOBAL_PAGE_TEMPLATES"]);
    assert_eq!(wiki.wave, None);
    assert_eq!(wiki.job_name(), "cmafleet acme-wiki");
}

#[test]
fn optional_columns_may_be_absent_from_the_header() {
    let text = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token\n\
                a,jira,https://j.a.com,S1,env:P,https://a.atlassian.net,m@a.com,env:T\n";
    let sites = parse(text).unwrap();
    assert!(sites[0].keys.is_empty());
    assert_eq!(sites[0].users, UsersScope::All);
    assert_eq!(sites[0].wave, None);
}

#[test]
fn unknown_product() {
    assert_one(
        &row_problems(&[("product", "bamboo")]),
        "line 2, column product: unknown product `bamboo`",
    );
}

#[test]
fn missing_and_malformed_urls() {
    assert_one(
        &row_problems(&[("server_url", "")]),
        "line 2, column server_url: `server_url` is required but empty",
    );
    assert_one(
        &row_problems(&[("cloud_url", "acme.atlassian.net")]),
        "line 2, column cloud_url: not a URL",
    );
    assert_one(
        &row_problems(&[("server_url", "https://jira.acme.com/?os_authType=basic")]),
        "line 2, column server_url: must not have a query",
    );
    assert_one(
        &row_problems(&[("cloud_url", "https://acme.atlassian.net/wiki")]),
        "line 2, column cloud_url: must be the cloud site's root URL",
    );
}

#[test]
fn plain_http_is_accepted_for_a_server_and_refused_off_loopback_for_a_cloud_site() {
    let problems = row_problems(&[
        ("server_url", "http://jira.acme.internal:8080"),
        ("cloud_url", "http://acme.atlassian.net"),
    ]);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("line 2, column cloud_url: plain http:// is refused"));
    assert!(
        parse(&inventory(&[row(&[
            ("server_url", "http://localhost:2990/jira"),
            ("cloud_url", "http://127.0.0.1:9000"),
        ])]))
        .is_ok()
    );
}

#[test]
fn url_credentials_are_refused_without_echoing_the_password() {
    let problems = row_problems(&[
        (
            "server_url",
            "https://admin:PlantedUrlPassw0rd@jira.acme.com",
        ),
        (
            "cloud_url",
            "https://me:PlantedUrlPassw0rd@acme.atlassian.net",
        ),
    ]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    for problem in &problems {
        assert!(problem.contains("credentials"), "{problem}");
        assert!(!problem.contains("PlantedUrlPassw0rd"), "{problem}");
    }
}

#[test]
fn duplicate_site_is_reported_on_the_later_line() {
    let problems = problems(&inventory(&[
        row(&[]),
        row(&[
            ("server_id", "OTHER"),
            ("server_url", "https://other.acme.com"),
        ]),
    ]));
    assert_eq!(
        problems,
        [
            "line 3, column site: duplicate site `acme-jira`: line 2 has it already; site names are unique"
        ]
    );
}

#[test]
fn duplicate_scope_compares_keys_as_a_set() {
    let problems = problems(&inventory(&[
        row(&[("keys", "ABC;DEF")]),
        row(&[("site", "b"), ("keys", " DEF ; ABC ;")]),
        row(&[("site", "c"), ("keys", "ABC")]),
        row(&[("site", "d"), ("keys", "")]),
        row(&[("site", "e"), ("keys", ";")]),
        row(&[
            ("site", "f"),
            ("keys", "ABC"),
            ("cloud_url", "https://acme-2.atlassian.net"),
        ]),
        row(&[
            ("site", "g"),
            ("product", "confluence"),
            ("server_id", "WIKI"),
            ("server_url", "https://wiki.acme.com"),
            ("keys", "docs;Team"),
        ]),
        row(&[
            ("site", "h"),
            ("product", "confluence"),
            ("server_id", "WIKI"),
            ("server_url", "https://wiki.acme.com"),
            ("keys", "TEAM;DOCS"),
        ]),
    ]));
    assert_eq!(
        problems,
        [
            "line 3, column keys: same server_id, cloud_url and keys as line 2: that scope would be migrated twice",
            "line 6, column keys: same server_id, cloud_url and keys (all) as line 5: that scope would be migrated twice",
            "line 9, column keys: same server_id, cloud_url and keys as line 8: that scope would be migrated twice",
        ]
    );
}

#[test]
fn one_server_has_one_server_id_and_one_product() {
    let problems = problems(&inventory(&[
        row(&[]),
        row(&[("site", "b"), ("server_id", "ANOTHER-ID"), ("keys", "XYZ")]),
        row(&[
            ("site", "c"),
            ("server_url", "https://jira2.acme.com"),
            ("keys", "XYZ"),
        ]),
        row(&[("site", "d"), ("product", "confluence"), ("keys", "DOCS")]),
    ]));
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with(
        "line 3, column server_id: line 2 has the same server_url with another server_id"
    ));
    assert!(problems[1].starts_with(
        "line 4, column server_url: line 2 has the same server_id with another server_url"
    ));
    assert!(
        problems[2]
            .starts_with("line 5, column product: line 2 has the same server_id as a jira server")
    );
}

#[test]
fn every_empty_required_field_is_named() {
    let problems = row_problems(&[
        ("site", ""),
        ("product", ""),
        ("server_id", ""),
        ("server_auth", ""),
        ("cloud_user", ""),
        ("cloud_token", ""),
    ]);
    let columns: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "line 2, column site",
            "line 2, column product",
            "line 2, column server_id",
            "line 2, column server_auth",
            "line 2, column cloud_user",
            "line 2, column cloud_token",
        ]
    );
    assert!(problems.iter().all(|p| p.contains("is required but empty")));
}

#[test]
fn header_problems_are_on_line_one_and_rows_are_still_checked() {
    let text = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_tokn,site\n\
                a,jria,https://j.a.com,S1,env:P,https://a.atlassian.net,m@a.com,env:T,x\n";
    assert_eq!(
        problems(text),
        [
            "line 1, column cloud_tokn: unknown column `cloud_tokn`; did you mean `cloud_token`?",
            "line 1, column site: duplicate column `site` (fields 1 and 9); keep one",
            "line 1, column cloud_token: missing required column `cloud_token`",
            "line 2, column product: unknown product `jria`: expected `jira` or `confluence` (did you mean `jira`?)",
        ]
    );
}

#[test]
fn bad_site_names() {
    assert_one(
        &row_problems(&[("site", "ACME Jira")]),
        "line 2, column site: `ACME Jira` is not a valid site name",
    );
    assert_one(&row_problems(&[("site", "-acme")]), "line 2, column site:");
}

#[test]
fn bad_keys_per_product() {
    assert_one(
        &row_problems(&[("keys", "ABC;abc-1")]),
        "line 2, column keys: `abc-1` is not a Jira project key",
    );
    assert_one(
        &row_problems(&[("keys", "ABC;ABC")]),
        "line 2, column keys: key `ABC` is listed twice",
    );
    assert_one(
        &row_problems(&[("product", "confluence"), ("keys", "DOCS;MY-SPACE")]),
        "line 2, column keys: `MY-SPACE` is not a Confluence space key",
    );
    // A Confluence space key may be lower case; a Jira project key may not.
    assert!(
        parse(&inventory(&[row(&[
            ("product", "confluence"),
            ("keys", "docs")
        ])]))
        .is_ok()
    );
    // With an unknown product only the product is reported, not every key.
    assert_one(
        &row_problems(&[("product", "bitbucket"), ("keys", "whatever")]),
        "line 2, column product:",
    );
}

#[test]
fn users_apps_and_global_entities() {
    assert_one(
        &row_problems(&[("users", "some")]),
        "line 2, column users: `some` is not a users scope",
    );
    assert_one(
        &row_problems(&[("apps", "com.a.b;com a")]),
        "line 2, column apps: `com a`: an item cannot contain spaces",
    );
    assert_one(
        &row_problems(&[("global_entities", "GLOBAL_PAGE_TEMPLATES")]),
        "line 2, column global_entities: `global_entities` is for Confluence rows only",
    );
    assert_one(
        &row_problems(&[
            ("product", "confluence"),
            ("keys", ""),
            ("global_entities", "page templates"),
        ]),
        "line 2, column global_entities:",
    );
}

#[test]
fn cloud_user_and_server_id() {
    assert_one(
        &row_problems(&[("cloud_user", "admin")]),
        "line 2, column cloud_user: must be the email address",
    );
    assert_one(
        &row_problems(&[("server_id", "BXXX XXXX")]),
        "line 2, column server_id: a Server ID has no spaces",
    );
}

#[test]
fn literal_secrets_are_errors_and_never_echoed() {
    let problems = row_problems(&[
        ("server_auth", "PlantedLiteralPat0123456789"),
        ("cloud_token", "ATATT3xFfGF0PlantedCloudToken"),
    ]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("line 2, column server_auth: a literal secret is not allowed"));
    assert!(problems[1].starts_with("line 2, column cloud_token: a literal secret is not allowed"));
    let all = problems.join("\n");
    assert!(
        !all.contains("PlantedLiteralPat") && !all.contains("PlantedCloudToken"),
        "{all}"
    );

    let problems = row_problems(&[("server_auth", "basic:migrator:PlantedPassword!")]);
    assert_one(
        &problems,
        "line 2, column server_auth: password: a literal secret",
    );
    assert!(!problems[0].contains("PlantedPassword"));
}

#[test]
fn a_token_in_the_email_column_is_not_echoed() {
    let problems = row_problems(&[
        ("cloud_user", "ATATT3xFfGF0SwappedToken"),
        ("cloud_token", "admin@acme.com"),
    ]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(!problems.join("\n").contains("SwappedToken"));
}

#[test]
fn a_row_with_the_wrong_number_of_fields_is_one_problem_on_its_line() {
    let text = format!(
        "{}{}\n{}\n",
        inventory(&[row(&[])]),
        "b,jira,https://j.b.com,S2,PlantedLiteral,https://b.atlassian.net",
        row(&[("site", "c"), ("keys", "CCC")])
    );
    assert_eq!(
        problems(&text),
        [
            "line 3: this row has 6 fields but the header has 14 (a value containing a comma must be in double quotes)"
        ]
    );
}

#[test]
fn empty_inventories_are_errors() {
    assert_eq!(
        problems(""),
        [
            "line 1: the inventory is empty: it needs a header row (site,product,server_url,…) and one row per site"
        ]
    );
    assert_eq!(problems("\n\n"), problems(""));
    assert_eq!(
        problems(&format!("{HEADER}\n")),
        ["line 1: the inventory has a header but no sites: add one row per site"]
    );
    // Spreadsheet blank rows (`,,,`) are not sites either.
    assert_eq!(
        problems(&format!("{HEADER}\n,,,,,,,,,,,,,\n")),
        ["line 1: the inventory has a header but no sites: add one row per site"]
    );
}

#[test]
fn a_data_row_in_place_of_the_header_is_one_problem() {
    let text = format!(
        "{}\n{}\n",
        row(&[("cloud_token", "ATATT3xPlanted")]),
        row(&[])
    );
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("line 1: the first row is not a header"));
    assert!(!problems[0].contains("ATATT3xPlanted"));
}

// What a parsed row sends as its job definition.

fn site_with_scope(scope_json: &str) -> Site {
    let text = format!(
        "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,scope_json\n\
         a,jira,https://j.acme.com,S1,env:P,https://a.atlassian.net,u@a.co,env:T,{}\n",
        if scope_json.is_empty() {
            "ABC,".to_owned()
        } else {
            format!(",\"{}\"", scope_json.replace('"', "\"\""))
        }
    );
    parse(&text).unwrap().remove(0)
}

#[test]
fn a_scope_given_as_json_is_sent_exactly_as_written() {
    let raw = r#"{"projects":{"includedKeys":["ABC"],"includedData":"ALL"},"usersAndGroups":{"mode":"REFERENCED"}}"#;
    let sent = serde_json::to_value(site_with_scope(raw).job_definition()).unwrap();
    assert_eq!(
        sent["scope"],
        serde_json::from_str::<serde_json::Value>(raw).unwrap(),
        "case and unknown values kept"
    );
    assert_eq!(sent["flow"], "jira-onpremises-to-cloud");
    let built = serde_json::to_value(site_with_scope("").job_definition()).unwrap();
    assert_eq!(
        built["scope"],
        serde_json::json!({
            "projects": {"includedKeys": ["ABC"], "includedData": "all"},
            "usersAndGroups": {"mode": "ALL"}
        })
    );
    assert_ne!(
        definition_hash(&site_with_scope(raw).job_definition()),
        definition_hash(&site_with_scope("").job_definition()),
        "a changed scope is a new job"
    );
}
