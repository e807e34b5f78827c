//! The inventory's columns (as the documented format lists them) and the header row that maps them to fields:
//! unknown, duplicate, empty and missing columns, with a "did you mean" for the unknown.

use super::problems::{Problems, could_be_secret};

/// One column of the inventory, in the documented order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Column {
    Site,
    Product,
    ServerUrl,
    ServerId,
    ServerAuth,
    CloudUrl,
    CloudUser,
    CloudToken,
    Keys,
    Users,
    Apps,
    GlobalEntities,
    Wave,
    Name,
    ScopeJson,
}

impl Column {
    /// Every column, in the documented order.
    pub(crate) const ALL: [Column; 15] = [
        Column::Site,
        Column::Product,
        Column::ServerUrl,
        Column::ServerId,
        Column::ServerAuth,
        Column::CloudUrl,
        Column::CloudUser,
        Column::CloudToken,
        Column::Keys,
        Column::Users,
        Column::Apps,
        Column::GlobalEntities,
        Column::Wave,
        Column::Name,
        Column::ScopeJson,
    ];

    /// The name as written in the header row.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Column::Site => "site",
            Column::Product => "product",
            Column::ServerUrl => "server_url",
            Column::ServerId => "server_id",
            Column::ServerAuth => "server_auth",
            Column::CloudUrl => "cloud_url",
            Column::CloudUser => "cloud_user",
            Column::CloudToken => "cloud_token",
            Column::Keys => "keys",
            Column::Users => "users",
            Column::Apps => "apps",
            Column::GlobalEntities => "global_entities",
            Column::Wave => "wave",
            Column::Name => "name",
            Column::ScopeJson => "scope_json",
        }
    }

    /// Required columns must be in the header and non-empty on every row.
    pub(crate) fn required(self) -> bool {
        matches!(
            self,
            Column::Site
                | Column::Product
                | Column::ServerUrl
                | Column::ServerId
                | Column::ServerAuth
                | Column::CloudUrl
                | Column::CloudUser
                | Column::CloudToken
        )
    }

    fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|column| column.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Names people reach for that mean one of our columns, for the "did you mean" hint.
const ALIASES: &[(&str, Column)] = &[
    ("name_of_site", Column::Site),
    ("site_name", Column::Site),
    ("app", Column::Product),
    ("type", Column::Product),
    ("server", Column::ServerUrl),
    ("url", Column::ServerUrl),
    ("base_url", Column::ServerUrl),
    ("serverid", Column::ServerId),
    ("server_key", Column::ServerId),
    ("pat", Column::ServerAuth),
    ("server_token", Column::ServerAuth),
    ("server_password", Column::ServerAuth),
    ("auth", Column::ServerAuth),
    ("cloud", Column::CloudUrl),
    ("cloud_site", Column::CloudUrl),
    ("destination", Column::CloudUrl),
    ("site_url", Column::CloudUrl),
    ("email", Column::CloudUser),
    ("cloud_email", Column::CloudUser),
    ("admin", Column::CloudUser),
    ("token", Column::CloudToken),
    ("api_token", Column::CloudToken),
    ("cloud_api_token", Column::CloudToken),
    ("projects", Column::Keys),
    ("project_keys", Column::Keys),
    ("spaces", Column::Keys),
    ("space_keys", Column::Keys),
    ("key", Column::Keys),
    ("users_and_groups", Column::Users),
    ("app_keys", Column::Apps),
    ("plugins", Column::Apps),
    ("global_entity", Column::GlobalEntities),
    ("globals", Column::GlobalEntities),
    ("batch", Column::Wave),
    ("group", Column::Wave),
    ("job_name", Column::Name),
    ("scope", Column::ScopeJson),
    ("json", Column::ScopeJson),
];

