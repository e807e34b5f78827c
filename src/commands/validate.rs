//! `cmafleet validate INVENTORY [--secrets] [--online]`: offline validation of an inventory, a
//! summary of the fleet it describes, with `--secrets` a check that every secret reference
//! resolves, and with `--online` every row tried live (`online`).
//!
//! Exit codes: 0 valid; 65 (`exit::DATA`) unreadable or invalid, every problem printed with its
//! line; 78 (`exit::CONFIG`) a secret reference that does not resolve. No network, and never a
//! secret value on any output.

use std::collections::HashMap;
use std::io::{self, Write};

use tokio_util::sync::CancellationToken;

use super::selection::{Selected, lines_list, resolve_credentials, select};
use crate::cli::ValidateArgs;
use crate::config::{ConnectionSettings, Selection};
use crate::exit;
use crate::inventory::{self, InventoryError, Problem, SecretError, SecretRef, Site};

/// How many entries each summary list shows before "… and N more".
const LIST_LIMIT: usize = 10;
/// How many rows of one server the summary lists.
const SERVER_ROWS_LIMIT: usize = 5;

/// `validate`, and with `--online` the live check of the selected rows (every row without
/// `--wave`/`--site`/`--shard` or the file's) after the offline checks of every row passed
/// (with `--secrets` when every row is tried); returns the exit code.
pub async fn run_all(args: &ValidateArgs, cancel: &CancellationToken) -> u8 {
    if !args.online {
        return run(args);
    }
    let settings = ConnectionSettings::resolve(&args.connection, &args.select);
    // Every row's secrets when every row is tried; else the selected rows' only (as a run
    // resolves them, below): a shard's runner may hold only its own customers' secrets.
    let every_row = settings
        .as_ref()
        .is_ok_and(|settings| settings.selection == Selection::default());
    let offline = ValidateArgs {
        secrets: args.secrets || every_row,
        ..args.clone()
    };
    // The inventory's own problems first, as without --online.
    let code = run(&offline);
    if code != exit::OK {
        return code;
    }
    let settings = match settings {
        Ok(settings) => settings,
        Err(error) => {
            crate::fatal::report(error.exit_code(), &error.to_string());
            return error.exit_code();
        }
    };
    let sites = match inventory::load(&args.inventory) {
        Ok(sites) => sites,
        Err(error) => {
            crate::fatal::report(exit::DATA, &error.to_string());
            return exit::DATA;
        }
    };
    let Selected { sites, unselected } = match select(sites, &settings.selection) {
        Ok(selected) => selected,
        Err(message) => {
            crate::fatal::report(exit::USAGE, &message);
            return exit::USAGE;
        }
    };
    let credentials = match resolve_credentials(&sites) {
        Ok(credentials) => credentials,
        Err(code) => return code,
    };
    let mut out = io::stdout().lock();
    if !unselected.is_empty() {
        // A closed stdout is noticed by the check's own lines.
        let _ = writeln!(
            out,
            "online: {} of {} row(s) selected (--wave, --site, --shard); the other {} are not tried",
            sites.len(),
            sites.len() + unselected.len(),
            unselected.len()
        );
    }
    let checked = super::online::check(
        &sites,
        credentials.cloud,
        credentials.servers,
        settings,
        cancel,
        &mut out,
    )
    .await;
    // A closed stdout (`| head`) must not change the verdict; nothing else fails here.
    checked.unwrap_or(exit::OK)
}

/// Validates offline; prints a summary or every problem; returns the exit code.
pub fn run(args: &ValidateArgs) -> u8 {
    let stdout = io::stdout();
    let stderr = io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] writing to the given streams (the summary to `out`, problems to `err`).
pub fn run_with(args: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    // A closed stdout or stderr (e.g. `| head`) must not change the verdict.
    validate(args, out, err).unwrap_or_else(|(code, _)| code)
}

type Outcome = Result<u8, (u8, io::Error)>;

