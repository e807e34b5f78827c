//! The schema of `state.db` and its migrations, applied in order on open.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. [`MIGRATIONS`] is the whole
//! history: entry `i` takes the schema from version `i` to version `i + 1`. A later schema
//! change is one more entry at the end of the list; entries already released never change
//! (a state.db in the field was built by them). [`migrate`] applies the missing ones in one
//! transaction, so a store is never left half-migrated, and refuses a store written by a
//! newer cmafleet. `docs/state.md` documents the tables for people who open them.

use rusqlite::{Connection, TransactionBehavior};

use super::error::StateError;

/// Every schema change, oldest first, each the statements run as one batch inside the
/// migration's transaction; the schema version is the number of entries applied.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this cmafleet writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The initial schema: runs, sites, tasks, site_runs, check_results.
const V1: &str = "
CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY,
    mode         TEXT NOT NULL CHECK (mode IN ('check', 'migrate')),
    options      TEXT NOT NULL,
    shard        TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    exit_code    INTEGER,
    counts       TEXT NOT NULL,
    notes        TEXT NOT NULL DEFAULT '[]',
    version      TEXT NOT NULL
);
CREATE INDEX runs_by_mode_start ON runs (mode, started_at);

CREATE TABLE sites (
    site               TEXT PRIMARY KEY,
    job_id             TEXT,
    definition_hash    TEXT,
    job_created_at     TEXT,
    job_intent_at      TEXT,
    cloud_url          TEXT,
    attached_at        TEXT,
    attach_expires_at  TEXT,
    last_mode          TEXT CHECK (last_mode IN ('check', 'migrate')),
    last_outcome       TEXT,
    updated_at         TEXT,
    migrated_at        TEXT
);

CREATE TABLE tasks (
    intent_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    site         TEXT NOT NULL REFERENCES sites (site),
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    job_id       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    intent_at    TEXT NOT NULL,
    task_id      TEXT UNIQUE,
    created_at   TEXT,
    adopted      INTEGER NOT NULL DEFAULT 0 CHECK (adopted IN (0, 1)),
    abandoned    INTEGER NOT NULL DEFAULT 0 CHECK (abandoned IN (0, 1)),
    status       TEXT,
    outcome      TEXT,
    finished_at  TEXT,
    last_tree    TEXT
);
CREATE INDEX tasks_by_site ON tasks (site, intent_id);

CREATE TABLE site_runs (
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    site         TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('check', 'migrate')),
    outcome      TEXT,
    report       TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    PRIMARY KEY (run_id, site)
);
CREATE INDEX site_runs_by_site ON site_runs (site);

CREATE TABLE check_results (
    run_id       TEXT NOT NULL,
    site         TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    status       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    excludable   INTEGER CHECK (excludable IN (0, 1)),
    message      TEXT,
    FOREIGN KEY (run_id, site) REFERENCES site_runs (run_id, site) ON DELETE CASCADE
);
CREATE INDEX check_results_by_run_site ON check_results (run_id, site);
CREATE INDEX check_results_by_check ON check_results (check_name, outcome);
";

/// Without it, `record_site_report`'s `max(seq)` read every site row of the run: quadratic
/// over a run (10,000 sites: about 50 million row visits, most of the run's CPU time).
const V2: &str = "
CREATE INDEX site_runs_by_run_seq ON site_runs (run_id, seq);
";

/// A site's checks are in its report (`site_runs.report`, `$.checks`); the table repeated
/// them as sixteen-odd rows per site with two indexes, about a fifth of a large run's store
/// writes. The view keeps the table's name and columns for queries (`excludable` is 1, 0 or
/// NULL as before) and shows the checks of every report already recorded.
const V3: &str = "
DROP TABLE check_results;
CREATE VIEW check_results (run_id, site, check_name, status, outcome, excludable, message) AS
SELECT site_runs.run_id, site_runs.site,
       json_extract(checks.value, '$.name'), json_extract(checks.value, '$.status'),
       json_extract(checks.value, '$.outcome'), json_extract(checks.value, '$.excludable'),
       json_extract(checks.value, '$.message')
  FROM site_runs, json_each(site_runs.report, '$.checks') AS checks;
";

/// `runs.surprises`: the answers outside the API model a run met, each kind and value once.
const V4: &str = "
ALTER TABLE runs ADD COLUMN surprises TEXT NOT NULL DEFAULT '[]';
";

