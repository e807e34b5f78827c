//! Property tests of `parse`: arbitrary bytes and CSV-ish text never panic and every problem
//! names a line of the file; arbitrary valid rows round-trip into the same `Site`s.

use proptest::prelude::*;

use super::tests::HEADER;
use super::*;
use crate::inventory::secret::SecretRef;
use crate::inventory::site::{Product, ServerAuth, UsersScope};

/// Every line a problem names is a line of the text (1 for an empty text).
fn assert_lines_in_range(text: &str, problems: &[Problem]) {
    let last_line = text.matches('\n').count() + 1;
    for problem in problems {
        assert!(
            (1..=last_line).contains(&problem.line),
            "line {} outside 1..={last_line}: {problem}",
            problem.line
        );
    }
}

fn csvish_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(",".to_owned()),
        Just("\"".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("#".to_owned()),
        Just(" ".to_owned()),
        Just(";".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("jira".to_owned()),
        Just("confluence".to_owned()),
        Just("env:X".to_owned()),
        Just("basic:u:".to_owned()),
        Just("https://a.atlassian.net".to_owned()),
        Just("http://10.0.0.1".to_owned()),
        Just("a@b.co".to_owned()),
        Just("ABC".to_owned()),
        Just("site".to_owned()),
        Just(HEADER.to_owned()),
        "[a-zA-Z0-9_.:/@~-]{0,12}",
        any::<char>().prop_map(String::from),
    ];
    (any::<bool>(), proptest::collection::vec(token, 0..120)).prop_map(|(with_header, tokens)| {
        let body = tokens.concat();
        if with_header {
            format!("{HEADER}\n{body}")
        } else {
            body
        }
    })
}

/// One valid row's values, from which both the CSV cells and the expected `Site` are built.
#[derive(Debug, Clone)]
struct RowSpec {
    product: Product,
    server: (bool, String),
    auth: ServerAuth,
    keys: Vec<String>,
    users: Option<UsersScope>,
    apps: Vec<String>,
    global_entities: Vec<String>,
    wave: Option<String>,
    job_name: Option<String>,
}

fn secret_ref() -> impl Strategy<Value = SecretRef> {
    prop_oneof![
        "[A-Z_][A-Z0-9_]{0,15}".prop_map(SecretRef::Env),
        "(/[a-z0-9._-]{1,8}){1,3}".prop_map(|path| SecretRef::File(path.into())),
    ]
}

fn row_spec() -> impl Strategy<Value = RowSpec> {
    let auth = prop_oneof![
        secret_ref().prop_map(ServerAuth::Bearer),
        ("[a-z][a-z0-9._@-]{0,10}", secret_ref())
            .prop_map(|(username, password)| ServerAuth::Basic { username, password }),
    ];
    let label = proptest::option::of("[A-Za-z0-9][A-Za-z0-9 ,\"'._-]{0,15}[A-Za-z0-9]");
    (
        any::<bool>(),
        (any::<bool>(), "(/[a-z]{1,6}){0,2}"),
        auth,
        proptest::collection::vec("[A-Z][A-Z0-9_]{1,6}", 0..4),
        proptest::collection::vec("[A-Za-z0-9]{1,6}|~[a-z.@]{1,8}", 0..4),
        proptest::option::of(prop_oneof![Just(UsersScope::All), Just(UsersScope::None)]),
        proptest::collection::vec("[a-z]{1,5}(\\.[a-z0-9-]{1,6}){0,3}", 0..3),
        proptest::collection::vec("[A-Z]{1,6}(_[A-Z0-9]{1,6}){0,3}", 0..3),
        label.clone(),
        label,
    )
        .prop_map(
            |(jira, server, auth, jira_keys, space_keys, users, apps, entities, wave, job_name)| {
                let dedup = |items: Vec<String>| {
                    let mut seen = std::collections::HashSet::new();
                    items
                        .into_iter()
                        .filter(|item| seen.insert(item.to_uppercase()))
                        .collect::<Vec<_>>()
                };
                let product = if jira {
                    Product::Jira
                } else {
                    Product::Confluence
                };
                RowSpec {
                    product,
                    server,
                    auth,
                    keys: dedup(if jira { jira_keys } else { space_keys }),
                    users,
                    apps: dedup(apps),
                    global_entities: if jira { Vec::new() } else { dedup(entities) },
                    wave,
                    job_name,
                }
            },
        )
}

