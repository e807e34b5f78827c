//! What commands print on stdout, and a reader that stops reading. `cmafleet plan … | head -1`,
//! `cmafleet man | head`: once the reader has closed the pipe, the rest of the output is
//! dropped quietly and the command ends with the exit code it would have had anyway (0 for a
//! command that only prints; a run's own code for `run`) — never a panic, never SIGPIPE's 141.
//! Rust ignores SIGPIPE, so a write to a closed pipe is an `EPIPE` error, handled here.
//! Another failure to write (a full disk behind a redirection) is exit 73.

use std::io::{self, Write};

use crate::exit;

/// Writes `text` to stdout and flushes it; a closed pipe is not an error.
pub fn write(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A command's output: `code` once written (or once the reader closed the pipe), 73 with an
/// error when stdout cannot be written.
pub fn print(text: &str, code: u8) -> u8 {
    match write(text) {
        Ok(()) => code,
        Err(error) => {
            crate::fatal::report(
                exit::CANT_CREATE,
                &format!("cannot write to stdout: {error}"),
            );
            exit::CANT_CREATE
        }
    }
}

/// A line said along the way (a run's summary, the demo's narration): written if it can be;
/// it never changes the command's outcome.
pub fn say(text: &str) {
    if let Err(error) = write(text) {
        tracing::debug!("cannot write to stdout: {error}");
    }
}

/// `println!` that never panics: [`say`] with a line end.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::say("\n")
    };
    ($($arg:tt)*) => {
        $crate::stdout::say(&format!("{}\n", format_args!($($arg)*)))
    };
}
