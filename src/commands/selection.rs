//! The inventory's rows a command drives: the inventory loaded and split by `--site`,
//! `--wave` and `--shard`, and the secrets of the selected rows resolved, each reference
//! once. Shared by `validate`, `plan` and `run`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::cma::client::ServerCredentials;
use crate::config::Selection;
use crate::exit;
use crate::fleet::coordinator::Credentials;
use crate::inventory::{self, SecretRef, ServerAuth, Site};
use crate::secret::Secret;

/// Says a fatal error and gives back its exit code.
fn fail(code: u8, message: &str) -> u8 {
    crate::fatal::report(code, message);
    code
}

/// The inventory's rows split by a selection, each in inventory order.
pub(super) struct Selected {
    /// The rows the run drives.
    pub sites: Vec<Arc<Site>>,
    /// The others (outside `--site`, `--wave` or `--shard`): a task one of them left
    /// running still holds its server.
    pub unselected: Vec<Arc<Site>>,
}

/// Loads the inventory (exit 65 with every problem) and applies the selection (exit 2 for a
/// `--site` or `--wave` the inventory does not have).
pub(super) fn load_selected(path: &Path, selection: &Selection) -> Result<Selected, u8> {
    let sites = match inventory::load(path) {
        Ok(sites) => sites,
        Err(inventory::InventoryError::Invalid { path, problems }) => {
            for problem in &problems {
                eprintln!("{path}:{problem}");
            }
            eprintln!(
                "error: {} problem(s) in {path}; fix them (`cmafleet validate {path}` lists them too)",
                problems.len()
            );
            return Err(exit::DATA);
        }
        Err(error) => return Err(fail(exit::DATA, &error.to_string())),
    };
    let selected = select(sites, selection).map_err(|message| fail(exit::USAGE, &message))?;
    for notice in inventory::plain_http(selected.sites.iter().map(|site| &**site)) {
        tracing::warn!("{notice}");
    }
    Ok(selected)
}

/// Splits the rows by a selection.
pub(super) fn select(sites: Vec<Site>, selection: &Selection) -> Result<Selected, String> {
    let unknown_sites: Vec<&String> = selection
        .sites
        .iter()
        .filter(|name| !sites.iter().any(|site| &site.name == *name))
        .collect();
    if !unknown_sites.is_empty() {
        return Err(format!(
            "--site {} not in the inventory",
            join(&unknown_sites)
        ));
    }
    let unknown_waves: Vec<&String> = selection
        .waves
        .iter()
        .filter(|wave| !sites.iter().any(|site| site.wave.as_ref() == Some(*wave)))
        .collect();
    if !unknown_waves.is_empty() {
        return Err(format!(
            "--wave {} not in the inventory",
            join(&unknown_waves)
        ));
    }
    let selected = |site: &Site| {
        (selection.sites.is_empty() || selection.sites.contains(&site.name))
            && (selection.waves.is_empty()
                || site
                    .wave
                    .as_ref()
                    .is_some_and(|wave| selection.waves.contains(wave)))
            && selection
                .shard
                .is_none_or(|shard| shard.owns(&site.cloud_user))
    };
    let (sites, unselected): (Vec<Arc<Site>>, Vec<Arc<Site>>) = sites
        .into_iter()
        .map(Arc::new)
        .partition(|site| selected(site));
    Ok(Selected { sites, unselected })
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves every secret reference of the selected sites, each once (exit 78 naming every
/// reference that does not resolve with the lines that use it, as `validate --secrets`
/// does; never a value).
pub(super) fn resolve_credentials(sites: &[Arc<Site>]) -> Result<Credentials, u8> {
    let mut resolved: HashMap<SecretRef, Result<Secret, String>> = HashMap::new();
    // The references that fail, in order of first use, with every line that uses them.
    let mut unresolved: Vec<(SecretRef, Vec<usize>, String)> = Vec::new();
    let mut resolve = |reference: &SecretRef, line: usize| -> Option<Secret> {
        let result = resolved
            .entry(reference.clone())
            .or_insert_with(|| reference.resolve().map_err(|error| error.to_string()));
        match result {
            Ok(secret) => Some(secret.clone()),
            Err(error) => {
                match unresolved
                    .iter_mut()
                    .find(|(known, _, _)| known == reference)
                {
                    Some((_, lines, _)) if lines.last() != Some(&line) => lines.push(line),
                    Some(_) => {}
                    None => unresolved.push((reference.clone(), vec![line], error.clone())),
                }
                None
            }
        }
    };
    let mut mismatches: Vec<String> = Vec::new();
    let mut cloud: HashMap<String, Secret> = HashMap::new();
    let mut cloud_refs: HashMap<String, (SecretRef, usize)> = HashMap::new();
    let mut servers = Vec::with_capacity(sites.len());
    for site in sites {
        let token = resolve(&site.cloud_token, site.line);
        match cloud_refs.get(&site.cloud_user) {
            Some((reference, line)) if reference != &site.cloud_token => mismatches.push(format!(
                "line {}: cloud user {} has token {} here but {} on line {line}; use one token per cloud user",
                site.line, site.cloud_user, site.cloud_token, reference
            )),
            Some(_) => {}
            None => {
                cloud_refs.insert(site.cloud_user.clone(), (site.cloud_token.clone(), site.line));
                if let Some(secret) = token {
                    cloud.insert(site.cloud_user.clone(), secret);
                }
            }
        }
        let credentials = match &site.server_auth {
            ServerAuth::Bearer(reference) => {
                resolve(reference, site.line).map(ServerCredentials::Bearer)
            }
            ServerAuth::Basic { username, password } => {
                resolve(password, site.line).map(|password| ServerCredentials::Basic {
                    username: username.clone(),
                    password,
                })
            }
        };
        servers.push(
            credentials.unwrap_or_else(|| ServerCredentials::Bearer(Secret::new(String::new()))),
        );
    }
    if unresolved.is_empty() && mismatches.is_empty() {
        return Ok(Credentials { cloud, servers });
    }
    let mut text = String::new();
    for (reference, lines, error) in &unresolved {
        text.push_str(&format!(
            "secret {reference} ({}): {error}\n",
            lines_list(lines)
        ));
    }
    for mismatch in &mismatches {
        text.push_str(mismatch);
        text.push('\n');
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    let message = match (unresolved.len(), mismatches.len()) {
        (n, 0) => format!("{n} secret reference(s) do not resolve; set them and run again"),
        (0, m) => {
            format!("{m} row(s) give a cloud user a second token; use one token per cloud user")
        }
        (n, m) => format!(
            "{n} secret reference(s) do not resolve and {m} row(s) give a cloud user a second token; fix them and run again"
        ),
    };
    Err(fail(exit::CONFIG, &message))
}

/// `line 3`, `lines 3, 7`, or the first few and the count.
pub(super) fn lines_list(lines: &[usize]) -> String {
    const SHOWN: usize = 8;
    let listed: Vec<String> = lines.iter().take(SHOWN).map(usize::to_string).collect();
    match lines.len() {
        1 => format!("line {}", listed[0]),
        n if n <= SHOWN => format!("lines {}", listed.join(", ")),
        n => format!("lines {}, … ({n} rows)", listed.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_lists_are_capped() {
        assert_eq!(lines_list(&[4]), "line 4");
        assert_eq!(lines_list(&[4, 9]), "lines 4, 9");
        let many: Vec<usize> = (2..102).collect();
        assert_eq!(
            lines_list(&many),
            "lines 2, 3, 4, 5, 6, 7, 8, 9, … (100 rows)"
        );
    }
}
