//! Layering, written once for every setting: its flag over the settings file over its
//! default. clap has already put a `CMAFLEET_*` variable in its flag's place (a flag given on
//! the command line beats the variable), so a flag's value is either, and `--print-config`
//! says so. The value that wins is parsed and noted, with where it came from, on the
//! [`Sheet`] that `--print-config` prints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::print::{Origin, Shown, redact_url};
use crate::cli::defaults;
use crate::fleet::limits::Rate;
use crate::vocab::Mode;

/// A value picked from the flag, else the file, else the default.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layered<T> {
    /// `None`: no layer has one (printed as not set).
    pub(super) value: Option<T>,
    pub(super) origin: Origin,
}

/// The first layer that has a value; `Default` origin when none has.
pub(super) fn layer<T>(flag: Option<T>, file: Option<T>, default: Option<T>) -> Layered<T> {
    let (value, origin) = match (flag, file) {
        (Some(value), _) => (Some(value), Origin::Flag),
        (None, Some(value)) => (Some(value), Origin::File),
        (None, None) => (default, Origin::Default),
    };
    Layered { value, origin }
}

/// A setting's value as a flag or the settings file gives it, before it is checked.
pub(super) trait Raw: Clone {
    /// The value the default table's text gives (`None`: no default).
    fn from_default(text: Option<&'static str>) -> Option<Self>;
}

impl Raw for String {
    fn from_default(text: Option<&'static str>) -> Option<Self> {
        text.map(str::to_owned)
    }
}

impl Raw for PathBuf {
    fn from_default(text: Option<&'static str>) -> Option<Self> {
        text.map(PathBuf::from)
    }
}

impl Raw for usize {
    fn from_default(text: Option<&'static str>) -> Option<Self> {
        text.and_then(|text| text.parse().ok())
    }
}

impl Raw for bool {
    /// A switch is off unless something turns it on.
    fn from_default(text: Option<&'static str>) -> Option<Self> {
        Some(text == Some("true"))
    }
}

impl Raw for Vec<String> {
    /// A list is empty unless given.
    fn from_default(_: Option<&'static str>) -> Option<Self> {
        None
    }
}

impl Raw for Mode {
    /// A run must say whether it checks or migrates.
    fn from_default(_: Option<&'static str>) -> Option<Self> {
        None
    }
}

/// How a resolved value reads in `--print-config` (`None`: as not set).
pub(super) trait Show {
    fn show(&self) -> Option<toml::Value>;
}

fn text(value: impl ToString) -> Option<toml::Value> {
    Some(toml::Value::String(value.to_string()))
}

impl Show for String {
    fn show(&self) -> Option<toml::Value> {
        text(self)
    }
}

impl Show for PathBuf {
    fn show(&self) -> Option<toml::Value> {
        text(self.display())
    }
}

impl Show for Mode {
    fn show(&self) -> Option<toml::Value> {
        text(self.as_str())
    }
}

impl Show for Duration {
    fn show(&self) -> Option<toml::Value> {
        text(humantime::format_duration(*self))
    }
}

impl Show for Rate {
    fn show(&self) -> Option<toml::Value> {
        text(self)
    }
}

impl Show for SocketAddr {
    fn show(&self) -> Option<toml::Value> {
        text(self)
    }
}

impl Show for Url {
    /// A password in the URL is shown as `***`.
    fn show(&self) -> Option<toml::Value> {
        text(redact_url(self))
    }
}

impl Show for usize {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::Integer((*self).try_into().unwrap_or(i64::MAX)))
    }
}

