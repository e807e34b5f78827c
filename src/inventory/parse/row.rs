//! One data row: every column checked (each problem reported), and the [`Site`] it stands for
//! when all its values are valid. Also the facts the fleet-wide checks need.

use csv::StringRecord;

use super::columns::{Column, Header};
use super::delimiter::Delimiter;
use super::problems::Problems;
use super::{fields, keys, urls};
use crate::inventory::site::{Product, Site, UsersScope};

/// What the fleet-wide checks (duplicates, one Server ID per server) need from a row: each
/// value present only if it was valid, so one bad value is not reported twice.
#[derive(Debug, Clone)]
pub(crate) struct RowFacts {
    pub(crate) line: usize,
    pub(crate) site: Option<String>,
    pub(crate) product: Option<Product>,
    /// Normalised (lower-case host, no trailing slash).
    pub(crate) server_url: Option<String>,
    pub(crate) server_id: Option<String>,
    /// Normalised (lower-case host, no trailing slash).
    pub(crate) cloud_url: Option<String>,
    /// The scope's keys as a set: upper-cased and sorted, empty meaning all.
    pub(crate) key_set: Option<Vec<String>>,
}

/// Collects one row's problems while reading its values.
struct RowCheck<'a> {
    record: &'a StringRecord,
    header: &'a Header,
    line: usize,
    problems: &'a mut Problems,
    /// False once any value of the row is bad: the row then yields no `Site`.
    valid: bool,
}

impl<'a> RowCheck<'a> {
    fn report(&mut self, column: Column, message: String) {
        self.valid = false;
        self.problems.push(
            self.line,
            self.header.rank(column),
            Some(column.name().to_owned()),
            message,
        );
    }

    /// The cell of an optional column; empty when the header lacks the column.
    fn optional(&self, column: Column) -> &'a str {
        let record: &'a StringRecord = self.record;
        self.header
            .position(column)
            .and_then(|index| record.get(index))
            .unwrap_or("")
    }

    /// The cell of a required column, or `None` (reported) when empty. A column missing from
    /// the header was reported once on the header line.
    fn required(&mut self, column: Column) -> Option<&'a str> {
        if self.header.position(column).is_none() {
            self.valid = false;
            return None;
        }
        let text = self.optional(column);
        if text.is_empty() {
            self.report(column, format!("`{}` is required but empty", column.name()));
            return None;
        }
        Some(text)
    }

    fn check<T>(&mut self, column: Column, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.report(column, message)).ok()
    }

    fn check_list(
        &mut self,
        column: Column,
        result: Result<Vec<String>, Vec<String>>,
    ) -> Option<Vec<String>> {
        match result {
            Ok(items) => Some(items),
            Err(messages) => {
                for message in messages {
                    self.report(column, message);
                }
                None
            }
        }
    }
}

