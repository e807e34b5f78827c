//! A real headless browser for tests: Debian's Chromium (or Chrome) run once per page,
//! returning the screenshot it took and every console message the page produced.
//!
//! Console messages are read from Chromium's own log (`--enable-logging=stderr`), where each
//! one — `console.*` calls, uncaught exceptions, Content-Security-Policy violations, blocked
//! loads — appears as an `INFO:CONSOLE…] "text", source: url (line)` line. The log does not
//! say which were errors, so [`Page::console`] holds them all: a page that should be silent
//! is asserted to produce none.
//!
//! Without a browser, [`Browser::find`] prints a loud notice and returns `None` so the test
//! can return early — unless `CI=true`, where a missing browser is a failure.

// Shared by several tests of the one test binary; not every test uses every helper.
#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Names tried on `PATH`, in order.
const PROGRAMS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// One browser executable found on this machine.
pub struct Browser {
    program: PathBuf,
    /// How long one page may take before the browser is killed and the test fails.
    timeout: Duration,
    /// Lets timers and network requests of the page run for this long (virtual time) before
    /// the screenshot — for pages that fetch or animate after load. `None`: shoot on load.
    virtual_time: Option<Duration>,
}

/// What one visit to a page produced.
pub struct Page {
    /// The screenshot the checks read: the browser's own file, in a directory of this test's
    /// (two test runs at once must not read each other's half-written picture).
    pub screenshot: PathBuf,
    /// Where a copy is kept for people to look at (shared by every run of the test).
    pub kept: PathBuf,
    _private: tempfile::TempDir,
    /// Every console message, one line each (see the module doc).
    pub console: Vec<String>,
    /// The browser's whole log, for failure messages.
    pub log: String,
}