/// Where each known column sits in the rows, from the header row.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// Field index of each column (by `Column as usize`), `None` when the header lacks it.
    positions: [Option<usize>; Column::ALL.len()],
    /// Number of fields of the header row: every row must have exactly this many.
    pub(crate) width: usize,
}

impl Header {
    /// Reads the header row, reporting every problem with it on `line`. `None` when the row
    /// names none of our columns (it is then almost surely data, not a header).
    pub(crate) fn parse(fields: &[&str], line: usize, problems: &mut Problems) -> Option<Header> {
        let mut positions = [None; Column::ALL.len()];
        let mut unknown = Vec::new();
        for (index, name) in fields.iter().enumerate() {
            match Column::from_name(name) {
                Some(column) => match positions[column.index()] {
                    None => positions[column.index()] = Some(index),
                    Some(first) => problems.push(
                        line,
                        index + 1,
                        Some(name.to_string()),
                        format!(
                            "duplicate column `{name}` (fields {} and {}); keep one",
                            first + 1,
                            index + 1
                        ),
                    ),
                },
                None => unknown.push((index, *name)),
            }
        }
        if positions.iter().all(Option::is_none) {
            problems.push(
                line,
                0,
                None,
                format!(
                    "the first row is not a header: it must name the columns, e.g. {}",
                    Column::ALL.map(Column::name).join(",")
                ),
            );
            return None;
        }
        for (index, name) in unknown {
            if name.is_empty() {
                problems.push(
                    line,
                    index + 1,
                    None,
                    format!(
                        "header field {} is empty: name a column or remove it",
                        index + 1
                    ),
                );
                continue;
            }
            if could_be_secret(name) {
                // A data row run into the header (a lost line end) can bring a literal secret
                // here: name the field, never the value.
                problems.push(
                    line,
                    index + 1,
                    None,
                    format!(
                        "header field {} is not a column name (not shown: it looks like a secret or a value, not a name); is a data row on the header's line?",
                        index + 1
                    ),
                );
                continue;
            }
            let shown = shown_header_name(name);
            let hint = match suggestion(name) {
                Some(column) => format!("did you mean `{}`?", column.name()),
                None => format!(
                    "the columns are {}",
                    Column::ALL.map(Column::name).join(", ")
                ),
            };
            problems.push(
                line,
                index + 1,
                Some(shown.clone()),
                format!("unknown column `{shown}`; {hint}"),
            );
        }
        let header = Header {
            positions,
            width: fields.len(),
        };
        for column in Column::ALL {
            if column.required() && header.position(column).is_none() {
                problems.push(
                    line,
                    header.rank(column),
                    Some(column.name().to_owned()),
                    format!("missing required column `{}`", column.name()),
                );
            }
        }
        Some(header)
    }

    /// The field index of `column`, if the header has it.
    pub(crate) fn position(&self, column: Column) -> Option<usize> {
        self.positions[column.index()]
    }

    /// Sort rank of a column's problems within a line: header order, then absent columns in
    /// the documented order. Rank 0 is reserved for problems of the whole row.
    pub(crate) fn rank(&self, column: Column) -> usize {
        match self.position(column) {
            Some(index) => index + 1,
            None => self.width + 1 + column.index(),
        }
    }
}

/// A header cell shown in a message: header cells are names, but cap what is echoed.
fn shown_header_name(name: &str) -> String {
    const MAX: usize = 40;
    let mut shown: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX)
        .collect();
    if name.chars().count() > MAX {
        shown.push('…');
    }
    shown
}

