//! Layering, written once for every setting: its flag over the settings file over its
//! default from `cli::defaults`. clap has already put a `CMAFLEET_*` variable in its flag's
//! place (a flag given on the command line beats the variable), so a flag's value is either,
//! and `--print-config` says so. The value that wins is parsed, and noted with where it came
//! from for `--print-config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::error::ConfigError;
use super::file::SettingsFile;
use super::print::{Origin, Shown, redact_url};
use crate::cli::defaults;
use crate::fleet::policy::Rate;
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

/// The layers of settings, each in the settings file's shape, and the `--print-config`
/// lines noted while resolving them.
#[derive(Debug)]
pub(super) struct Layers {
    /// The command line (see [`super::flags`]).
    pub(super) flags: SettingsFile,
    /// The `--config` file, or an empty one.
    pub(super) file: SettingsFile,
    /// Every setting resolved so far, in the order resolved (settings-file order).
    shown: Vec<Shown>,
}

impl Layers {
    pub(super) fn new(flags: SettingsFile, file: SettingsFile) -> Layers {
        Layers {
            flags,
            file,
            shown: Vec::new(),
        }
    }

    /// The setting `key` (its field picked by `field`) from the first layer that has it,
    /// checked by `parse` (which gets the flag's name for its error), and noted. `None`:
    /// neither given nor defaulted.
    pub(super) fn optional<R: Raw, T: Show>(
        &mut self,
        key: &'static str,
        field: impl Fn(&SettingsFile) -> &Option<R>,
        parse: impl FnOnce(&str, R) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        let default = R::from_default(defaults::of(key));
        let (flag, file) = (field(&self.flags).clone(), field(&self.file).clone());
        let Layered { value, origin } = layer(flag, file, default);
        let value = value
            .map(|raw| parse(&format!("--{key}"), raw))
            .transpose()?;
        self.note(key, origin, value.as_ref().and_then(Show::show));
        Ok(value)
    }

    /// [`Layers::optional`] of a setting that has a default.
    pub(super) fn defaulted<R: Raw, T: Show>(
        &mut self,
        key: &'static str,
        field: impl Fn(&SettingsFile) -> &Option<R>,
        parse: impl FnOnce(&str, R) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        self.optional(key, field, parse)?
            .ok_or_else(|| ConfigError::Config(format!("`{key}` has no default")))
    }

    /// One line of `--print-config`.
    pub(super) fn note(&mut self, key: &'static str, origin: Origin, value: Option<toml::Value>) {
        self.shown.push(Shown {
            key,
            value,
            origin,
            note: None,
        });
    }

    /// Says `note` after the origin of the line noted last.
    pub(super) fn remark(&mut self, note: String) {
        if let Some(shown) = self.shown.last_mut() {
            shown.note = Some(note);
        }
    }

    pub(super) fn into_shown(self) -> Vec<Shown> {
        self.shown
    }
}

/// The raw value as it is: nothing to check.
pub(super) fn given<T>(_: &str, raw: T) -> Result<T, ConfigError> {
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::super::values::duration;
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

    fn layers(flags: SettingsFile, file: SettingsFile) -> Layers {
        Layers::new(flags, file)
    }

    #[test]
    fn each_layer_is_noted_with_its_origin_and_the_parsed_value() {
        let two_minutes = SettingsFile {
            poll_max: Some("2m".into()),
            ..SettingsFile::default()
        };
        let ninety_seconds = SettingsFile {
            poll_max: Some("90s".into()),
            ..SettingsFile::default()
        };
        let none = SettingsFile::default;
        let poll_max = |layers: &mut Layers| {
            layers
                .defaulted("poll-max", |layer| &layer.poll_max, duration)
                .unwrap()
        };
        let mut from_flag = layers(two_minutes, ninety_seconds.clone());
        let mut from_file = layers(none(), ninety_seconds);
        let mut by_default = layers(none(), none());
        assert_eq!(poll_max(&mut from_flag), Duration::from_secs(120));
        assert_eq!(poll_max(&mut from_file), Duration::from_secs(90));
        assert_eq!(
            poll_max(&mut by_default),
            Duration::from_secs(60),
            "the table's 60s"
        );
        let unset = by_default.optional("deadline", |layer| &layer.deadline, duration);
        assert_eq!(unset, Ok(None));
        let shown: Vec<(Option<String>, Origin)> = [from_flag, from_file, by_default]
            .into_iter()
            .flat_map(Layers::into_shown)
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
        let file = SettingsFile {
            deadline: Some("soon".into()),
            ..SettingsFile::default()
        };
        let mut layers = layers(SettingsFile::default(), file);
        let error = layers
            .optional("deadline", |layer| &layer.deadline, duration)
            .unwrap_err();
        assert!(
            error.to_string().contains("bad --deadline `soon`"),
            "{error}"
        );
        let precheck = layers.defaulted("precheck", |layer| &layer.precheck, given);
        assert_eq!(precheck, Ok(false));
        let shown = layers.into_shown();
        assert_eq!(
            shown.last().map(|shown| shown.origin),
            Some(Origin::Default)
        );
        assert_eq!(
            shown.last().and_then(|shown| shown.value.clone()),
            Some(toml::Value::Boolean(false))
        );
    }
}