fn validate(args: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let shown = args.inventory.display().to_string();
    let inventory = match inventory::load_inventory(&args.inventory) {
        Ok(inventory) => inventory,
        Err(error @ InventoryError::Read { .. }) => {
            writeln!(err, "error: {error}").map_err(|e| (exit::DATA, e))?;
            return Ok(exit::DATA);
        }
        Err(InventoryError::Invalid { problems, .. }) => {
            write_problems(&shown, &problems, err).map_err(|e| (exit::DATA, e))?;
            return Ok(exit::DATA);
        }
    };
    let sites = &inventory.sites;
    let total = distinct_references(sites).len();
    // Resolved before the summary, so that its first line never says "no problems" of an
    // inventory whose secrets then fail.
    let failures = if args.secrets {
        unresolved_secrets(sites)
    } else {
        Vec::new()
    };
    let code = if failures.is_empty() {
        exit::OK
    } else {
        exit::CONFIG
    };
    let verdict = if failures.is_empty() {
        "no problems".to_owned()
    } else {
        format!(
            "{} of {total} secret references do not resolve",
            failures.len()
        )
    };
    let mut text = summary(&shown, sites, &verdict);
    text.push_str(&format!(
        "  delimiter:    {} (lists in a cell: `{}`)\n",
        inventory.delimiter,
        inventory.delimiter.list_separator()
    ));
    out.write_all(text.as_bytes()).map_err(|e| (code, e))?;
    for notice in inventory::notices(sites) {
        writeln!(err, "warning: {shown}: {notice}").map_err(|e| (code, e))?;
    }
    if !args.secrets {
        let what = if args.online {
            // `--online` with a selection: the selected rows' secrets are resolved next.
            "those of the rows tried live are resolved next"
        } else {
            "not resolved (add --secrets to check them)"
        };
        writeln!(out, "  secrets:      {total} distinct references, {what}")
            .map_err(|e| (exit::OK, e))?;
        return Ok(exit::OK);
    }
    write_secrets(&shown, total, &failures, out, err).map_err(|e| (code, e))?;
    Ok(code)
}

/// `INVENTORY:LINE: column C: message`, one per line, then the count.
fn write_problems(shown: &str, problems: &[Problem], err: &mut dyn Write) -> io::Result<()> {
    let mut text = String::new();
    for problem in problems {
        match &problem.column {
            Some(column) => text.push_str(&format!(
                "{shown}:{}: column {column}: {}\n",
                problem.line, problem.message
            )),
            None => text.push_str(&format!("{shown}:{}: {}\n", problem.line, problem.message)),
        }
    }
    let count = problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    text.push_str(&format!("{count} {noun} in {shown}\n"));
    err.write_all(text.as_bytes())
}

/// The fleet at a glance after its first line (`INVENTORY: N sites, <verdict>`): sites per
/// product, wave, cloud site and cloud user, and the servers that appear in several rows.
pub fn summary(shown: &str, sites: &[Site], verdict: &str) -> String {
    let mut text = format!(
        "{shown}: {} {}, {verdict}\n",
        sites.len(),
        if sites.len() == 1 { "site" } else { "sites" }
    );
    let products = count_by(sites, |site| site.product.as_str().to_owned());
    text.push_str(&format!("  products:     {}\n", inline(&products)));
    let waves = count_by(sites, |site| {
        site.wave.clone().unwrap_or_else(|| "(no wave)".to_owned())
    });
    text.push_str(&format!(
        "  waves:        {} (in inventory order)\n",
        inline(&waves)
    ));

    let mut clouds = count_by(sites, Site::cloud_url_str);
    clouds.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    text.push_str(&format!("  cloud sites:  {}\n", clouds.len()));
    text.push_str(&block(&clouds));
    let mut users = count_by(sites, |site| site.cloud_user.to_lowercase());
    users.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    text.push_str(&format!(
        "  cloud users:  {} (each is one rate-limit identity)\n",
        users.len()
    ));
    text.push_str(&block(&users));

    let mut servers: Vec<(&str, Vec<&Site>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for site in sites {
        let at = *index.entry(&site.server_id).or_insert_with(|| {
            servers.push((&site.server_id, Vec::new()));
            servers.len() - 1
        });
        servers[at].1.push(site);
    }
    servers.retain(|(_, rows)| rows.len() > 1);
    text.push_str(&format!("  servers with several rows: {}\n", servers.len()));
    for (server_id, rows) in servers.iter().take(LIST_LIMIT) {
        text.push_str(&format!(
            "    {server_id}  {} ({} rows)\n",
            rows[0].server_url_str(),
            rows.len()
        ));
        for site in rows.iter().take(SERVER_ROWS_LIMIT) {
            text.push_str(&format!("      {} → {}\n", site.name, site.cloud_url_str()));
        }
        if rows.len() > SERVER_ROWS_LIMIT {
            text.push_str(&format!(
                "      … and {} more\n",
                rows.len() - SERVER_ROWS_LIMIT
            ));
        }
    }
    if servers.len() > LIST_LIMIT {
        text.push_str(&format!("    … and {} more\n", servers.len() - LIST_LIMIT));
    }
    text
}

/// Counts per key, keys in order of first appearance.
fn count_by(sites: &[Site], key: impl Fn(&Site) -> String) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for site in sites {
        let key = key(site);
        match index.get(&key) {
            Some(&at) => counts[at].1 += 1,
            None => {
                index.insert(key.clone(), counts.len());
                counts.push((key, 1));
            }
        }
    }
    counts
}