/// The column an unknown header name most likely meant: case, spaces and dashes folded,
/// a table of common aliases, then the nearest name by edit distance.
pub(crate) fn suggestion(name: &str) -> Option<Column> {
    let folded: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    if let Some(column) = Column::from_name(&folded) {
        return Some(column);
    }
    if let Some((_, column)) = ALIASES.iter().find(|(alias, _)| *alias == folded) {
        return Some(*column);
    }
    let limit = (folded.chars().count() / 3).max(2);
    Column::ALL
        .into_iter()
        .map(|column| (strsim::levenshtein(&folded, column.name()), column))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, column)| column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> (Option<Header>, Vec<String>) {
        let fields: Vec<&str> = line.split(',').collect();
        let mut problems = Problems::default();
        let header = Header::parse(&fields, 1, &mut problems);
        let messages = problems
            .into_sorted()
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        (header, messages)
    }

    const FULL: &str =
        "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token";

    #[test]
    fn required_columns_alone_make_a_header_and_optional_ones_may_be_absent() {
        let (header, messages) = header(FULL);
        assert!(messages.is_empty(), "{messages:?}");
        let header = header.unwrap();
        assert_eq!(header.position(Column::CloudToken), Some(7));
        assert_eq!(header.position(Column::Keys), None);
        assert_eq!(header.width, 8);
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let (header, messages) = header(
            "cloud_token,site,wave,product,server_url,server_id,server_auth,cloud_url,cloud_user",
        );
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(header.unwrap().position(Column::Site), Some(1));
    }

    #[test]
    fn a_header_cell_that_may_be_a_secret_is_not_echoed() {
        let (_, messages) = header(&format!(
            "{FULL},ATATT3xFfGF0T9kq2Lw8,env:ACME_TOKEN,Project Keys"
        ));
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("line 1: header field 9 is not a column name (not shown"));
        assert!(messages[1].starts_with("line 1: header field 10 is not a column name"));
        assert!(messages[2].contains("unknown column `Project Keys`"));
        assert!(
            messages
                .iter()
                .all(|m| !m.contains("ATATT3x") && !m.contains("ACME_TOKEN"))
        );
    }

    #[test]
    fn unknown_columns_get_a_did_you_mean() {
        let (_, messages) = header(&format!("{FULL},wavee,Project Keys,email,zzzz"));
        assert_eq!(
            messages,
            [
                "line 1, column wavee: unknown column `wavee`; did you mean `wave`?",
                "line 1, column Project Keys: unknown column `Project Keys`; did you mean `keys`?",
                "line 1, column email: unknown column `email`; did you mean `cloud_user`?",
                "line 1, column zzzz: unknown column `zzzz`; the columns are site, product, server_url, server_id, server_auth, cloud_url, cloud_user, cloud_token, keys, users, apps, global_entities, wave, name, scope_json",
            ]
        );
    }

    #[test]
    fn duplicate_and_empty_columns_are_errors() {
        let (_, messages) = header(&format!("{FULL},site,"));
        assert_eq!(
            messages,
            [
                "line 1, column site: duplicate column `site` (fields 1 and 9); keep one",
                "line 1: header field 10 is empty: name a column or remove it",
            ]
        );
    }

    #[test]
    fn missing_required_columns_are_named_each() {
        let (header, messages) = header("site,product,server_url,server_id,cloud_url,cloud_user");
        assert!(header.is_some());
        assert_eq!(
            messages,
            [
                "line 1, column server_auth: missing required column `server_auth`",
                "line 1, column cloud_token: missing required column `cloud_token`",
            ]
        );
    }

    #[test]
    fn a_data_row_is_not_taken_for_a_header_and_is_not_echoed() {
        let (header, messages) = header(
            "acme,jira,https://jira.acme.com,BXXX,ATATT3xFfGF0secretvalue,https://acme.atlassian.net,a@acme.com,env:T",
        );
        assert!(header.is_none());
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("not a header"), "{messages:?}");
        assert!(!messages[0].contains("ATATT"), "{messages:?}");
    }

    #[test]
    fn suggestions_fold_case_and_dashes_then_take_the_nearest_name() {
        assert_eq!(suggestion("cloud-URL"), Some(Column::CloudUrl));
        assert_eq!(suggestion("sever_id"), Some(Column::ServerId));
        assert_eq!(suggestion("completely_unrelated"), None);
    }
}
