//! How a command's fatal error reaches a person: the `error: …` line on stderr as always, and
//! — when stdout is another file (cron mails stdout while stderr goes to a log file, systemd
//! and CI capture both) — on stdout too, so a broken night is never silent. With
//! `--log-format json` both are one JSON object (`level` `ERROR`, the `message`, the
//! `exit_code`), like every other log line.

use std::io::Write as _;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use crate::cli::LogFormat;

/// The log format the command runs with (set once by `logging::init`). It lives here, below
/// both logging and the progress lines, so that all three read it without importing one
/// another.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Records the log format fatal errors are written in.
pub(crate) fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
}

/// Whether log lines are JSON objects (`--log-format json`): progress lines that say their
/// numbers in words add them as fields only then.
pub(crate) fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Says a fatal error, ending with exit `code`: on stderr, and on stdout when that is not the
/// same file. Writes to a closed stream are ignored (the exit code still tells).
pub fn report(code: u8, message: &str) {
    let line = match FORMAT.get() {
        Some(LogFormat::Json) => json_line(code, message),
        _ => format!("error: {message}"),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
    if !stdout_is_stderr() {
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}

fn json_line(code: u8, message: &str) -> String {
    serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": "ERROR",
        "target": "cmafleet",
        "message": message,
        "exit_code": code,
    })
    .to_string()
}

/// Whether stdout and stderr are the same open file (a terminal, `2>&1`): the line is then
/// said once.
fn stdout_is_stderr() -> bool {
    let stat = |fd: std::os::fd::BorrowedFd<'_>| nix::sys::stat::fstat(fd).ok();
    match (
        stat(std::io::stdout().as_fd()),
        stat(std::io::stderr().as_fd()),
    ) {
        (Some(out), Some(err)) => out.st_dev == err.st_dev && out.st_ino == err.st_ino,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_fatal_error_is_one_object_with_its_exit_code() {
        let line = json_line(78, "secret env:X is not set");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["message"], "secret env:X is not set");
        assert_eq!(value["exit_code"], 78);
        assert!(!line.contains('\n'));
    }
}