/// `tasks.apps_pending`: a Migrate task whose core finished while apps still migrated,
/// followed up by later runs.
const V5: &str = "
ALTER TABLE tasks ADD COLUMN apps_pending INTEGER NOT NULL DEFAULT 0;
";

/// A task's outcome as the service said it (`SUCCESS`, `FAILED`, or a word cmafleet does not
/// know) and cmafleet's judgement of the task (`succeeded`, `warnings`, `blocked`, `failed`)
/// shared `tasks.outcome`, the later write replacing the earlier, so a reader could not tell
/// which it had. They become two columns; the judgement holds only its four words. An old
/// value that is one of those words was a judgement (the service spells its outcomes in
/// capitals); anything else was the service's.
const V6: &str = "
ALTER TABLE tasks RENAME COLUMN outcome TO service_outcome;
ALTER TABLE tasks ADD COLUMN judgement TEXT
    CHECK (judgement IN ('succeeded', 'warnings', 'blocked', 'failed'));
UPDATE tasks SET judgement = service_outcome, service_outcome = NULL
 WHERE service_outcome IN ('succeeded', 'warnings', 'blocked', 'failed');
";

/// The schema version recorded in the open database.
pub(super) fn version(conn: &Connection, path: &str) -> Result<i64, StateError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| StateError::sqlite(path, source))
}