impl Browser {
    /// The first browser on `PATH`; `None` (after a loud notice) when there is none, except
    /// under `CI=true`, where that panics. `test` names the caller in the notice.
    pub fn find(test: &str) -> Option<Browser> {
        let found = PROGRAMS.iter().find_map(|name| on_path(name));
        match found {
            Some(program) => Some(Browser {
                program,
                timeout: Duration::from_secs(90),
                virtual_time: None,
            }),
            None if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
                "{test}: no headless browser found (tried {PROGRAMS:?}); CI must install \
                 Debian's chromium (apt-get install chromium)"
            ),
            None => {
                eprintln!(
                    "\n*** SKIPPED {test}: no headless browser found (tried {PROGRAMS:?}).\n\
                     *** Install one to run it: apt-get install chromium\n"
                );
                None
            }
        }
    }

    /// Let the page run for `budget` of virtual time before the screenshot.
    pub fn with_virtual_time(mut self, budget: Duration) -> Browser {
        self.virtual_time = Some(budget);
        self
    }

    /// Opens `url` in a fresh profile in a `width`×`height` window, saves a PNG screenshot
    /// of the viewport to `screenshot`, and returns it with the page's console messages.
    /// Panics if the browser fails, hangs past the timeout, or writes no screenshot.
    pub fn screenshot(&self, url: &str, screenshot: &Path, (width, height): (u32, u32)) -> Page {
        let private = tempfile::tempdir().expect("temp dir for the screenshot");
        let taken = private.path().join("screenshot.png");
        let visit = self.visit(
            url,
            &[
                format!("--window-size={width},{height}"),
                format!("--screenshot={}", taken.display()),
            ],
        );
        assert!(
            taken.is_file(),
            "{} wrote no screenshot for {url}; log:\n{}",
            self.program.display(),
            visit.log
        );
        if let Some(parent) = screenshot.parent() {
            std::fs::create_dir_all(parent).expect("screenshot dir");
        }
        std::fs::copy(&taken, screenshot).expect("screenshot kept");
        Page {
            screenshot: taken,
            kept: screenshot.to_path_buf(),
            _private: private,
            console: visit.console,
            log: visit.log,
        }
    }

    /// [`Browser::screenshot`] of a page that must have rendered styled and silently: no
    /// console message, the window's size, more than `min_colours` distinct colours and no
    /// colour over `max_dominant` of the picture (a blank or unstyled page has a handful of
    /// colours and is mostly background).
    pub fn screenshot_rendered(
        &self,
        url: &str,
        screenshot: &Path,
        size: (u32, u32),
        (min_colours, max_dominant): (usize, f64),
    ) {
        let page = self.screenshot(url, screenshot, size);
        assert!(
            page.console.is_empty(),
            "{url} wrote to the console:\n{}\n\nfull log:\n{}",
            page.console.join("\n"),
            page.log
        );
        let picture = Picture::open(&page.screenshot);
        assert_eq!((picture.width, picture.height), size);
        assert!(
            picture.distinct_colours > min_colours,
            "only {} colours in {}",
            picture.distinct_colours,
            page.kept.display()
        );
        assert!(
            picture.dominant_share < max_dominant,
            "{:.0}% of {} is one colour",
            picture.dominant_share * 100.0,
            page.kept.display()
        );
        eprintln!("screenshot: {}", page.kept.display());
    }

    /// The page's DOM after its scripts ran (`--dump-dom`), with its console messages.
    pub fn dom(&self, url: &str) -> (String, Vec<String>) {
        let visit = self.visit(url, &["--dump-dom".to_owned()]);
        (visit.stdout, visit.console)
    }

    /// Opens the page `html` in a `width`×`height` window with `probe` appended — a script
    /// run after the page's own, admitted by the page's Content-Security-Policy like them —
    /// and returns what the probe left as JSON text in a `<pre id="probe">`, with the
    /// page's console messages. The page is written to `dir` as `report.html`.
    pub fn probe(
        &self,
        dir: &Path,
        html: &str,
        probe: &str,
        (width, height): (u32, u32),
    ) -> (serde_json::Value, Vec<String>) {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(probe));
        assert!(html.contains("script-src "), "the page has a script policy");
        let page = html
            .replacen("script-src ", &format!("script-src 'sha256-{hash}' "), 1)
            .replacen("</body>", &format!("<script>{probe}</script></body>"), 1);
        let path = dir.join("report.html");
        std::fs::write(&path, page).expect("page written");
        let visit = self.visit(
            &file_url(&path),
            &[
                format!("--window-size={width},{height}"),
                "--dump-dom".to_owned(),
            ],
        );
        let open = "<pre id=\"probe\">";
        let Some(start) = visit.stdout.find(open) else {
            panic!(
                "the probe left nothing (console: {:?}); log:\n{}",
                visit.console, visit.log
            )
        };
        let text = &visit.stdout[start + open.len()..];
        let text = &text[..text.find("</pre>").expect("probe output closed")];
        let json = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        let value = serde_json::from_str(&json)
            .unwrap_or_else(|error| panic!("probe output is not JSON ({error}): {json}"));
        (value, visit.console)
    }

    fn visit(&self, url: &str, extra: &[String]) -> Visit {
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");
        let mut command = Command::new(&self.program);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
                "--enable-logging=stderr",
                "--v=0",
                // Belt and braces for "no network": names other than localhost resolve nowhere.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra);
        if let Some(budget) = self.virtual_time {
            command.arg(format!("--virtual-time-budget={}", budget.as_millis()));
        }
        // Files rather than pipes: a chatty browser can never block on a full pipe.
        let log_path = profile.path().join("browser.log");
        let out_path = profile.path().join("browser.out");
        command
            .arg(url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("browser stdout file"))
            .stderr(std::fs::File::create(&log_path).expect("browser log file"));
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.program.display()));

        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("browser status") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish {url} within {:?}; log:\n{}",
                    self.program.display(),
                    self.timeout,
                    read(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = read(&log_path);
        assert!(
            status.success(),
            "{} exited with {status} on {url}; log:\n{log}",
            self.program.display()
        );
        let console = log
            .lines()
            .filter(|line| line.contains(":CONSOLE") || line.contains("Uncaught"))
            .map(str::to_owned)
            .collect();
        Visit {
            stdout: read(&out_path),
            console,
            log,
        }
    }
}

/// What one browser process left behind.
struct Visit {
    stdout: String,
    console: Vec<String>,
    log: String,
}

/// `file://` URL of a local file.
pub fn file_url(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).expect("page exists");
    format!("file://{}", absolute.display())
}

/// What a screenshot looks like, roughly: its size and how many distinct colours it has.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub distinct_colours: usize,
    /// The share of pixels that have the most common colour (the background), 0.0–1.0.
    pub dominant_share: f64,
}

impl Picture {
    /// Decodes a PNG written by the browser.
    pub fn open(path: &Path) -> Picture {
        let file = std::fs::File::open(path).expect("screenshot readable");
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().expect("screenshot is a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("sane PNG size")];
        let frame = reader.next_frame(&mut pixels).expect("PNG frame");
        let channels = frame.color_type.samples();
        let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        for pixel in pixels[..frame.buffer_size()].chunks_exact(channels) {
            *counts.entry(&pixel[..channels.min(3)]).or_default() += 1;
        }
        let total = (frame.width as usize * frame.height as usize).max(1);
        let dominant = counts.values().copied().max().unwrap_or_default();
        Picture {
            width: frame.width,
            height: frame.height,
            distinct_colours: counts.len(),
            dominant_share: dominant as f64 / total as f64,
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}