fn inline(counts: &[(String, usize)]) -> String {
    let mut parts: Vec<String> = counts
        .iter()
        .take(LIST_LIMIT)
        .map(|(key, count)| format!("{key} {count}"))
        .collect();
    if counts.len() > LIST_LIMIT {
        parts.push(format!("… and {} more", counts.len() - LIST_LIMIT));
    }
    parts.join(", ")
}

fn block(counts: &[(String, usize)]) -> String {
    let mut text = String::new();
    for (key, count) in counts.iter().take(LIST_LIMIT) {
        text.push_str(&format!("    {count:>6}  {key}\n"));
    }
    if counts.len() > LIST_LIMIT {
        text.push_str(&format!("    … and {} more\n", counts.len() - LIST_LIMIT));
    }
    text
}

/// Every distinct secret reference of the inventory, in order of first use, with the lines
/// that use it.
pub fn distinct_references(sites: &[Site]) -> Vec<(SecretRef, Vec<usize>)> {
    let mut references: Vec<(SecretRef, Vec<usize>)> = Vec::new();
    let mut index: HashMap<SecretRef, usize> = HashMap::new();
    for site in sites {
        for reference in [site.server_auth.secret_ref(), &site.cloud_token] {
            let at = *index.entry(reference.clone()).or_insert_with(|| {
                references.push((reference.clone(), Vec::new()));
                references.len() - 1
            });
            let lines = &mut references[at].1;
            if lines.last() != Some(&site.line) {
                lines.push(site.line);
            }
        }
    }
    references
}

/// Resolves each distinct reference once; the ones that fail, with their lines and why.
/// Resolved values are dropped at once and never shown.
pub fn unresolved_secrets(sites: &[Site]) -> Vec<(SecretRef, Vec<usize>, SecretError)> {
    distinct_references(sites)
        .into_iter()
        .filter_map(|(reference, lines)| match reference.resolve() {
            Ok(_) => None,
            Err(error) => Some((reference, lines, error)),
        })
        .collect()
}

