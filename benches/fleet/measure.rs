//! Measuring one process alone: `cmafleet run` is started through this bench binary itself
//! (re-executed as a wrapper whose only child it is), so the wrapper's
//! `getrusage(RUSAGE_CHILDREN)` is exactly that process's CPU time and peak RSS. The
//! long-lived simulator is read from `/proc` while it runs instead.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use serde::{Deserialize, Serialize};

/// The first argument that makes this binary a wrapper.
pub const WRAPPER_ARG: &str = "__measure";

/// What one measured process did and cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub code: i32,
    /// From spawn to exit, process start included.
    pub wall: Duration,
    pub user: Duration,
    pub system: Duration,
    /// Peak resident set size, bytes.
    pub max_rss: u64,
}

impl Measured {
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// The wrapper: `__measure STDOUT STDERR PROGRAM ARGS…` runs the program with its output in
/// the two files and prints one JSON [`Measured`] line. Returns the wrapper's exit code.
pub fn wrapper(args: &[String]) -> i32 {
    let [stdout, stderr, program, rest @ ..] = args else {
        eprintln!("usage: fleet {WRAPPER_ARG} STDOUT STDERR PROGRAM [ARGS…]");
        return 2;
    };
    let open = |path: &str| {
        std::fs::File::create(path).unwrap_or_else(|error| panic!("create {path}: {error}"))
    };
    let started = Instant::now();
    let status = std::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(open(stdout))
        .stderr(open(stderr))
        .status();
    let wall = started.elapsed();
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            eprintln!("failed to start {program}: {error}");
            return 1;
        }
    };
    let usage = match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => usage,
        Err(error) => {
            eprintln!("failed to read the child's resource usage: {error}");
            return 1;
        }
    };
    let micros = |time: nix::sys::time::TimeVal| {
        Duration::from_micros(
            u64::try_from(time.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(time.tv_usec()).unwrap_or(0),
        )
    };
    let measured = Measured {
        code: status.code().unwrap_or(-1),
        wall,
        user: micros(usage.user_time()),
        system: micros(usage.system_time()),
        // Linux reports ru_maxrss in KiB.
        max_rss: u64::try_from(usage.max_rss()).unwrap_or(0) * 1024,
    };
    println!(
        "{}",
        serde_json::to_string(&measured).expect("serialise the measurement")
    );
    0
}

/// Runs `program args` through the wrapper; its output lands in `dir/{name}.out|.err`.
pub async fn run(
    dir: &Path,
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> Measured {
    let wrapper = std::env::current_exe().expect("the bench binary's path");
    let out = dir.join(format!("{name}.out"));
    let err = dir.join(format!("{name}.err"));
    let output = tokio::process::Command::new(wrapper)
        .arg(WRAPPER_ARG)
        .arg(&out)
        .arg(&err)
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the measuring wrapper runs");
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|error| {
        panic!(
            "the wrapper said {line:?} ({error}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// CPU time and peak memory of a live process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcUsage {
    pub cpu: Duration,
    /// `VmHWM`, bytes.
    pub peak_rss: u64,
}

impl ProcUsage {
    pub fn read(pid: u32) -> ProcUsage {
        // utime and stime (every thread), the 14th and 15th fields of /proc/PID/stat, in
        // clock ticks of USER_HZ, which Linux fixes at 100 for userspace.
        let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|text| {
                let after_name = text.rsplit_once(')')?.1;
                let fields: Vec<&str> = after_name.split_whitespace().collect();
                let ticks =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some(Duration::from_millis(ticks * 10))
            })
            .unwrap_or_default();
        let peak_rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
                    .and_then(|value| {
                        value
                            .trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<u64>()
                            .ok()
                    })
            })
            .map_or(0, |kib| kib * 1024);
        ProcUsage { cpu, peak_rss }
    }
}

/// Sends SIGTERM to a process the bench started.
pub fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}