impl Show for bool {
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

impl Show for Vec<String> {
    /// An empty list is no list.
    fn show(&self) -> Option<toml::Value> {
        (!self.is_empty())
            .then(|| toml::Value::Array(self.iter().cloned().map(toml::Value::String).collect()))
    }
}

/// The `--print-config` lines, noted while resolving, in settings-file order.
#[derive(Debug, Default)]
pub(super) struct Sheet(pub(super) Vec<Shown>);

impl Sheet {
    /// The setting `key` from the first layer that has it, checked by `parse` (which gets
    /// the flag's name for its error), and noted. `None`: neither given nor defaulted.
    pub(super) fn optional<R: Raw, T: Show>(
        &mut self,
        key: &'static str,
        flag: &Option<R>,
        file: &Option<R>,
        parse: impl FnOnce(&str, R) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        let default = R::from_default(defaults::of(key));
        let Layered { value, origin } = layer(flag.clone(), file.clone(), default);
        let value = value
            .map(|raw| parse(&format!("--{key}"), raw))
            .transpose()?;
        self.note(key, origin, value.as_ref().and_then(Show::show));
        Ok(value)
    }

    /// [`Sheet::optional`] of a setting that has a default.
    pub(super) fn defaulted<R: Raw, T: Show>(
        &mut self,
        key: &'static str,
        flag: &Option<R>,
        file: &Option<R>,
        parse: impl FnOnce(&str, R) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        self.optional(key, flag, file, parse)?
            .ok_or_else(|| ConfigError::Config(format!("`{key}` has no default")))
    }

    /// One line of `--print-config`.
    pub(super) fn note(&mut self, key: &'static str, origin: Origin, value: Option<toml::Value>) {
        self.0.push(Shown {
            key,
            value,
            origin,
            note: None,
        });
    }
}

/// The raw value as it is: nothing to check.
pub(super) fn given<T>(_: &str, raw: T) -> Result<T, ConfigError> {
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        assert_eq!(layer(Some(1), Some(2), Some(3)).value, Some(1));
        assert_eq!(layer(Some(1), Some(2), Some(3)).origin, Origin::Flag);
        assert_eq!(layer(None, Some(2), Some(3)).value, Some(2));
        assert_eq!(layer(None, Some(2), Some(3)).origin, Origin::File);
        assert_eq!(layer(None, None, Some(3)).value, Some(3));
        assert_eq!(layer(None, None, Some(3)).origin, Origin::Default);
        assert_eq!(layer::<u8>(None, None, None).value, None);
    }

    #[test]
    fn each_layer_is_noted_with_its_origin_and_the_parsed_value() {
        let mut sheet = Sheet::default();
        let flag = Some("2m".to_owned());
        let file = Some("90s".to_owned());
        let parse = |flag: &str, text: String| super::super::values::duration(flag, text);
        let from_flag = sheet.defaulted("poll-max", &flag, &file, parse).unwrap();
        let from_file = sheet.defaulted("poll-max", &None, &file, parse).unwrap();
        let by_default = sheet.defaulted("poll-max", &None, &None, parse).unwrap();
        let unset = sheet.optional("deadline", &None, &None, parse).unwrap();
        assert_eq!(from_flag, Duration::from_secs(120));
        assert_eq!(from_file, Duration::from_secs(90));
        assert_eq!(by_default, Duration::from_secs(60), "the table's 60s");
        assert_eq!(unset, None);
        let shown: Vec<(Option<String>, Origin)> = sheet
            .0
            .iter()
            .map(|shown| (shown.value.as_ref().map(ToString::to_string), shown.origin))
            .collect();
        assert_eq!(
            shown,
            [
                (Some("\"2m\"".into()), Origin::Flag),
                (Some("\"1m 30s\"".into()), Origin::File),
                (Some("\"1m\"".into()), Origin::Default),
                (None, Origin::Default),
            ]
        );
    }

    #[test]
    fn a_bad_value_names_its_flag_and_a_switch_is_off_by_default() {
        let mut sheet = Sheet::default();
        let bad = Some("soon".to_owned());
        let error = sheet
            .optional("deadline", &None, &bad, |flag, text| {
                super::super::values::duration(flag, text)
            })
            .unwrap_err();
        assert!(error.to_string().contains("--deadline"), "{error}");
        let switch = sheet.defaulted("precheck", &None::<bool>, &None, given);
        assert_eq!(switch, Ok(false));
        assert_eq!(
            sheet.0.last().map(|shown| shown.origin),
            Some(Origin::Default)
        );
    }
}
