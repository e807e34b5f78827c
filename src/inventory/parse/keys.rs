//! The list columns: `keys` (Jira project keys or Confluence space keys), `apps` (app keys)
//! and `global_entities` (Confluence global entity types). Items are `;`-separated, or
//! `,`-separated in a file whose fields are `;`-separated ([`Delimiter::list_separators`]).

use std::collections::HashSet;

use super::delimiter::Delimiter;
use super::problems::{could_be_secret, excerpt};
use crate::inventory::site::Product;

/// Splits a list cell on the file's list separators: items trimmed, empty items ignored.
pub(crate) fn split_list(text: &str, delimiter: Delimiter) -> impl Iterator<Item = &str> {
    text.split(delimiter.list_separators())
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Project (Jira) or space (Confluence) keys; one message per bad or repeated key.
pub(crate) fn scope_keys(
    text: &str,
    product: Product,
    delimiter: Delimiter,
) -> Result<Vec<String>, Vec<String>> {
    list(text, delimiter, "key", |key| match product {
        Product::Jira => jira_project_key(key),
        Product::Confluence => confluence_space_key(key),
    })
}

/// App keys (`com.onresolve.jira.groovy.groovyrunner`).
pub(crate) fn app_keys(text: &str, delimiter: Delimiter) -> Result<Vec<String>, Vec<String>> {
    list(text, delimiter, "app key", app_key)
}

/// Confluence global entity types (`GLOBAL_PAGE_TEMPLATES`).
pub(crate) fn global_entities(
    text: &str,
    delimiter: Delimiter,
) -> Result<Vec<String>, Vec<String>> {
    list(text, delimiter, "global entity", global_entity)
}

/// Validates each item, and refuses repeats (case-insensitively: keys are case-insensitive).
fn list(
    text: &str,
    delimiter: Delimiter,
    what: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, Vec<String>> {
    let mut items = Vec::new();
    let mut messages = Vec::new();
    let mut seen = HashSet::new();
    let separator = delimiter.list_separator();
    for item in split_list(text, delimiter) {
        if item.contains(',') {
            messages.push(format!(
                "`{}`: separate items with `{separator}`, not `,`",
                excerpt(item)
            ));
            continue;
        }
        if item.contains(char::is_whitespace) {
            messages.push(format!(
                "`{}`: an item cannot contain spaces; separate items with `{separator}`",
                excerpt(item)
            ));
            continue;
        }
        if let Err(message) = check(item) {
            messages.push(message);
            continue;
        }
        if !seen.insert(item.to_uppercase()) {
            messages.push(format!("{what} `{}` is listed twice", excerpt(item)));
            continue;
        }
        items.push(item.to_owned());
    }
    if messages.is_empty() {
        Ok(items)
    } else {
        Err(messages)
    }
}

/// Atlassian's supported project key formats: an upper-case letter first, then upper-case
/// letters, digits or `_`; 2 to 255 characters (Jira's default pattern `[A-Z][A-Z]+` and its
/// 10-character default maximum are stricter, configurable settings of each server).
pub(crate) fn jira_project_key(key: &str) -> Result<(), String> {
    let valid = (2..=255).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_uppercase())
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if valid {
        return Ok(());
    }
    let upper = key.to_ascii_uppercase();
    let hint = if upper != key && jira_project_key(&upper).is_ok() && !could_be_secret(key) {
        format!(" (did you mean `{upper}`?)")
    } else {
        String::new()
    };
    Err(format!(
        "`{}` is not a Jira project key: an upper-case letter, then upper-case letters, digits \
         or `_`, 2 to 255 characters{hint}",
        excerpt(key)
    ))
}

/// Confluence space keys: letters and digits, up to 255 characters; or `~username`, the key
/// of a personal space.
pub(crate) fn confluence_space_key(key: &str) -> Result<(), String> {
    let valid = if let Some(username) = key.strip_prefix('~') {
        !username.is_empty()
            && username.chars().count() <= 255
            && !username.contains(|c: char| c.is_control() || c == '~')
    } else {
        (1..=255).contains(&key.len()) && key.chars().all(|c| c.is_ascii_alphanumeric())
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a Confluence space key: letters and digits, up to 255 characters, or \
             `~username` for a personal space",
            excerpt(key)
        ))
    }
}

fn app_key(key: &str) -> Result<(), String> {
    let valid = key.len() <= 255
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an app key: letters, digits, `.`, `_`, `-` and `:`, e.g. \
             com.onresolve.jira.groovy.groovyrunner",
            excerpt(key)
        ))
    }
}

