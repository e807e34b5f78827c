//! `cmafleet run --print-config`: the resolved settings as a settings file, each line saying
//! where its value came from. The output is valid `--config` input (secrets aside: a
//! password in a URL prints as `***`).

use std::fmt::Write as _;

/// Where a resolved value came from, in precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A command-line flag or its `CMAFLEET_*` environment variable.
    Flag,
    /// The `--config` file.
    File,
    /// The built-in default.
    Default,
}

impl Origin {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Origin::Flag => "flag or CMAFLEET_* variable",
            Origin::File => "config file",
            Origin::Default => "default",
        }
    }
}

/// One resolved setting, as `--print-config` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shown {
    /// The settings-file key (the flag's name without `--`).
    pub(super) key: &'static str,
    /// `None`: not set (printed commented out).
    pub(super) value: Option<toml::Value>,
    pub(super) origin: Origin,
    /// Said after the origin, e.g. which shard `shards` made of this process.
    pub(super) note: Option<String>,
}

/// The TOML text: a header, then one `key = value  # origin` line per setting.
pub(super) fn render(shown: &[Shown]) -> String {
    let mut text = String::from(
        "# cmafleet run: resolved settings (precedence: flag or CMAFLEET_* variable > config \
         file > default).\n# Valid as a --config file; passwords in URLs are shown as ***.\n",
    );
    let width = shown
        .iter()
        .map(|entry| entry_text(entry).len())
        .max()
        .unwrap_or(0);
    for entry in shown {
        let line = entry_text(entry);
        let origin = if entry.value.is_some() {
            entry.origin.as_str()
        } else {
            "not set"
        };
        let _ = match &entry.note {
            Some(note) => writeln!(text, "{line:<width$}  # {origin}; {note}"),
            None => writeln!(text, "{line:<width$}  # {origin}"),
        };
    }
    text
}

fn entry_text(entry: &Shown) -> String {
    match &entry.value {
        Some(value) => format!("{} = {}", entry.key, inline(value)),
        None => format!("# {} =", entry.key),
    }
}

/// A value on one line (TOML's own `Display` of arrays and strings is already inline).
fn inline(value: &toml::Value) -> String {
    value.to_string()
}

/// A URL for display: any password replaced by `***`.
pub(super) fn redact_url(url: &url::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_password(Some("***"));
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendering_is_a_settings_file() {
        let shown = [
            Shown {
                key: "concurrency",
                value: Some(toml::Value::Integer(8)),
                origin: Origin::File,
                note: None,
            },
            Shown {
                key: "wave",
                value: Some(toml::Value::Array(vec!["w1".into(), "w2".into()])),
                origin: Origin::Flag,
                note: Some("a note".into()),
            },
            Shown {
                key: "deadline",
                value: None,
                origin: Origin::Default,
                note: None,
            },
        ];
        let text = render(&shown);
        assert!(text.contains("concurrency = 8"), "{text}");
        assert!(text.contains("# config file"), "{text}");
        assert!(text.contains("# deadline ="), "{text}");
        assert!(
            text.contains("# flag or CMAFLEET_* variable; a note"),
            "{text}"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["wave"].as_array().unwrap().len(), 2);
        assert!(!parsed.contains_key("deadline"));
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        let url = url::Url::parse("https://push:hunter2@gw.example/prefix/").unwrap();
        let shown = redact_url(&url);
        assert_eq!(shown, "https://push:***@gw.example/prefix/");
        let plain = url::Url::parse("https://gw.example/").unwrap();
        assert_eq!(redact_url(&plain), "https://gw.example/");
    }
}