/// Refuses a store written by a newer cmafleet.
pub(super) fn ensure_not_newer(found: i64, path: &str) -> Result<(), StateError> {
    if found > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`]: every missing migration, and the new version
/// number, in one immediate transaction (a concurrent opener waits, then finds it done).
/// Returns the version found before migrating.
pub(super) fn migrate(conn: &mut Connection, path: &str) -> Result<i64, StateError> {
    let found = version(conn, path)?;
    ensure_not_newer(found, path)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    let sqlite = |source| StateError::sqlite(path, source);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let found = version(&tx, path)?;
    ensure_not_newer(found, path)?;
    for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(sql).map_err(sqlite)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sqlite)?;
    tx.commit().map_err(sqlite)?;
    Ok(found)
}

/// A database as a cmafleet of schema `version` left it (tests of the migrations after it).
#[cfg(test)]
pub(super) fn create_at_version(conn: &Connection, version: usize) {
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql).expect("an earlier schema applies");
    }
    let version = i64::try_from(version).expect("a schema version");
    conn.pragma_update(None, "user_version", version)
        .expect("user_version is set");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrating_an_empty_database_creates_every_table_and_sets_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, "mem").unwrap(), 0);
        assert_eq!(version(&conn, "mem").unwrap(), SCHEMA_VERSION);
        assert_eq!(table_names(&conn), ["runs", "site_runs", "sites", "tasks"]);
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "mem").unwrap();
        conn.execute("INSERT INTO sites (site) VALUES ('kept')", [])
            .unwrap();
        assert_eq!(migrate(&mut conn, "mem").unwrap(), SCHEMA_VERSION);
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM sites", [], |row| row.get(0))
            .unwrap();
        assert_eq!(kept, 1);
    }

    #[test]
    fn a_database_from_a_newer_cmafleet_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = migrate(&mut conn, "/x/state.db").unwrap_err();
        assert!(
            matches!(error, StateError::TooNew { found, supported, .. }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{error:?}"
        );
        assert!(error.to_string().contains("/x/state.db"), "{error}");
        assert!(table_names(&conn).is_empty());
    }

    #[test]
    fn a_version_1_store_gains_the_seq_index_and_keeps_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (run_id, mode, options, started_at, counts, version) \
             VALUES ('r1', 'check', '{}', '2026-01-01T00:00:00.000000Z', '{}', '0.1.0');
             INSERT INTO site_runs (run_id, site, seq, mode, report) VALUES ('r1', 'a', 1, 'check', '{}');",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn, "mem").unwrap(), 1);
        assert_eq!(version(&conn, "mem").unwrap(), SCHEMA_VERSION);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM site_runs", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        // The next site's number is found through the index, not by reading the run's rows.
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT coalesce(max(seq), 0) + 1 FROM site_runs WHERE run_id = 'r1'",
            )
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("site_runs_by_run_seq")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_version_2_store_shows_the_checks_of_its_reports_through_the_view() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        let report = serde_json::json!({
            "site": "a",
            "checks": [
                { "name": "Users", "status": "FINISHED", "outcome": "FAILED",
                  "message": "2 duplicates", "excludable": true },
                { "name": "Apps", "status": "FINISHED", "outcome": "SUCCESS" },
            ],
        });
        conn.execute(
            "INSERT INTO runs (run_id, mode, options, started_at, counts, version) \
             VALUES ('r1', 'check', '{}', '2026-01-01T00:00:00.000000Z', '{}', '0.1.0')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO site_runs (run_id, site, seq, mode, report) VALUES ('r1', 'a', 1, 'check', ?1)",
            [report.to_string()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO check_results (run_id, site, check_name, status, outcome, excludable, message) \
             VALUES ('r1', 'a', 'Users', 'FINISHED', 'FAILED', 1, '2 duplicates'), \
                    ('r1', 'a', 'Apps', 'FINISHED', 'SUCCESS', NULL, NULL);",
        )
        .unwrap();
        let rows = |conn: &Connection| -> Vec<String> {
            conn.prepare(
                "SELECT site, check_name, outcome, excludable, message FROM check_results \
                 WHERE run_id = 'r1' ORDER BY check_name",
            )
            .unwrap()
            .query_map([], |row| {
                let (excludable, message): (Option<i64>, Option<String>) =
                    (row.get(3)?, row.get(4)?);
                Ok(format!(
                    "{} {} {} {excludable:?} {message:?}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let before = rows(&conn);
        assert_eq!(migrate(&mut conn, "mem").unwrap(), 2);
        assert_eq!(rows(&conn), before);
        assert_eq!(
            before,
            [
                "a Apps SUCCESS None None",
                "a Users FAILED Some(1) Some(\"2 duplicates\")"
            ]
        );
    }

    #[test]
    fn a_version_5_store_splits_task_outcomes_into_the_services_word_and_the_judgement() {
        let mut conn = Connection::open_in_memory().unwrap();
        create_at_version(&conn, 5);
        conn.execute_batch(
            "INSERT INTO runs (run_id, mode, options, started_at, counts, version) \
             VALUES ('r1', 'migrate', '{}', '2026-01-01T00:00:00.000000Z', '{}', '0.1.0');
             INSERT INTO sites (site) VALUES ('a');",
        )
        .unwrap();
        let old = [
            Some("succeeded"),
            Some("warnings"),
            Some("blocked"),
            Some("failed"),
            Some("SUCCESS"),
            Some("FAILED"),
            Some("SOMETHING_NEW"),
            None,
        ];
        for (intent, outcome) in (1..).zip(old) {
            conn.execute(
                "INSERT INTO tasks (intent_id, site, run_id, job_id, kind, intent_at, task_id, \
                 status, outcome) VALUES (?1, 'a', 'r1', 'j1', 'migrate', \
                 '2026-01-01T00:00:00.000000Z', 't' || ?1, 'FINISHED', ?2)",
                rusqlite::params![intent, outcome],
            )
            .unwrap();
        }
        assert_eq!(migrate(&mut conn, "mem").unwrap(), 5);
        assert_eq!(version(&conn, "mem").unwrap(), SCHEMA_VERSION);
        let rows: Vec<(Option<String>, Option<String>, String)> = conn
            .prepare("SELECT service_outcome, judgement, status FROM tasks ORDER BY intent_id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let word = |text: &str| Some(text.to_owned());
        let finished = "FINISHED".to_owned();
        assert_eq!(
            rows,
            [
                (None, word("succeeded"), finished.clone()),
                (None, word("warnings"), finished.clone()),
                (None, word("blocked"), finished.clone()),
                (None, word("failed"), finished.clone()),
                (word("SUCCESS"), None, finished.clone()),
                (word("FAILED"), None, finished.clone()),
                (word("SOMETHING_NEW"), None, finished.clone()),
                (None, None, finished),
            ]
        );
        assert!(
            conn.prepare("SELECT outcome FROM tasks").is_err(),
            "the shared column is gone"
        );
        let error = conn
            .execute(
                "UPDATE tasks SET judgement = 'skipped' WHERE intent_id = 8",
                [],
            )
            .unwrap_err();
        assert!(error.to_string().contains("CHECK"), "{error}");
    }

    #[test]
    fn a_failing_migration_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table in the way of the first migration: its CREATE fails mid-batch.
        conn.execute_batch("CREATE TABLE tasks (x)").unwrap();
        assert!(migrate(&mut conn, "mem").is_err());
        assert_eq!(version(&conn, "mem").unwrap(), 0);
        assert_eq!(table_names(&conn), ["tasks"]);
    }
}
