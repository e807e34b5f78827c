//! `cmafleet validate` through the real binary: the example inventory, a fixture holding every
//! kind of problem, `--secrets`, encodings, and a 100,000-row inventory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HEADER: &str = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users,apps,global_entities,wave,name";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/inventory").join(name)
}

/// Runs `cmafleet validate` with a clean slate of `CMAFLEET_*` variables plus `env`.
fn validate(path: &Path, secrets: bool, env: &[(&str, &str)]) -> (u8, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmafleet"));
    command.current_dir(repo()).arg("validate").arg(path);
    if secrets {
        command.arg("--secrets");
    }
    for (name, _) in std::env::vars() {
        if name.starts_with("CMAFLEET_") || name.starts_with("IT_INV_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run cmafleet");
    let code = u8::try_from(status.code().expect("exited with a code")).unwrap();
    (
        code,
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// `stderr` without its `warning:` lines.
fn without_warnings(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.starts_with("warning:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(unix)]
fn write_secret(path: &Path, value: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_example_inventory_validates_with_a_fleet_summary() {
    let (code, stdout, stderr) = validate(Path::new("inventories/example.csv"), false, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Nothing but warnings, each naming its rows: the wire forms no public example shows.
    assert!(
        stderr.lines().count() >= 1
            && stderr.lines().all(|line| line.starts_with(
                "warning: inventories/example.csv: wire form inferred (no public example shows it)"
            ) && line.contains("scope_json")),
        "{stderr}"
    );
    for expected in [
        "inventories/example.csv: 13 sites, no problems",
        "products:     jira 8, confluence 5",
        "waves:        rehearsal 1, pilot 1, wave-1 4, wave-2 5, wave-3 2 (in inventory order)",
        "cloud sites:  7",
        "cloud users:  5",
        "servers with several rows: 2",
        "A7KD-PQ2M-0XLT-9RWB  https://jira.globex.de/jira (2 rows)",
        "globex-jira-emea → https://globex-emea.atlassian.net",
        "globex-jira-amer → https://globex-amer.atlassian.net",
        "add --secrets to check them",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
}

#[test]
fn every_problem_is_reported_with_its_line_and_column_and_secrets_are_not_echoed() {
    let path = Path::new("tests/fixtures/inventory/every-problem.csv");
    let (code, stdout, stderr) = validate(path, false, &[]);
    assert_eq!(code, 65, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    let expected: &[(usize, Option<&str>, &str)] = &[
        (
            1,
            Some("clodu_user"),
            "unknown column `clodu_user`; did you mean `cloud_user`?",
        ),
        (1, Some("wave"), "duplicate column `wave`"),
        (3, Some("product"), "unknown product `jria`"),
        (4, Some("server_url"), "`server_url` is required but empty"),
        (5, Some("cloud_url"), "not a URL"),
        (7, Some("server_url"), "must not contain credentials"),
        (
            8,
            Some("site"),
            "duplicate site `acme-jira`: line 2 has it already",
        ),
        (
            9,
            Some("keys"),
            "same server_id, cloud_url and keys as line 2",
        ),
        (10, Some("cloud_user"), "`cloud_user` is required but empty"),
        (11, Some("site"), "`Acme_Wiki` is not a valid site name"),
        (12, Some("keys"), "`abc-1` is not a Jira project key"),
        (13, Some("keys"), "`MY-SPACE` is not a Confluence space key"),
        (14, Some("keys"), "key `XYZ` is listed twice"),
        (15, Some("users"), "`some` is not a users scope"),
        (16, Some("apps"), "separate items with `;`, not `,`"),
        (17, Some("global_entities"), "is for Confluence rows only"),
        (18, Some("global_entities"), "`page templates`"),
        (
            19,
            Some("cloud_user"),
            "must be the email address of a cloud site admin",
        ),
        (20, Some("server_id"), "a Server ID has no spaces"),
        (
            21,
            Some("server_auth"),
            "a literal secret is not allowed here",
        ),
        (
            22,
            Some("cloud_token"),
            "a literal secret is not allowed here",
        ),
        (
            23,
            Some("server_auth"),
            "password: a literal secret is not allowed here",
        ),
        (24, None, "this row has 6 fields but the header has 16"),
        (25, Some("cloud_url"), "root URL without a path"),
        (
            26,
            Some("cloud_url"),
            "plain http:// is refused for `acme.atlassian.net`",
        ),
        (27, Some("name"), "must not contain line breaks"),
        (29, Some("product"), "unknown product `bamboo`"),
        (
            30,
            Some("server_id"),
            "line 2 has the same server_url with another server_id",
        ),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    for ((line, column, message), printed) in expected.iter().zip(&lines) {
        let location = match column {
            Some(column) => format!("{}:{line}: column {column}: ", path.display()),
            None => format!("{}:{line}: ", path.display()),
        };
        assert!(
            printed.starts_with(&location) && printed.contains(message),
            "expected {location}…{message}…, got {printed}"
        );
    }
    assert_eq!(
        lines.last().copied(),
        Some("28 problems in tests/fixtures/inventory/every-problem.csv")
    );
    for planted in [
        "UrlPassw0rdPlanted",
        "PlantedLiteralServerPat",
        "ATATT3xFfGF0PlantedCloudTokenValue",
        "PlantedBasicPassw0rd",
    ] {
        assert!(!stderr.contains(planted), "{planted} echoed:\n{stderr}");
    }
}

#[test]
fn a_missing_column_a_header_only_file_and_a_missing_file_are_data_errors() {
    let (code, _, stderr) = validate(&fixture("missing-column.csv"), false, &[]);
    assert_eq!(code, 65, "{stderr}");
    assert!(
        stderr.contains(":1: column server_auth: missing required column `server_auth`"),
        "{stderr}"
    );
    let (code, _, stderr) = validate(&fixture("header-only.csv"), false, &[]);
    assert_eq!(code, 65, "{stderr}");
    assert!(
        stderr.contains(":1: the inventory has a header but no sites"),
        "{stderr}"
    );
    let (code, _, stderr) = validate(&fixture("absent.csv"), false, &[]);
    assert_eq!(code, 65, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read inventory "),
        "{stderr}"
    );
    assert!(stderr.contains("absent.csv"), "{stderr}");
}

#[test]
fn bom_and_crlf_line_ends_are_accepted() {
    let example = std::fs::read_to_string(repo().join("inventories/example.csv")).unwrap();
    let converted = format!("\u{feff}{}", example.replace('\n', "\r\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("excel.csv");
    std::fs::write(&path, converted).unwrap();
    let (code, stdout, stderr) = validate(&path, false, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, original, _) = validate(Path::new("inventories/example.csv"), false, &[]);
    assert_eq!(
        stdout.replace(&path.display().to_string(), "FILE"),
        original.replace("inventories/example.csv", "FILE")
    );
}

#[cfg(unix)]
#[test]
fn secrets_resolve_or_each_failing_reference_is_named_with_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("cloud.token");
    write_secret(&token_file, "file-secret-V4lue\n", 0o600);
    let text = format!(
        "{HEADER}\n\
         a-jira,jira,https://jira.a.com,AAAA,env:IT_INV_A_PAT,https://a.atlassian.net,m@a.com,file:{token},,,,,,\n\
         a-wiki,confluence,https://wiki.a.com,WWWW,basic:migrator:env:IT_INV_WIKI_PW,https://a.atlassian.net,m@a.com,file:{token},,,,,,\n\
         b-jira,jira,https://jira.b.com,BBBB,env:IT_INV_A_PAT,https://b.atlassian.net,m@b.com,env:IT_INV_B_TOKEN,,,,,,\n",
        token = token_file.display()
    );
    let inventory = dir.path().join("fleet.csv");
    std::fs::write(&inventory, text).unwrap();
    let values = [
        ("IT_INV_A_PAT", "env-secret-A-V4lue"),
        ("IT_INV_WIKI_PW", "env-secret-W-V4lue"),
        ("IT_INV_B_TOKEN", "env-secret-B-V4lue"),
    ];

    let (code, stdout, stderr) = validate(&inventory, true, &values);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("all 4 references resolve"), "{stdout}");

    let (code, stdout, stderr) = validate(&inventory, true, &values[..2]);
    assert_eq!(code, 78, "{stdout}{stderr}");
    let shown = inventory.display().to_string();
    // The summary's first line says the verdict: never "no problems" before an exit 78.
    assert!(
        stdout.starts_with(&format!(
            "{shown}: 3 sites, 1 of 4 secret references do not resolve\n"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("no problems"), "{stdout}");
    assert!(
        stdout.contains("secrets:      1 of 4 references do not resolve"),
        "{stdout}"
    );
    assert_eq!(
        without_warnings(&stderr),
        format!(
            "{shown}: secret env:IT_INV_B_TOKEN (line 4): environment variable IT_INV_B_TOKEN is not set\n\
             1 of 4 secret references do not resolve\n"
        )
    );

    let (code, _, stderr) = validate(&inventory, true, &[]);
    assert_eq!(code, 78);
    assert!(
        stderr.contains(
            "secret env:IT_INV_A_PAT (lines 2, 4): environment variable IT_INV_A_PAT is not set"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("secret env:IT_INV_WIKI_PW (line 3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 of 4 secret references do not resolve"),
        "{stderr}"
    );

    for (_, value) in values {
        assert!(!stderr.contains(value) && !stdout.contains(value));
    }
    assert!(!stdout.contains("file-secret-V4lue") && !stderr.contains("file-secret-V4lue"));
}

/// The example fleet saved by a spreadsheet in a European locale (`;` between fields, so `,`
/// between list items) and as tab-separated text: the same fleet, its delimiter said.
#[test]
fn semicolon_and_tab_separated_inventories_are_recognised_and_said() {
    let example = std::fs::read_to_string(repo().join("inventories/example.csv")).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(example.as_bytes());
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let save = |delimiter: u8, list: &str| {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(Vec::new());
        writer.write_record(&header).unwrap();
        for record in &records {
            let cells = header.iter().zip(record).map(|(column, cell)| {
                if ["keys", "apps", "global_entities"].contains(&column) {
                    cell.replace(';', list)
                } else {
                    cell.to_owned()
                }
            });
            writer.write_record(cells).unwrap();
        }
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, original, _) = validate(Path::new("inventories/example.csv"), false, &[]);
    assert!(
        original.contains("  delimiter:    , (lists in a cell: `;`)\n"),
        "{original}"
    );
    for (name, text, said) in [
        ("excel-de.csv", save(b';', ","), "; (lists in a cell: `,`)"),
        ("export.tsv", save(b'\t', ";"), "tab (lists in a cell: `;`)"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let (code, stdout, stderr) = validate(&path, false, &[]);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}\n{text}");
        assert_eq!(
            stdout.replace(&path.display().to_string(), "FILE"),
            original
                .replace("inventories/example.csv", "FILE")
                .replace(", (lists in a cell: `;`)", said),
            "{name}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_group_readable_secret_file_is_refused_with_the_chmod_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("cloud.token");
    write_secret(&token_file, "open-secret-V4lue", 0o640);
    let text = format!(
        "{HEADER}\n\
         a-jira,jira,https://jira.a.com,AAAA,env:IT_INV_A_PAT,https://a.atlassian.net,m@a.com,file:{},,,,,,\n",
        token_file.display()
    );
    let inventory = dir.path().join("fleet.csv");
    std::fs::write(&inventory, text).unwrap();
    let (code, stdout, stderr) =
        validate(&inventory, true, &[("IT_INV_A_PAT", "env-secret-A-V4lue")]);
    assert_eq!(code, 78, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", token_file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("(line 2)"), "{stderr}");
    assert!(!stderr.contains("open-secret-V4lue"));
    // Without --secrets nothing is resolved, so the inventory itself is valid.
    let (code, _, _) = validate(&inventory, false, &[]);
    assert_eq!(code, 0);
}

/// Issue 9's scale figure through the real binary. About 6 s of CPU in a debug build (well
/// under a second in release); no time is asserted.
#[test]
fn a_100000_row_inventory_validates() {
    const ROWS: usize = 100_000;
    let mut text = String::with_capacity(ROWS * 200);
    text.push_str(HEADER);
    text.push('\n');
    for i in 0..ROWS {
        let server = i / 4;
        let (product, keys) = if server % 2 == 0 {
            ("jira", format!("P{i}X;Q{i}"))
        } else {
            ("confluence", format!("S{i};~user{i}"))
        };
        writeln!(
            text,
            "site-{i},{product},https://srv{server}.example.com,SRV-{server},env:PAT_{server},\
             https://cust{}.atlassian.net,admin{}@example.com,env:TOKEN_{},{keys},all,,,wave-{},",
            i % 700,
            i % 50,
            i % 50,
            i % 7
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    std::fs::write(&path, text).unwrap();
    let (code, stdout, stderr) = validate(&path, false, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("100000 sites, no problems"), "{stdout}");
    assert!(stdout.contains("cloud sites:  700"), "{stdout}");
    assert!(
        stdout.contains("servers with several rows: 25000"),
        "{stdout}"
    );
}
