//! Exit codes, as documented constants (the README's "Exit codes" table says the same).
//! `main` is the only place that turns them into a process exit.

/// Every selected site is `succeeded`, `warnings` or `skipped`.
pub const OK: u8 = 0;
/// The run completed and at least one site is `failed` or `blocked`.
pub const SITES_FAILED: u8 = 1;
/// Usage error (bad flags).
pub const USAGE: u8 = 2;
/// The run ended with sites `detached` — the deadline passed, or their status could not be
/// read — still running remotely and resumed by the next run: a normal night of a long
/// migration, not a failure (and not the lock: that is 75).
pub const DETACHED: u8 = 3;
/// `validate --online`: at least one row failed a live check.
pub const ONLINE_CHECK_FAILED: u8 = 4;
/// Inventory data error (validation failed).
pub const DATA: u8 = 65;
/// Cannot create or write the state dir or report dir.
pub const CANT_CREATE: u8 = 73;
/// Temporary: another run holds the lock; nothing was done (try later).
pub const TEMP_FAIL: u8 = 75;
/// Configuration error (a secret reference that does not resolve, a bad rate string).
pub const CONFIG: u8 = 78;
/// Interrupted by SIGINT.
pub const INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM.
pub const TERMINATED: u8 = 143;

/// The table shown at the end of `--help` and in the README.
pub const HELP_TABLE: &str = "\
Exit codes:
  0    every selected site succeeded, finished with warnings, or was skipped
  1    the run completed and at least one site is failed or blocked
  2    usage error (bad flags)
  3    the deadline (or an unreadable status) left sites detached: resumable, the next run goes on
  4    validate --online: at least one row failed a live check
  65   inventory data error (validation failed)
  73   cannot create or write the state dir or report dir (status, runs, report: no readable
       state store there)
  75   temporary: another run holds the lock; nothing was done (try later)
  78   configuration error (unresolvable secret reference, bad rate string, …)
  130  interrupted by SIGINT
  143  terminated by SIGTERM";
