//! The inventory file as a whole: encodings and line endings, how lines are counted, the
//! order problems come in, reading from disk, a large file, and the delimiter.

use super::*;

#[test]
fn bom_and_crlf_are_accepted() {
    let text = format!(
        "\u{feff}{HEADER}\r\n{}\r\n{}\r\n",
        row(&[]),
        row(&[("site", "b"), ("keys", "XYZ")])
    );
    let sites = parse(&text).unwrap();
    assert_eq!(sites.len(), 2);
    assert_eq!(sites[0].name, "acme-jira");
    assert_eq!(sites[1].line, 3);
    assert_eq!(sites[1].wave.as_deref(), Some("pilot"));
    let bad = text.replace("XYZ", "xyz");
    assert_one(&problems(&bad), "line 3, column keys:");
}

#[test]
fn lines_count_quoted_newlines_blank_lines_and_comments() {
    let text = format!(
        "# ACME fleet, maintained by the migration team\n\
         \n\
         {HEADER}\n\
         {}\n\
         \n\
         # wave 2 waits for sign-off\n\
         \r\n\
         {}\n\
         {}\n",
        row(&[("name", "multi\nline\nname")]),
        row(&[("site", "b"), ("keys", "XYZ"), ("product", "jra")]),
        row(&[("site", "c"), ("keys", "QQQ"), ("users", "maybe")]),
    );
    assert_eq!(
        problems(&text),
        [
            "line 4, column name: must not contain line breaks, tabs or other control characters",
            "line 10, column product: unknown product `jra`: expected `jira` or `confluence` (did you mean `jira`?)",
            "line 11, column users: `maybe` is not a users scope: write `all` (the default) or `none`",
        ]
    );
}

#[test]
fn header_line_is_where_the_header_is() {
    let text = format!("# comment\n{HEADER}\n");
    assert_eq!(
        problems(&text),
        ["line 2: the inventory has a header but no sites: add one row per site"]
    );
}

#[test]
fn problems_are_sorted_by_line_then_column_order() {
    let text = inventory(&[
        row(&[("wave", "ok"), ("cloud_user", "x"), ("product", "p")]),
        row(&[("site", "B!"), ("keys", "ABC")]),
    ]);
    let problems = problems(&text);
    let located: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        located,
        [
            "line 2, column product",
            "line 2, column cloud_user",
            "line 3, column site"
        ]
    );
}

#[test]
fn every_problem_of_every_row_is_reported_at_once() {
    let rows: Vec<String> = (0..50)
        .map(|i| row(&[("site", &format!("s{i}")), ("keys", "bad"), ("users", "x")]))
        .collect();
    assert_eq!(problems(&inventory(&rows)).len(), 100);
}

#[test]
fn invalid_utf8_is_reported_per_line_and_the_rest_still_checked() {
    let mut bytes = inventory(&[row(&[]), row(&[("site", "b"), ("keys", "XYZ")])]).into_bytes();
    let at = bytes.len() - 3;
    bytes.insert(at, 0xFF);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.csv");
    std::fs::write(&path, &bytes).unwrap();
    let Err(InventoryError::Invalid { problems, .. }) = load(&path) else {
        panic!("expected problems");
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown[0],
        "line 3: this line is not valid UTF-8; save the file as UTF-8 (in Excel: CSV UTF-8)"
    );

    std::fs::write(&path, [0xFF, 0xFE, b's', 0]).unwrap();
    let Err(InventoryError::Invalid { problems, .. }) = load(&path) else {
        panic!("expected problems");
    };
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("UTF-16"));
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.csv");
    std::fs::write(&path, inventory(&[row(&[])])).unwrap();
    assert_eq!(load(&path).unwrap().len(), 1);
    let missing = dir.path().join("absent.csv");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, InventoryError::Read { .. }));
    assert!(
        err.to_string().starts_with("cannot read inventory "),
        "{err}"
    );
}

#[test]
fn a_large_inventory_validates_linearly() {
    // 20,000 rows in debug builds, 100,000 in release; tests/it/inventory.rs runs 100,000
    // through the binary.
    let rows = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    let text = generated_inventory(rows);
    let sites = parse(&text).unwrap();
    assert_eq!(sites.len(), rows);
    assert_eq!(sites[rows - 1].line, rows + 1);
}

/// A valid inventory of `rows` sites over `rows / 4` servers and 50 cloud users.
fn generated_inventory(rows: usize) -> String {
    let mut text = String::with_capacity(rows * 220);
    text.push_str(HEADER);
    text.push('\n');
    for i in 0..rows {
        let server = i / 4;
        let (product, keys) = if server % 2 == 0 {
            ("jira", format!("P{i}X;Q{i}"))
        } else {
            ("confluence", format!("S{i};~user{i}"))
        };
        text.push_str(&format!(
            "site-{i},{product},https://srv{server}.example.com,SRV-{server},env:PAT_{server},\
             https://cust{}.atlassian.net,admin{}@example.com,env:TOKEN_{},{keys},all,,,wave-{},\n",
            i % 700,
            i % 50,
            i % 50,
            i % 7
        ));
    }
    text
}

// The delimiter a file is read with.

/// The same two-site fleet as a European Excel and a tab-delimited export save it.
#[test]
fn semicolon_and_tab_files_parse_like_the_comma_file() {
    let comma = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys\n\
        a,jira,https://j.a.com,S1,env:PAT,https://a.atlassian.net,m@a.com,env:T,ABC;DEF\n\
        b,confluence,https://w.a.com,S2,env:PAT,https://b.atlassian.net,m@a.com,env:T,\n";
    let semicolon = "site;product;server_url;server_id;server_auth;cloud_url;cloud_user;cloud_token;keys\n\
        a;jira;https://j.a.com;S1;env:PAT;https://a.atlassian.net;m@a.com;env:T;ABC,DEF\n\
        b;confluence;https://w.a.com;S2;env:PAT;https://b.atlassian.net;m@a.com;env:T;\n";
    let quoted = semicolon.replace("ABC,DEF", "\"ABC;DEF\"");
    let tab = comma.replace(',', "\t");
    let (found, expected) = parse_delimited(comma);
    assert_eq!(found, Delimiter::Comma);
    let expected = expected.unwrap();
    assert_eq!(expected[0].keys, ["ABC", "DEF"]);
    for (text, delimiter) in [
        (semicolon, Delimiter::Semicolon),
        (quoted.as_str(), Delimiter::Semicolon),
        (tab.as_str(), Delimiter::Tab),
    ] {
        let (found, sites) = parse_delimited(text);
        assert_eq!(found, delimiter, "{text}");
        assert_eq!(sites.unwrap(), expected, "{text}");
    }
}

#[test]
fn a_short_row_names_the_files_delimiter() {
    let text = "site;product;server_url;server_id;server_auth;cloud_url;cloud_user;cloud_token\n\
        a;jira;https://j.a.com;S1;env:PAT;https://a.atlassian.net;m@a.com\n";
    let problems = parse(text).unwrap_err();
    assert!(
        problems[0]
            .message
            .ends_with("(a value containing a semicolon must be in double quotes)"),
        "{problems:?}"
    );
}
