//! Checks across rows, each one pass with a hash map (a 100,000-row inventory stays linear):
//! unique `site`; no (server_id, cloud_url, keys) scope twice; one Server ID and one product
//! per server.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::columns::{Column, Header};
use super::problems::Problems;
use super::row::RowFacts;
use crate::inventory::site::Product;

/// Reports, on the later row, every row that repeats an earlier one.
pub(crate) fn check_fleet(rows: &[RowFacts], header: &Header, problems: &mut Problems) {
    let mut sites: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut scopes: HashMap<(&str, &str, &[String]), usize> = HashMap::with_capacity(rows.len());
    let mut server_by_url: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut server_by_id: HashMap<&str, (&str, Option<Product>, usize)> = HashMap::new();
    let mut report = |line: usize, column: Column, message: String| {
        problems.push(
            line,
            header.rank(column),
            Some(column.name().to_owned()),
            message,
        );
    };

    for row in rows {
        if let Some(site) = row.site.as_deref() {
            match sites.entry(site) {
                Entry::Occupied(first) => report(
                    row.line,
                    Column::Site,
                    format!(
                        "duplicate site `{site}`: line {} has it already; site names are unique",
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(row.line);
                }
            }
        }

        let (Some(server_id), Some(server_url)) =
            (row.server_id.as_deref(), row.server_url.as_deref())
        else {
            continue;
        };
        match server_by_url.entry(server_url) {
            Entry::Occupied(first) if first.get().0 != server_id => report(
                row.line,
                Column::ServerId,
                format!(
                    "line {} has the same server_url with another server_id: one server has \
                     one Server ID",
                    first.get().1
                ),
            ),
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert((server_id, row.line));
            }
        }
        match server_by_id.entry(server_id) {
            Entry::Occupied(first) => {
                let (first_url, first_product, first_line) = *first.get();
                if first_url != server_url {
                    report(
                        row.line,
                        Column::ServerUrl,
                        format!(
                            "line {first_line} has the same server_id with another server_url: \
                             a Server ID belongs to one server (a cloned instance needs its \
                             own Server ID)"
                        ),
                    );
                }
                if let (Some(first), Some(this)) = (first_product, row.product)
                    && first != this
                {
                    report(
                        row.line,
                        Column::Product,
                        format!(
                            "line {first_line} has the same server_id as a {} server, and \
                                 this row says {}",
                            first.as_str(),
                            this.as_str()
                        ),
                    );
                }
            }
            Entry::Vacant(slot) => {
                slot.insert((server_url, row.product, row.line));
            }
        }

        let (Some(cloud_url), Some(key_set)) = (row.cloud_url.as_deref(), row.key_set.as_deref())
        else {
            continue;
        };
        match scopes.entry((server_id, cloud_url, key_set)) {
            Entry::Occupied(first) => {
                let keys = if key_set.is_empty() {
                    "keys (all)".to_owned()
                } else {
                    "keys".to_owned()
                };
                report(
                    row.line,
                    Column::Keys,
                    format!(
                        "same server_id, cloud_url and {keys} as line {}: that scope would be \
                         migrated twice",
                        first.get()
                    ),
                );
            }
            Entry::Vacant(slot) => {
                slot.insert(row.line);
            }
        }
    }
}
