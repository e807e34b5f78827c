//! How values are spelled in `state.db`: timestamps as fixed-width RFC 3339 UTC text (so
//! they sort as text), modes, outcomes, judgements and task kinds as lower-case words,
//! structured values as JSON text. Reading a column that does not parse is a corrupt record.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Row;
use rusqlite::types::Type;
use serde::de::DeserializeOwned;

use crate::cma::wire::TaskKind;
use crate::vocab::{Judgement, Mode, Outcome};

/// `2026-05-01T02:03:04.123456789Z`: exact (nanoseconds) and sortable as text.
pub(super) fn time_text(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn opt_time_text(time: Option<&DateTime<Utc>>) -> Option<String> {
    time.map(time_text)
}

/// The spelling of a task kind in the `kind` column: `check`, `migrate`.
pub(super) fn kind_text(kind: &TaskKind) -> String {
    kind.response_str()
}

fn bad(column: &str, what: &str, text: &str) -> rusqlite::Error {
    let message = format!("column `{column}`: {what} `{text}`");
    rusqlite::Error::FromSqlConversionFailure(0, Type::Text, message.into())
}

fn parse_time(column: &str, text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| bad(column, "bad timestamp", text))
}

pub(super) fn time(row: &Row<'_>, column: &str) -> rusqlite::Result<DateTime<Utc>> {
    parse_time(column, &row.get::<_, String>(column)?)
}

pub(super) fn opt_time(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<String>>(column)?
        .map(|text| parse_time(column, &text))
        .transpose()
}

pub(super) fn mode(row: &Row<'_>, column: &str) -> rusqlite::Result<Mode> {
    let text: String = row.get(column)?;
    text.parse().map_err(|_| bad(column, "unknown mode", &text))
}

pub(super) fn opt_mode(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<Mode>> {
    opt_word(row, column, "mode", |text| text.parse().ok())
}

pub(super) fn opt_outcome(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<Outcome>> {
    opt_word(row, column, "outcome", Outcome::parse)
}

pub(super) fn opt_judgement(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<Judgement>> {
    opt_word(row, column, "judgement", Judgement::parse)
}

/// A nullable column holding one word of the vocabulary; another word is corrupt.
fn opt_word<T>(
    row: &Row<'_>,
    column: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> rusqlite::Result<Option<T>> {
    row.get::<_, Option<String>>(column)?
        .map(|text| parse(&text).ok_or_else(|| bad(column, &format!("unknown {what}"), &text)))
        .transpose()
}

pub(super) fn kind(row: &Row<'_>, column: &str) -> rusqlite::Result<TaskKind> {
    Ok(TaskKind::parse(&row.get::<_, String>(column)?))
}

pub(super) fn flag(row: &Row<'_>, column: &str) -> rusqlite::Result<bool> {
    Ok(row.get::<_, i64>(column)? != 0)
}

pub(super) fn json<T: DeserializeOwned>(row: &Row<'_>, column: &str) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|error| {
        let message = format!("column `{column}`: bad JSON: {error}");
        rusqlite::Error::FromSqlConversionFailure(0, Type::Text, message.into())
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_text() {
        let whole = Utc.with_ymd_and_hms(2026, 5, 1, 2, 3, 4).unwrap();
        let later = whole + chrono::Duration::nanoseconds(500);
        assert_eq!(time_text(&whole), "2026-05-01T02:03:04.000000000Z");
        assert!(time_text(&whole) < time_text(&later));
        assert_eq!(
            parse_time("t", &time_text(&later)).unwrap(),
            later,
            "exact round trip"
        );
    }

    #[test]
    fn a_bad_timestamp_names_its_column() {
        let error = parse_time("updated_at", "yesterday").unwrap_err();
        assert!(error.to_string().contains("`updated_at`"), "{error}");
    }
}