fn global_entity(entity: &str) -> Result<(), String> {
    let upper_snake = |text: &str| {
        text.starts_with(|c: char| c.is_ascii_uppercase())
            && !text.ends_with('_')
            && !text.contains("__")
            && text
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    if upper_snake(entity) {
        return Ok(());
    }
    let upper = entity.to_ascii_uppercase();
    let hint = if upper_snake(&upper) && !could_be_secret(entity) {
        format!(" (did you mean `{upper}`?)")
    } else {
        String::new()
    };
    Err(format!(
        "`{}` is not a global entity type: upper snake case such as GLOBAL_PAGE_TEMPLATES{hint}",
        excerpt(entity)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMA: Delimiter = Delimiter::Comma;

    #[test]
    fn lists_split_on_semicolons_trim_and_skip_empty_items() {
        assert_eq!(
            scope_keys(" ABC ; DEF;;GH_1 ;", Product::Jira, COMMA).unwrap(),
            ["ABC", "DEF", "GH_1"]
        );
        assert_eq!(
            scope_keys("", Product::Jira, COMMA).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            scope_keys(" ; ", Product::Confluence, COMMA).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_semicolon_files_lists_split_on_commas_and_quoted_semicolons() {
        let semicolon = Delimiter::Semicolon;
        assert_eq!(
            scope_keys("ABC, DEF;GH", Product::Jira, semicolon).unwrap(),
            ["ABC", "DEF", "GH"]
        );
        let errors = scope_keys("ABC DEF", Product::Jira, semicolon).unwrap_err();
        assert!(errors[0].ends_with("separate items with `,`"), "{errors:?}");
    }

    #[test]
    fn jira_project_keys_follow_atlassians_supported_format() {
        for ok in ["AB", "ABC", "A1", "MY_PROJECT_2", &"A".repeat(255)] {
            assert!(jira_project_key(ok).is_ok(), "{ok}");
        }
        for bad in ["A", "1AB", "_AB", "AB-C", "ÄBC", &"A".repeat(256)] {
            assert!(jira_project_key(bad).is_err(), "{bad}");
        }
        let err = jira_project_key("abc").unwrap_err();
        assert!(err.contains("did you mean `ABC`?"), "{err}");
    }

    #[test]
    fn confluence_space_keys_are_alphanumeric_or_personal() {
        for ok in ["DOCS", "ds", "Team42", "~jsmith", "~john.doe@acme.com", "X"] {
            assert!(confluence_space_key(ok).is_ok(), "{ok}");
        }
        for bad in ["MY-SPACE", "my_space", "~", "ÉQUIPE", &"A".repeat(256)] {
            assert!(confluence_space_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_keys_are_errors_whatever_their_case() {
        let errors = scope_keys("ABC;DEF;ABC", Product::Jira, COMMA).unwrap_err();
        assert_eq!(errors, ["key `ABC` is listed twice"]);
        let errors = scope_keys("docs;DOCS", Product::Confluence, COMMA).unwrap_err();
        assert_eq!(errors, ["key `DOCS` is listed twice"]);
    }

    #[test]
    fn commas_and_spaces_inside_items_get_a_separator_hint() {
        let errors = scope_keys("ABC,DEF;GH IJ", Product::Jira, COMMA).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("not `,`"), "{errors:?}");
        assert!(errors[1].contains("cannot contain spaces"), "{errors:?}");
    }

    #[test]
    fn every_bad_key_of_a_row_is_reported() {
        let errors = scope_keys("ok;AB;x;Y-Z", Product::Jira, COMMA).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn app_keys_and_global_entities() {
        assert_eq!(
            app_keys(
                "com.onresolve.jira.groovy.groovyrunner; is.origo.jira.tempo-plugin",
                COMMA
            )
            .unwrap(),
            [
                "com.onresolve.jira.groovy.groovyrunner",
                "is.origo.jira.tempo-plugin"
            ]
        );
        assert!(app_keys(".hidden", COMMA).is_err());
        assert!(app_keys("a/b", COMMA).is_err());
        assert_eq!(
            global_entities("GLOBAL_PAGE_TEMPLATES;SPACE_TEMPLATES2", COMMA).unwrap(),
            ["GLOBAL_PAGE_TEMPLATES", "SPACE_TEMPLATES2"]
        );
        let errors = global_entities("global_page_templates;_X;A__B", COMMA).unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(
            errors[0].contains("did you mean `GLOBAL_PAGE_TEMPLATES`?"),
            "{errors:?}"
        );
    }
}