fn auth_cell(auth: &ServerAuth) -> String {
    match auth {
        ServerAuth::Bearer(reference) => reference.to_string(),
        ServerAuth::Basic { username, password } => format!("basic:{username}:{password}"),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_lines_are_in_range(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut encoding = Problems::default();
        let text = decode(&bytes, &mut encoding);
        let encoding = encoding.into_sorted();
        assert_lines_in_range(&text, &encoding);
        if let Err(problems) = parse(&text) {
            prop_assert!(!problems.is_empty());
            assert_lines_in_range(&text, &problems);
        }
    }

    #[test]
    fn csvish_text_never_panics_and_lines_are_in_range(text in csvish_text()) {
        match parse(&text) {
            Ok(sites) => {
                for site in &sites {
                    prop_assert!(site.line >= 2);
                }
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                assert_lines_in_range(&text, &problems);
                let mut sorted = problems.clone();
                sorted.sort_by_key(|problem| problem.line);
                prop_assert_eq!(sorted, problems);
            }
        }
    }

    #[test]
    fn valid_rows_round_trip(specs in proptest::collection::vec(row_spec(), 1..12)) {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(HEADER.split(',')).unwrap();
        for (i, spec) in specs.iter().enumerate() {
            let (http_loopback, path) = &spec.server;
            let server_url = if *http_loopback {
                format!("http://127.0.0.1:{}{path}/", 8000 + i)
            } else {
                format!("https://srv{i}.example.com{path}")
            };
            writer.write_record([
                format!("site-{i}"),
                spec.product.as_str().to_owned(),
                server_url,
                format!("SRV-{i}"),
                auth_cell(&spec.auth),
                format!("https://cust{}.atlassian.net/", i % 3),
                format!("admin{}@example.com", i % 2),
                format!("env:TOKEN_{}", i % 2),
                spec.keys.join(";"),
                match spec.users {
                    None => String::new(),
                    Some(UsersScope::All) => "all".to_owned(),
                    Some(UsersScope::None) => "none".to_owned(),
                },
                spec.apps.join(" ; "),
                spec.global_entities.join(";"),
                spec.wave.clone().unwrap_or_default(),
                spec.job_name.clone().unwrap_or_default(),
            ]).unwrap();
        }
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let sites = match parse(&text) {
            Ok(sites) => sites,
            Err(problems) => return Err(TestCaseError::fail(format!("{problems:#?}\n{text}"))),
        };
        prop_assert_eq!(sites.len(), specs.len());
        for (i, (site, spec)) in sites.iter().zip(&specs).enumerate() {
            prop_assert_eq!(site.line, i + 2);
            prop_assert_eq!(&site.name, &format!("site-{i}"));
            prop_assert_eq!(site.product, spec.product);
            prop_assert!(!site.server_url_str().ends_with('/'));
            prop_assert_eq!(&site.server_id, &format!("SRV-{i}"));
            prop_assert_eq!(&site.server_auth, &spec.auth);
            prop_assert_eq!(site.cloud_url_str(), format!("https://cust{}.atlassian.net", i % 3));
            prop_assert_eq!(&site.cloud_user, &format!("admin{}@example.com", i % 2));
            prop_assert_eq!(&site.cloud_token, &SecretRef::Env(format!("TOKEN_{}", i % 2)));
            prop_assert_eq!(&site.keys, &spec.keys);
            prop_assert_eq!(site.users, spec.users.unwrap_or(UsersScope::All));
            prop_assert_eq!(&site.apps, &spec.apps);
            prop_assert_eq!(&site.global_entities, &spec.global_entities);
            prop_assert_eq!(&site.wave, &spec.wave);
            prop_assert_eq!(&site.job_name, &spec.job_name);
        }
    }
}