/// Checks every value of a data row; the `Site` when all are valid.
pub(crate) fn check_row(
    record: &StringRecord,
    header: &Header,
    delimiter: Delimiter,
    line: usize,
    problems: &mut Problems,
) -> (RowFacts, Option<Site>) {
    let mut row = RowCheck {
        record,
        header,
        line,
        problems,
        valid: true,
    };
    let name = row
        .required(Column::Site)
        .map(fields::site_name)
        .and_then(|result| row.check(Column::Site, result));
    let product = row
        .required(Column::Product)
        .map(fields::product)
        .and_then(|result| row.check(Column::Product, result));
    let server_url = row
        .required(Column::ServerUrl)
        .map(urls::server_url)
        .and_then(|result| row.check(Column::ServerUrl, result));
    let server_id = row
        .required(Column::ServerId)
        .map(fields::server_id)
        .and_then(|result| row.check(Column::ServerId, result));
    let server_auth = row
        .required(Column::ServerAuth)
        .map(fields::server_auth)
        .and_then(|result| row.check(Column::ServerAuth, result));
    let cloud_url = row
        .required(Column::CloudUrl)
        .map(urls::cloud_url)
        .and_then(|result| row.check(Column::CloudUrl, result));
    let cloud_user = row
        .required(Column::CloudUser)
        .map(fields::cloud_user)
        .and_then(|result| row.check(Column::CloudUser, result));
    let cloud_token = row
        .required(Column::CloudToken)
        .map(|text| fields::secret_ref(text, false))
        .and_then(|result| row.check(Column::CloudToken, result));

    // Key syntax depends on the product; with an unknown product only that is reported.
    let keys = match product {
        Some(product) => {
            let result = keys::scope_keys(row.optional(Column::Keys), product, delimiter);
            row.check_list(Column::Keys, result)
        }
        None => None,
    };
    let users = {
        let result = fields::users(row.optional(Column::Users));
        row.check(Column::Users, result)
    };
    let apps = {
        let result = keys::app_keys(row.optional(Column::Apps), delimiter);
        row.check_list(Column::Apps, result)
    };
    let global_entities = {
        let text = row.optional(Column::GlobalEntities);
        if product == Some(Product::Jira) && keys::split_list(text, delimiter).next().is_some() {
            row.report(
                Column::GlobalEntities,
                "`global_entities` is for Confluence rows only, and this row's product is jira"
                    .to_owned(),
            );
            None
        } else {
            let result = keys::global_entities(text, delimiter);
            row.check_list(Column::GlobalEntities, result)
        }
    };
    let wave = optional_label(&mut row, Column::Wave);
    let job_name = optional_label(&mut row, Column::Name);
    let scope_json = {
        let text = row.optional(Column::ScopeJson);
        if text.is_empty() {
            Some(None)
        } else {
            let result = fields::scope_json(text);
            let scope = row.check(Column::ScopeJson, result);
            let given: Vec<&str> = [
                Column::Keys,
                Column::Users,
                Column::Apps,
                Column::GlobalEntities,
            ]
            .into_iter()
            .filter(|column| !row.optional(*column).is_empty())
            .map(Column::name)
            .collect();
            if !given.is_empty() {
                row.report(
                    Column::ScopeJson,
                    format!(
                        "give the scope either as scope_json or in {}, not both (scope_json is sent as is)",
                        given.join("/")
                    ),
                );
            }
            scope.map(Some)
        }
    };

    let facts = RowFacts {
        line,
        site: name.clone(),
        product,
        server_url: server_url.as_ref().map(|url| normalised(url.as_str())),
        server_id: server_id.clone(),
        cloud_url: cloud_url.as_ref().map(|url| normalised(url.as_str())),
        // A raw scope stands for itself: two rows with the same one are duplicates.
        key_set: match &scope_json {
            Some(Some(scope)) => Some(vec![serde_json::Value::Object(scope.clone()).to_string()]),
            _ => keys.as_ref().map(|keys| {
                let mut set: Vec<String> = keys.iter().map(|key| key.to_uppercase()).collect();
                set.sort_unstable();
                set
            }),
        },
    };
    if !row.valid {
        return (facts, None);
    }
    let site = (|| {
        Some(Site {
            line,
            name: name?,
            product: product?,
            server_url: server_url?,
            server_id: server_id?,
            server_auth: server_auth?,
            cloud_url: cloud_url?,
            cloud_user: cloud_user?,
            cloud_token: cloud_token?,
            keys: keys?,
            users: users.unwrap_or(UsersScope::All),
            apps: apps?,
            global_entities: global_entities?,
            wave: wave?,
            job_name: job_name?,
            scope_json: scope_json?,
        })
    })();
    (facts, site)
}

/// `Some(None)` for an empty cell, `Some(Some(text))` for a valid one, `None` when bad.
fn optional_label(row: &mut RowCheck<'_>, column: Column) -> Option<Option<String>> {
    let text = row.optional(column);
    if text.is_empty() {
        return Some(None);
    }
    let result = fields::label(text);
    row.check(column, result).map(Some)
}

fn normalised(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}
