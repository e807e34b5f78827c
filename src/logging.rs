//! Log lines on stderr: which ones (`-q`, `-v`, `-vv`, `RUST_LOG`), and how they look — text
//! for people (colour only on a terminal) or JSON for log shippers, one object per line with
//! `timestamp`, `level`, `target`, `message`, the fields of the enclosing spans flattened
//! (`site`, `stage`, `shard`) and the event's own fields.
//!
//! Secrets never reach this module: they live in `Secret`, whose `Debug`/`Display` print
//! `***`, and the HTTP client marks `Authorization` headers sensitive. HTTP-level
//! dependencies are capped at `info` unless `RUST_LOG` names them (see [`filter`]): their
//! trace output is connection bookkeeping, thousands of lines per minute in a large run.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::LogFormat;
use crate::progress::LogWriter;

/// Crates whose debug and trace lines are connection bookkeeping, capped at `info` unless
/// `RUST_LOG` names them.
pub const CAPPED: [&str; 6] = ["hyper", "hyper_util", "h2", "reqwest", "rustls", "tower"];

/// How much to log, from the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verbosity {
    /// `-q`: warnings and errors only.
    pub quiet: bool,
    /// `-v` (debug of cmafleet), `-vv` (trace of cmafleet).
    pub verbose: u8,
}

/// The filter: `RUST_LOG` when set (and valid), else the level from `-q`/`-v`; in both cases
/// the [`CAPPED`] crates the directives do not name stay at `info`.
pub fn filter(rust_log: Option<&str>, verbosity: Verbosity) -> EnvFilter {
    let default = if verbosity.quiet {
        "warn"
    } else {
        match verbosity.verbose {
            0 => "info",
            1 => "info,cmafleet=debug",
            _ => "debug,cmafleet=trace",
        }
    };
    let directives = rust_log
        .map(str::trim)
        .filter(|text| !text.is_empty() && EnvFilter::try_new(text).is_ok())
        .unwrap_or(default);
    let mut all = directives.to_owned();
    for name in CAPPED {
        let named = directives.split(',').any(|directive| {
            let target = directive.split(['=', '[']).next().unwrap_or_default();
            target == name || target.starts_with(&format!("{name}::"))
        });
        if !named {
            all.push_str(&format!(",{name}=info"));
        }
    }
    EnvFilter::try_new(&all).unwrap_or_else(|_| EnvFilter::new(default))
}

/// Installs the global subscriber: `format` on stderr (through the live view's
/// [`LogWriter`]), ANSI colour only when stderr is a terminal and `NO_COLOR` is unset.
pub fn init(format: LogFormat, verbosity: Verbosity) {
    crate::fatal::set_format(format);
    let rust_log = std::env::var("RUST_LOG").ok();
    if let Some(text) = rust_log.as_deref()
        && !text.trim().is_empty()
        && let Err(error) = EnvFilter::try_new(text)
    {
        eprintln!("warning: ignoring RUST_LOG `{text}`: {error}");
    }
    let filter = filter(rust_log.as_deref(), verbosity);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(SpanFields)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(LogWriter),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(SpanFields)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(TextLines { ansi })
                    .with_writer(LogWriter),
            )
            .try_init(),
    };
    if let Err(error) = result {
        eprintln!("warning: logging is not set up: {error}");
    }
}

/// Keeps each span's fields as JSON values (in the span's extensions) for [`JsonLines`].
pub struct SpanFields;

/// The recorded fields of one span.
struct Recorded(Map<String, Value>);

impl<S> tracing_subscriber::Layer<S> for SpanFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        span.extensions_mut().insert(Recorded(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(Recorded(fields)) = extensions.get_mut::<Recorded>() {
            values.record(&mut JsonVisitor(fields));
        }
    }
}

/// One JSON object per line.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut object = Map::new();
        object.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        object.insert("level".into(), Value::String(metadata.level().to_string()));
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let target = bridged_target(&mut fields).unwrap_or_else(|| metadata.target().to_owned());
        object.insert("target".into(), Value::String(target));
        let message = fields
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        object.insert("message".into(), message);
        // Outer spans first, so an inner span's field wins over an outer one of the same name.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(Recorded(recorded)) = span.extensions().get::<Recorded>() {
                    for (key, value) in recorded {
                        object.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        // The event's own fields win over its spans'; the line's own keys win over both.
        for (key, value) in fields {
            if !matches!(key.as_str(), "timestamp" | "level" | "target" | "message") {
                object.insert(key, value);
            }
        }
        let line = serde_json::to_string(&object).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// One line for people: `TIMESTAMP LEVEL site=… stage=…: message key=value…`, the level in
/// colour when `ansi`.
pub struct TextLines {
    pub ansi: bool,
}

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (colour, reset, dim) = if self.ansi {
            let colour = match level {
                tracing::Level::ERROR => "\x1b[31m",
                tracing::Level::WARN => "\x1b[33m",
                tracing::Level::INFO => "\x1b[32m",
                tracing::Level::DEBUG => "\x1b[34m",
                tracing::Level::TRACE => "\x1b[35m",
            };
            (colour, "\x1b[0m", "\x1b[2m")
        } else {
            ("", "", "")
        };
        write!(writer, "{dim}{stamp}{reset} {colour}{level:>5}{reset} ")?;
        let mut context = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(Recorded(recorded)) = span.extensions().get::<Recorded>() {
                    context.extend(recorded.clone());
                }
            }
        }
        if !context.is_empty() {
            let pairs: Vec<String> = context.iter().map(|(k, v)| pair(k, v)).collect();
            write!(writer, "{}: ", pairs.join(" "))?;
        }
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        bridged_target(&mut fields);
        if let Some(message) = fields.remove("message") {
            match message {
                Value::String(text) => write!(writer, "{text}")?,
                other => write!(writer, "{other}")?,
            }
        }
        for (key, value) in &fields {
            write!(writer, " {dim}{}{reset}", pair(key, value))?;
        }
        writeln!(writer)
    }
}