fn write_secrets(
    shown: &str,
    total: usize,
    failures: &[(SecretRef, Vec<usize>, SecretError)],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    if failures.is_empty() {
        return writeln!(
            out,
            "  secrets:      all {total} references resolve (values not shown)"
        );
    }
    writeln!(
        out,
        "  secrets:      {} of {total} references do not resolve (listed on stderr)",
        failures.len()
    )?;
    let mut text = String::new();
    for (reference, lines, error) in failures {
        text.push_str(&format!(
            "{shown}: secret {reference} ({}): {error}\n",
            lines_list(lines)
        ));
    }
    text.push_str(&format!(
        "{} of {total} secret references do not resolve\n",
        failures.len()
    ));
    err.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const HEADER: &str = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,wave\n";

    fn run_on(text: &str, secrets: bool) -> (u8, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.csv");
        std::fs::write(&path, text).unwrap();
        let args = ValidateArgs {
            inventory: path.clone(),
            secrets,
            online: false,
            connection: Default::default(),
            select: Default::default(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&args, &mut out, &mut err);
        let shown = path.display().to_string();
        let out = String::from_utf8(out).unwrap().replace(&shown, "fleet.csv");
        let err = String::from_utf8(err).unwrap().replace(&shown, "fleet.csv");
        (code, out, err)
    }

    #[test]
    fn a_valid_inventory_prints_the_fleet_summary() {
        let text = format!(
            "{HEADER}\
             a-jira,jira,https://jira.a.com,AAAA,env:A_PAT,https://a.atlassian.net,m@a.com,env:A_TOKEN,ABC,pilot\n\
             a-hr,jira,https://jira.a.com,AAAA,env:A_PAT,https://a-hr.atlassian.net,m@a.com,env:A_TOKEN,HR,wave-1\n\
             b-wiki,confluence,https://wiki.b.com,BBBB,env:B_PAT,https://b.atlassian.net,M@B.com,env:B_TOKEN,,wave-1\n"
        );
        let (code, out, err) = run_on(&text, false);
        assert_eq!(code, exit::OK, "{err}");
        // Only warnings, each once with its lines: the wire forms no public example shows.
        let warnings: Vec<&str> = err.lines().collect();
        assert_eq!(warnings.len(), 3, "{err}");
        assert!(
            warnings
                .iter()
                .all(|line| line.starts_with("warning: fleet.csv: wire form inferred"))
        );
        assert!(
            warnings[0].contains("`usersAndGroups` on a Jira job")
                && warnings[0].ends_with("(lines 2, 3)")
        );
        assert!(
            warnings[1].contains("without `includedKeys`") && warnings[1].ends_with("(line 4)")
        );
        assert_eq!(
            out,
            "fleet.csv: 3 sites, no problems\n\
             \x20 products:     jira 2, confluence 1\n\
             \x20 waves:        pilot 1, wave-1 2 (in inventory order)\n\
             \x20 cloud sites:  3\n\
             \x20        1  https://a.atlassian.net\n\
             \x20        1  https://a-hr.atlassian.net\n\
             \x20        1  https://b.atlassian.net\n\
             \x20 cloud users:  2 (each is one rate-limit identity)\n\
             \x20        2  m@a.com\n\
             \x20        1  m@b.com\n\
             \x20 servers with several rows: 1\n\
             \x20   AAAA  https://jira.a.com (2 rows)\n\
             \x20     a-jira → https://a.atlassian.net\n\
             \x20     a-hr → https://a-hr.atlassian.net\n\
             \x20 delimiter:    , (lists in a cell: `;`)\n\
             \x20 secrets:      4 distinct references, not resolved (add --secrets to check them)\n"
        );
    }

    #[test]
    fn problems_go_to_stderr_with_file_and_line_then_a_count() {
        let text = format!(
            "{HEADER}\
             a-jira,jra,https://jira.a.com,AAAA,env:A_PAT,https://a.atlassian.net,m@a.com,env:A_TOKEN,,\n\
             a-jira,jira,https://jira.a.com,AAAA,env:A_PAT,https://a.atlassian.net,m@a.com,SeCrEtLiTeRaL,,\n"
        );
        let (code, out, err) = run_on(&text, false);
        assert_eq!(code, exit::DATA);
        assert_eq!(out, "");
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("fleet.csv:2: column product: unknown product `jra`"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("fleet.csv:3: column site: duplicate site `a-jira`"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("fleet.csv:3: column cloud_token: a literal secret"),
            "{err}"
        );
        assert_eq!(lines[3], "3 problems in fleet.csv");
        assert!(!err.contains("SeCrEtLiTeRaL"));
    }

    #[test]
    fn an_unreadable_file_is_a_data_error() {
        let args = ValidateArgs {
            inventory: PathBuf::from("/nonexistent/cmafleet/fleet.csv"),
            secrets: false,
            online: false,
            connection: Default::default(),
            select: Default::default(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_with(&args, &mut out, &mut err), exit::DATA);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("error: cannot read inventory /nonexistent/cmafleet/fleet.csv"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_resolved_once_each_and_failures_name_reference_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("token");
        std::fs::write(&secret, "v").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let file = format!("file:{}", secret.display());
        let text = format!(
            "{HEADER}\
             a,jira,https://jira.a.com,AAAA,{file},https://a.atlassian.net,m@a.com,env:CMAFLEET_UNIT_SURELY_UNSET_1,,\n\
             b,jira,https://jira.b.com,BBBB,{file},https://a.atlassian.net,m@a.com,env:CMAFLEET_UNIT_SURELY_UNSET_1,,\n"
        );
        let (code, out, err) = run_on(&text, true);
        assert_eq!(code, exit::CONFIG, "{out}{err}");
        let err: String = err
            .lines()
            .filter(|line| !line.starts_with("warning:"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(
            err,
            "fleet.csv: secret env:CMAFLEET_UNIT_SURELY_UNSET_1 (lines 2, 3): environment variable CMAFLEET_UNIT_SURELY_UNSET_1 is not set\n\
             1 of 2 secret references do not resolve\n"
        );
        assert!(
            out.starts_with("fleet.csv: 2 sites, 1 of 2 secret references do not resolve\n"),
            "{out}"
        );
        assert!(
            out.ends_with("  secrets:      1 of 2 references do not resolve (listed on stderr)\n"),
            "{out}"
        );
        assert!(!out.contains("no problems"), "{out}");
    }
}