/// Lines of crates that use `log` (bridged into tracing) carry their origin in `log.*`
/// fields and the target `log`: takes those fields out, and returns the real target.
fn bridged_target(fields: &mut Map<String, Value>) -> Option<String> {
    let target = match fields.remove("log.target") {
        Some(Value::String(target)) => Some(target),
        _ => None,
    };
    fields.retain(|key, _| !key.starts_with("log."));
    target
}

/// `key=value`, the value quoted when it has spaces, quotes or `=` (or is empty).
fn pair(key: &str, value: &Value) -> String {
    match value {
        Value::String(text)
            if text.is_empty()
                || text.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') =>
        {
            format!("{key}={text:?}")
        }
        Value::String(text) => format!("{key}={text}"),
        other => format!("{key}={other}"),
    }
}

/// Records fields as JSON values: numbers and booleans as such, everything else as text.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_owned(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A writer that keeps what was written.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn json_lines(emit: impl FnOnce()) -> Vec<Value> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(SpanFields).with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(captured.clone()),
        );
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn json_lines_carry_span_fields_at_the_top_level() {
        let lines = json_lines(|| {
            let shard = tracing::info_span!("run", shard = "1/4");
            let _run = shard.enter();
            let site =
                tracing::info_span!("site", site = "acme-jira", stage = tracing::field::Empty);
            let _site = site.enter();
            tracing::info!("admitted");
            site.record("stage", "check");
            tracing::warn!(attempt = 2, ready = false, "retrying \"status\"");
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "admitted");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["site"], "acme-jira");
        assert_eq!(lines[0]["shard"], "1/4");
        assert!(lines[0].get("stage").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["stage"], "check");
        assert_eq!(lines[1]["attempt"], 2);
        assert_eq!(lines[1]["ready"], false);
        assert_eq!(lines[1]["message"], "retrying \"status\"");
        let stamp = lines[1]["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
    }

    #[test]
    fn text_lines_show_the_current_stage_once() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(SpanFields).with(
            tracing_subscriber::fmt::layer()
                .event_format(TextLines { ansi: false })
                .with_writer(captured.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let site =
                tracing::info_span!("site", site = "acme-jira", stage = tracing::field::Empty);
            let _site = site.enter();
            site.record("stage", "job");
            site.record("stage", "check");
            tracing::info!(endpoint = "GET /jobs/{jobId}", attempt = 2, "retrying");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text.trim_end();
        assert!(
            line.ends_with(
                "INFO site=acme-jira stage=check: retrying attempt=2 endpoint=\"GET /jobs/{jobId}\""
            ),
            "{line}"
        );
        assert!(!line.contains('\x1b'), "no colour off a terminal: {line:?}");
    }

    #[test]
    fn lines_bridged_from_log_name_their_real_target() {
        let lines = json_lines(|| {
            tracing::info!(
                target: "log",
                { log.target = "reqwest::connect", log.module_path = "reqwest::connect", log.line = 929u64 },
                "starting new connection"
            );
        });
        assert_eq!(lines[0]["target"], "reqwest::connect");
        let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
        assert!(keys.iter().all(|key| !key.starts_with("log.")), "{keys:?}");
    }

    #[test]
    fn an_event_field_cannot_replace_the_line_keys() {
        let lines = json_lines(|| tracing::info!(level = "spoofed", "real"));
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "real");
    }

    #[test]
    fn the_filter_follows_the_flags_and_caps_http_crates() {
        let text =
            |rust_log, quiet, verbose| filter(rust_log, Verbosity { quiet, verbose }).to_string();
        let default = text(None, false, 0);
        assert!(
            default.contains("info") && !default.contains("debug"),
            "{default}"
        );
        let quiet = text(None, true, 0);
        assert!(quiet.contains("warn"), "{quiet}");
        let trace = text(Some("trace"), false, 0);
        assert!(trace.contains("hyper=info"), "{trace}");
        assert!(trace.contains("reqwest=info"), "{trace}");
        let named = text(Some("trace,reqwest=debug"), false, 0);
        assert!(
            named.contains("reqwest=debug") && !named.contains("reqwest=info"),
            "{named}"
        );
        let verbose = text(None, false, 2);
        assert!(verbose.contains("cmafleet=trace"), "{verbose}");
        let invalid = text(Some("=[bad"), false, 0);
        assert!(invalid.contains("info"), "{invalid}");
    }
}
