//! A real browser for the browser checks: one headless Chromium per run, driven over the
//! DevTools protocol by `chromiumoxide`, each check in its own tab.
//!
//! The DevTools protocol is chosen over WebDriver because what a browser check judges is made
//! of protocol events: console calls, uncaught exceptions, log entries, and every request with
//! its answer and its mixed-content classification. WebDriver has none of them without vendor
//! extensions.
//!
//! A visit opens the page, waits for what the check names (a selector made visible, a text
//! shown: a `MutationObserver` in the page, so there is no fixed sleep), runs the actions,
//! waits until no request is in flight, then judges the page's journal: console errors,
//! uncaught exceptions, same-origin answers 4xx/5xx, scripts or stylesheets answered as HTML,
//! failed requests, mixed content. A failed visit keeps a screenshot and the journal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel, LogEntrySource};
use chromiumoxide::cdp::browser_protocol::network::{
    BlockedReason, EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent,
    EventResponseReceived, ResourceType,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::browser_protocol::security::MixedContentType;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown, RemoteObject,
};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt as _;

use crate::check::{BrowserAction, BrowserStep, Captures};
use crate::report::{Failure, FailureKind};
use crate::secret::mask;

/// The executables looked for on the `PATH`, in order, when none is given. Chromium's headless
/// shell first: the same engine (Blink, V8, the network stack) without the browser's UI
/// layers, as Puppeteer and Playwright run headless pages; it starts in a third of the time
/// and CPU of `chromium --headless=new`.
const CANDIDATES: [&str; 7] = [
    "chromium-headless-shell",
    "chrome-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome-stable",
    "google-chrome",
    "chrome",
];

/// Debian's `/usr/bin/chromium-headless-shell` is a shell script that runs this binary without
/// `exec`: stopping the script would leave the browser running, so the binary itself is used.
const DEBIAN_HEADLESS_SHELL: &str = "/usr/lib/chromium/chromium-headless-shell";

/// How to get a browser, for messages.
pub const INSTALL_HINT: &str = "install Chromium (`apt-get install chromium-headless-shell` on Debian, or `bash ci/provision-test-tools.sh`), or name one with `--browser PATH` or `SMOKE_BROWSER`";

/// The key names `press` accepts, for messages (the full US keyboard layout works).
pub const KEYS: [&str; 8] = [
    "Enter",
    "Tab",
    "Escape",
    "Backspace",
    "Space",
    "ArrowDown",
    "ArrowUp",
    "Delete",
];

/// The browser's name for a key of the checks file (`Space` is `" "` there).
fn key_name(key: &str) -> &str {
    if key == "Space" { " " } else { key }
}

/// Whether `key` is a key the browser can press.
pub fn is_key(key: &str) -> bool {
    chromiumoxide::keys::get_key_definition(key_name(key)).is_some()
}

/// The browser to use: `explicit` (which must exist), else `SMOKE_BROWSER`, else the first of
/// Chromium's usual names on the `PATH`. `Ok(None)`: there is none, or `none` was named (no
/// browser on purpose).
pub fn find(explicit: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let named = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SMOKE_BROWSER").map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty());
    if named.as_deref() == Some(Path::new("none")) {
        return Ok(None);
    }
    if let Some(path) = named {
        let found = resolve(&path).map(|found| unwrap_launcher(&found).unwrap_or(found));
        return found.map(Some).ok_or_else(|| {
            format!(
                "the browser `{}` does not exist or is not executable: {INSTALL_HINT}",
                path.display()
            )
        });
    }
    Ok(CANDIDATES
        .iter()
        .find_map(|name| resolve(Path::new(name)))
        .map(|found| unwrap_launcher(&found).unwrap_or(found)))
}

/// The binary a launcher script found on the `PATH` runs, when it is Debian's headless shell
/// wrapper (which does not `exec`): `None` for anything else.
fn unwrap_launcher(found: &Path) -> Option<PathBuf> {
    let script = std::fs::read(found).ok()?;
    let names_binary = script.starts_with(b"#!")
        && String::from_utf8_lossy(&script).contains(DEBIAN_HEADLESS_SHELL);
    if !names_binary {
        return None;
    }
    resolve(Path::new(DEBIAN_HEADLESS_SHELL))
}

/// Whether `executable` is Chromium's headless shell rather than the full browser.
fn is_headless_shell(executable: &Path) -> bool {
    executable
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("headless-shell"))
}

/// `path` as an executable file: itself when it has a folder, else looked up on the `PATH`.
fn resolve(path: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if path.components().count() > 1 {
        return executable(path).then(|| path.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(path))
        .find(|p| executable(p))
}

/// How a run's browser is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The executable.
    pub executable: PathBuf,
    /// Host names mapped to an address, as `curl --resolve` does (`MAP host ip`).
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// Accept certificates no public root signs (the gate's self-signed stack; its TLS is
    /// judged by the HTTP checks).
    pub accept_any_certificate: bool,
    /// The profile folder (removed with the session).
    pub profile: PathBuf,
    /// Screenshot passing visits too (`--screenshots`); a failed one always is.
    pub screenshot_passes: bool,
}

/// Removes the browsers and profiles of runs that were killed (`kill -9`, a CI timeout): a
/// profile is named `smoke-browser-<run id>-<pid of smoke>`, so one whose smoke is gone is
/// stale. Its browser processes (found by the profile in their command line: `/proc`, as the
/// browser's children carry it too) are killed, then the folder removed.
fn sweep_stale_profiles(own: &Path) {
    let Some(dir) = own.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("smoke-browser-")
            .and_then(|rest| rest.rsplit('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let profile = entry.path();
        let marker = format!("--user-data-dir={}", profile.display());
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for proc in procs.flatten() {
                let Ok(cmdline) = std::fs::read(proc.path().join("cmdline")) else {
                    continue;
                };
                if cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == marker.as_bytes())
                    && let Some(pid) = proc.file_name().to_str()
                {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", pid])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&profile);
    }
}

/// One browser process serving a run.
#[derive(Debug)]
pub struct Session {
    browser: tokio::sync::Mutex<Browser>,
    handler: tokio::task::JoinHandle<()>,
    profile: PathBuf,
    screenshot_passes: bool,
}

impl Session {
    /// Starts the browser.
    pub async fn launch(options: &Options) -> Result<Session, String> {
        let mut config = BrowserConfig::builder()
            .chrome_executable(&options.executable)
            .no_sandbox()
            .user_data_dir(&options.profile)
            .window_size(1280, 900)
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(Duration::from_secs(60))
            // What the page asks is judged as asked: no silent upgrade of `http://` links.
            .disable_https_first()
            // Keys without their dashes: chromiumoxide adds them, and merges the values of a
            // key it already passes (`disable-features`).
            .arg("disable-gpu")
            .arg("no-default-browser-check")
            .arg(("disable-features", "MediaRouter"));
        // The headless shell is headless by itself (chromiumoxide's default `--headless`);
        // the full browser runs its new headless mode.
        if !is_headless_shell(&options.executable) {
            config = config.new_headless_mode();
        }
        if !options.accept_any_certificate {
            config = config.respect_https_errors();
        }
        if !options.resolve.is_empty() {
            let rules: Vec<String> = options
                .resolve
                .iter()
                .map(|(host, ip)| match ip {
                    std::net::IpAddr::V6(v6) => format!("MAP {host} [{v6}]"),
                    std::net::IpAddr::V4(v4) => format!("MAP {host} {v4}"),
                })
                .collect();
            config = config.arg(("host-resolver-rules", rules.join(",").as_str()));
        }
        let config = config
            .build()
            .map_err(|e| format!("the browser could not be configured: {e}"))?;
        sweep_stale_profiles(&options.profile);
        let _ = std::fs::create_dir_all(&options.profile);
        let (browser, mut handler) = Browser::launch(config).await.map_err(|e| {
            format!(
                "the browser `{}` did not start: {e}",
                options.executable.display()
            )
        })?;
        // The protocol's messages are read here for the whole session; a message this build
        // cannot parse (a newer browser's event) is skipped, not fatal.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Ok(Session {
            browser: tokio::sync::Mutex::new(browser),
            handler,
            profile: options.profile.clone(),
            screenshot_passes: options.screenshot_passes,
        })
    }

    /// Closes the browser (killing it when it does not close) and removes its profile.
    pub async fn close(&self) {
        let mut browser = self.browser.lock().await;
        if !matches!(
            tokio::time::timeout(Duration::from_secs(5), browser.close()).await,
            Ok(Ok(_))
        ) {
            let _ = browser.kill().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), browser.wait())
            .await
            .is_err()
        {
            let _ = browser.kill().await;
        }
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    /// Opens `url` in a new tab and runs the step there. A visit whose requests the browser
    /// aborted because the machine's network changed is made again, after a pause that
    /// doubles each time (see [`network_change_pause`]): on a machine running containers,
    /// every network compose creates or removes, and every container it starts, is such a
    /// change (`net::ERR_NETWORK_CHANGED`), which says nothing about the site. They come in
    /// bursts (a `compose up` of another run is several in a few seconds), so visiting again
    /// at once lands in the same burst.
    pub async fn visit(&self, url: &url::Url, step: &BrowserStep, captures: &Captures) -> Visit {
        let mut earlier = Vec::new();
        let mut attempt = 1;
        let mut visit = self.visit_once(url, step, captures).await;
        while visit.network_changed() {
            let Some(pause) = network_change_pause(attempt) else {
                break;
            };
            earlier.push(format!(
                "attempt {attempt}: the machine's network changed under the browser (net::ERR_NETWORK_CHANGED); visiting again in {} ms",
                pause.as_millis()
            ));
            earlier.append(&mut visit.journal);
            tokio::time::sleep(pause).await;
            attempt += 1;
            visit = self.visit_once(url, step, captures).await;
        }
        if !earlier.is_empty() {
            earlier.push(format!("attempt {attempt}:"));
            earlier.append(&mut visit.journal);
            visit.journal = earlier;
        }
        visit
    }

    async fn visit_once(&self, url: &url::Url, step: &BrowserStep, captures: &Captures) -> Visit {
        let deadline = Instant::now() + step.timeout;
        let page = {
            let browser = self.browser.lock().await;
            match browser.new_page("about:blank").await {
                Ok(page) => page,
                Err(e) => {
                    return Visit::broken(url, format!("the browser could not open a tab: {e}"));
                }
            }
        };
        let journal = Arc::new(Mutex::new(Journal::new(url)));
        let listening = match listen(&page, &journal).await {
            Ok(task) => task,
            Err(e) => {
                let _ = page.close().await;
                return Visit::broken(url, format!("the browser's events could not be read: {e}"));
            }
        };
        // Valid regexes: lowering checked each one.
        let allowed: Vec<regex::Regex> = step
            .allow_errors
            .iter()
            .filter_map(|p| regex::Regex::new(p).ok())
            .collect();
        let failed = || {
            journal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .problems
                .iter()
                .any(|p| !allowed.iter().any(|re| re.is_match(p)))
        };
        // A page that already logged an error fails whatever it shows later: waiting out the
        // deadline for it would only make the run slower (and a visit the network change
        // spoiled is retried at once instead of after the deadline).
        let outcome = tokio::select! {
            outcome = drive(&page, url, step, captures, deadline, &journal) => outcome,
            () = async {
                while !failed() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } => Err("the page failed before it showed what the check waits for".to_owned()),
        };
        // Whatever is still loading gets until the deadline: a request that fails late fails
        // the check as much as an early one. A page that failed already gets a second, for
        // the log.
        if failed() || outcome.is_err() {
            quiesce(
                &journal,
                deadline.min(Instant::now() + Duration::from_secs(1)),
                false,
            )
            .await;
        } else {
            quiesce(&journal, deadline, true).await;
        }
        let failing = outcome.is_err() || failed();
        // A passing page is not painted into a PNG no one keeps (most of a visit's CPU).
        let screenshot = if !failing && !self.screenshot_passes {
            None
        } else {
            match page
                .screenshot(
                    ScreenshotParams::builder()
                        .format(CaptureScreenshotFormat::Png)
                        .full_page(true)
                        .build(),
                )
                .await
            {
                Ok(png) => Some(png),
                Err(e) => {
                    journal_note(&journal, format!("no screenshot: {e}"));
                    None
                }
            }
        };
        let _ = page.close().await;
        listening.abort();
        let journal = Arc::try_unwrap(journal)
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_else(|shared| shared.lock().unwrap_or_else(|p| p.into_inner()).clone());
        let problems: Vec<String> = journal
            .problems
            .into_iter()
            .filter(|p| !allowed.iter().any(|re| re.is_match(p)))
            .collect();
        Visit {
            url: url.clone(),
            outcome,
            problems,
            journal: journal.lines,
            screenshot,
        }
    }
}

/// How long to wait before visiting again after attempt `attempt` (1-based) was spoiled by a
/// change of the machine's network, or `None` when that was the last attempt: 0.5 s, 1 s,
/// 2 s, 4 s, 4 s: six attempts and 11.5 s of pauses in all, enough to outlast the burst of
/// changes a `compose up` or `down` next door makes on a loaded machine.
pub(crate) fn network_change_pause(attempt: usize) -> Option<Duration> {
    const ATTEMPTS: usize = 6;
    (attempt < ATTEMPTS).then(|| Duration::from_millis(500 << (attempt - 1).min(3)))
}

/// What a visit saw.
#[derive(Debug)]
pub struct Visit {
    /// The page opened.
    pub url: url::Url,
    /// Whether the page showed what was waited for and the actions went through.
    pub outcome: Result<(), String>,
    /// The errors that fail the visit (console errors, exceptions, failed requests, mixed
    /// content), allowed ones left out.
    pub problems: Vec<String>,
    /// Everything the page logged and loaded, in order.
    pub journal: Vec<String>,
    /// A PNG of the whole page at the end.
    pub screenshot: Option<Vec<u8>>,
}

impl Visit {
    fn broken(url: &url::Url, why: String) -> Visit {
        Visit {
            url: url.clone(),
            outcome: Err(why),
            problems: Vec::new(),
            journal: Vec::new(),
            screenshot: None,
        }
    }

    /// Whether the visit failed and the browser aborted something on the way because the
    /// machine's network changed (even a request not judged, such as the favicon: the page's
    /// own requests may have gone with it before their events were seen).
    fn network_changed(&self) -> bool {
        const CHANGED: &str = "ERR_NETWORK_CHANGED";
        !self.passed()
            && (self.journal.iter().any(|l| l.contains(CHANGED))
                || self.problems.iter().any(|p| p.contains(CHANGED))
                || self.outcome.as_ref().is_err_and(|e| e.contains(CHANGED)))
    }

    /// Whether the page did all it had to, with no error.
    pub fn passed(&self) -> bool {
        self.outcome.is_ok() && self.problems.is_empty()
    }

    /// The failure a person reads, without evidence paths.
    pub fn failure(&self) -> Failure {
        let shown: Vec<String> = self
            .problems
            .iter()
            .take(8)
            .map(|p| format!("- {p}"))
            .collect();
        let more = self.problems.len().saturating_sub(shown.len());
        let mut listed = shown.join("\n");
        if more > 0 {
            listed.push_str(&format!("\n- and {more} more (see the log)"));
        }
        let request = Some(format!("BROWSER {}", self.url));
        match &self.outcome {
            Err(why) => Failure {
                kind: FailureKind::Mismatch,
                title: why.clone(),
                request,
                expected: "the page shows what the check waits for".to_owned(),
                actual: if listed.is_empty() {
                    "it did not (see the screenshot)".to_owned()
                } else {
                    format!("it did not; the page also logged:\n{listed}")
                },
                hint: Some(
                    "open the page in a browser with its developer tools: the screenshot shows what a visitor saw".to_owned(),
                ),
                ..Failure::default()
            },
            Ok(()) => Failure {
                kind: FailureKind::Mismatch,
                title: format!(
                    "the page logged {} error{}",
                    self.problems.len(),
                    if self.problems.len() == 1 { "" } else { "s" }
                ),
                request,
                expected: "no console error, uncaught exception, failed request or mixed content"
                    .to_owned(),
                actual: listed,
                hint: Some(
                    "a script that is not shipped, throws, or calls the wrong URL shows here; `allow_errors` accepts known third-party noise".to_owned(),
                ),
                ..Failure::default()
            },
        }
    }

    /// The journal as a log file (masked).
    pub fn log(&self) -> String {
        let mut out = format!("browser visit of {}\n", self.url);
        for line in &self.journal {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!(
            "outcome: {}\nproblems: {}\n",
            match &self.outcome {
                Ok(()) => "shown".to_owned(),
                Err(e) => e.clone(),
            },
            self.problems.len()
        ));
        for problem in &self.problems {
            out.push_str(&format!("  {problem}\n"));
        }
        mask(&out)
    }
}

/// What a tab logged and loaded.
#[derive(Debug, Clone)]
struct Journal {
    origin: url::Origin,
    start: Instant,
    lines: Vec<String>,
    problems: Vec<String>,
    /// Request id -> (URL, resource type), for the answers and failures that follow.
    requests: HashMap<String, (String, Option<ResourceType>)>,
    in_flight: std::collections::HashSet<String>,
    /// Requests whose end was seen before their start: the protocol's event kinds arrive on
    /// separate streams, so under load a `loadingFinished` can be read before its
    /// `requestWillBeSent`, which would then stay "in flight" until the deadline.
    ended: std::collections::HashSet<String>,
}

impl Journal {
    fn new(url: &url::Url) -> Journal {
        Journal {
            origin: url.origin(),
            start: Instant::now(),
            lines: Vec::new(),
            problems: Vec::new(),
            requests: HashMap::new(),
            in_flight: std::collections::HashSet::new(),
            ended: std::collections::HashSet::new(),
        }
    }

    fn line(&mut self, text: String) {
        // `data:` URLs (an image the page made) can be megabytes long.
        let text = if text.len() > 300 {
            let cut = (0..=240)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}... ({} bytes)", &text[..cut], text.len())
        } else {
            text
        };
        let at = self.start.elapsed().as_millis();
        self.lines.push(format!("{at:>6} ms  {text}"));
    }

    fn problem(&mut self, text: String) {
        self.line(format!("ERROR {text}"));
        self.problems.push(text);
    }

    /// A request finished or failed, whether or not its start was seen yet.
    fn end(&mut self, id: &str) {
        if !self.in_flight.remove(id) {
            self.ended.insert(id.to_owned());
        }
    }

    fn plain_http(&self) -> bool {
        matches!(&self.origin, url::Origin::Tuple(scheme, ..) if scheme == "http")
    }

    fn same_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.origin)
    }
}

fn journal_note(journal: &Mutex<Journal>, text: String) {
    journal.lock().unwrap_or_else(|p| p.into_inner()).line(text);
}

/// One protocol event of interest.
enum Event {
    Console(Arc<EventConsoleApiCalled>),
    Exception(Arc<EventExceptionThrown>),
    Log(Arc<EventEntryAdded>),
    Request(Arc<EventRequestWillBeSent>),
    Response(Arc<EventResponseReceived>),
    Finished(Arc<EventLoadingFinished>),
    Failed(Arc<EventLoadingFailed>),
}

/// Subscribes to the tab's events and records them in `journal` until aborted.
async fn listen(
    page: &Page,
    journal: &Arc<Mutex<Journal>>,
) -> chromiumoxide::Result<tokio::task::JoinHandle<()>> {
    let streams = vec![
        page.event_listener::<EventConsoleApiCalled>()
            .await?
            .map(Event::Console)
            .boxed(),
        page.event_listener::<EventExceptionThrown>()
            .await?
            .map(Event::Exception)
            .boxed(),
        page.event_listener::<EventEntryAdded>()
            .await?
            .map(Event::Log)
            .boxed(),
        page.event_listener::<EventRequestWillBeSent>()
            .await?
            .map(Event::Request)
            .boxed(),
        page.event_listener::<EventResponseReceived>()
            .await?
            .map(Event::Response)
            .boxed(),
        page.event_listener::<EventLoadingFinished>()
            .await?
            .map(Event::Finished)
            .boxed(),
        page.event_listener::<EventLoadingFailed>()
            .await?
            .map(Event::Failed)
            .boxed(),
    ];
    let journal = Arc::clone(journal);
    Ok(tokio::spawn(async move {
        let mut events = futures::stream::select_all(streams);
        while let Some(event) = events.next().await {
            record(
                &mut journal.lock().unwrap_or_else(|p| p.into_inner()),
                &event,
            );
        }
    }))
}

/// Judges one event: a line in the journal, and a problem when it is one.
fn record(journal: &mut Journal, event: &Event) {
    match event {
        Event::Console(call) => {
            let text = call.args.iter().map(describe).collect::<Vec<_>>().join(" ");
            match call.r#type {
                ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert => {
                    journal.problem(format!("console error: {text}"));
                }
                ref other => journal.line(format!("console.{}: {text}", console_kind(other))),
            }
        }
        Event::Exception(thrown) => {
            let details = &thrown.exception_details;
            let what = details
                .exception
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or_else(|| details.text.clone());
            let what = what.lines().next().unwrap_or_default().to_owned();
            let at = details
                .url
                .as_deref()
                .map(|u| format!(" at {u}:{}", details.line_number + 1))
                .unwrap_or_default();
            journal.problem(format!("uncaught exception: {what}{at}"));
        }
        Event::Log(entry) => {
            let entry = &entry.entry;
            let at = entry
                .url
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            let text = format!("{:?} {:?}: {}{at}", entry.source, entry.level, entry.text);
            // Network errors are judged from the network events themselves (same origin or
            // not, canceled or not); the rest (security, CSP, javascript) fail here.
            // Headers that only work over HTTPS (Cross-Origin-Opener-Policy, ...) are logged as
            // errors on a plain-HTTP page: the page's scheme is what is wrong there, which the
            // HTTP checks judge (the redirect to HTTPS), not the page.
            let https_only = journal.plain_http() && entry.text.contains("untrustworthy");
            if https_only {
                journal.line(format!("{text} (not judged: the page is plain HTTP)"));
            } else if entry.level == LogEntryLevel::Error && entry.source != LogEntrySource::Network
            {
                journal.problem(format!("logged error: {}{at}", entry.text));
            } else {
                journal.line(text);
            }
        }
        Event::Request(sent) => {
            let id: String = sent.request_id.inner().clone();
            let url = sent.request.url.clone();
            if let Some(redirect) = &sent.redirect_response {
                journal.line(format!("<- {} redirect {}", redirect.status, redirect.url));
            }
            journal.line(format!("-> {} {url}", sent.request.method));
            if matches!(
                sent.request.mixed_content_type,
                Some(MixedContentType::Blockable | MixedContentType::OptionallyBlockable)
            ) {
                journal.problem(format!("mixed content: {url} requested by an https page"));
            }
            // A stream (EventSource) never ends by design: nothing waits for it.
            let streaming = matches!(sent.r#type, Some(ResourceType::EventSource));
            if !streaming && !journal.ended.contains(&id) {
                journal.in_flight.insert(id.clone());
            }
            journal.requests.insert(id, (url, sent.r#type.clone()));
        }
        Event::Response(received) => {
            let response = &received.response;
            let status = response.status;
            journal.line(format!(
                "<- {status} {} {}",
                response.mime_type, response.url
            ));
            let kind = &received.r#type;
            if favicon(&response.url, kind) {
                journal.line("   (the browser's own favicon request: not judged)".to_owned());
                return;
            }
            let needed = matches!(
                kind,
                ResourceType::Document | ResourceType::Script | ResourceType::Stylesheet
            );
            if status >= 400 && (needed || journal.same_origin(&response.url)) {
                journal.problem(format!(
                    "{} answered {status}: {}",
                    resource(kind),
                    response.url
                ));
            } else if matches!(kind, ResourceType::Script | ResourceType::Stylesheet)
                && response.mime_type.starts_with("text/html")
            {
                journal.problem(format!(
                    "the {} {} was answered with HTML ({}), not itself: a file the build did not ship, answered by the site's fallback page",
                    resource(kind),
                    response.url,
                    response.mime_type
                ));
            }
        }
        Event::Finished(finished) => {
            journal.end(finished.request_id.inner());
        }
        Event::Failed(failed) => {
            let id = failed.request_id.inner();
            journal.end(id);
            let url = journal
                .requests
                .get(id)
                .map(|(u, _)| u.clone())
                .unwrap_or_default();
            if favicon(&url, &failed.r#type) {
                journal.line(format!(
                    "favicon failed: {url} (the browser's own request: not judged)"
                ));
            } else if failed.blocked_reason == Some(BlockedReason::MixedContent) {
                journal.problem(format!("mixed content blocked: {url}"));
            } else if failed.canceled == Some(true) {
                journal.line(format!("canceled {url}"));
            } else {
                let cors = if failed.cors_error_status.is_some() {
                    " (refused by CORS: another origin)"
                } else {
                    ""
                };
                journal.problem(format!(
                    "{} failed: {url}: {}{cors}",
                    resource(&failed.r#type),
                    failed.error_text
                ));
            }
        }
    }
}

/// The browser asks `/favicon.ico` on its own, whatever the page links: not the site's
/// promise.
fn favicon(url: &str, kind: &ResourceType) -> bool {
    *kind == ResourceType::Other && url::Url::parse(url).is_ok_and(|u| u.path() == "/favicon.ico")
}

fn resource(kind: &ResourceType) -> &'static str {
    match kind {
        ResourceType::Document => "the page",
        ResourceType::Script => "script",
        ResourceType::Stylesheet => "stylesheet",
        ResourceType::Image => "image",
        ResourceType::Font => "font",
        ResourceType::Fetch | ResourceType::Xhr => "request",
        _ => "resource",
    }
}

fn console_kind(kind: &ConsoleApiCalledType) -> String {
    format!("{kind:?}").to_ascii_lowercase()
}

/// A console argument as text.
fn describe(object: &RemoteObject) -> String {
    match &object.value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => object
            .description
            .clone()
            .unwrap_or_else(|| format!("{:?}", object.r#type)),
    }
}

/// Opens the page, waits, acts. `Err`: what did not happen.
async fn drive(
    page: &Page,
    url: &url::Url,
    step: &BrowserStep,
    captures: &Captures,
    deadline: Instant,
    journal: &Mutex<Journal>,
) -> Result<(), String> {
    let left = || deadline.saturating_duration_since(Instant::now());
    // chromiumoxide's `goto` returns when its own bookkeeping of the frame's lifecycle events
    // says the page loaded, and that bookkeeping sometimes misses it: in a CI run, a Next.js
    // page whose every request had been answered in 0.3 s "did not finish loading" in 15 s.
    // So the page is also asked itself, every 250 ms, and its own word is enough.
    let goto = page.goto(url.as_str());
    tokio::pin!(goto);
    let loaded = tokio::time::timeout(left(), async {
        loop {
            tokio::select! {
                done = &mut goto => return done.map(|_| "loaded").map_err(|e| e.to_string()),
                () = tokio::time::sleep(Duration::from_millis(250)) => {
                    if document_complete(page).await {
                        return Ok("loaded (the page says so)");
                    }
                }
            }
        }
    })
    .await;
    match loaded {
        Err(_) => {
            return Err(format!(
                "the page did not finish loading within {}",
                human(step.timeout)
            ));
        }
        Ok(Err(e)) => return Err(format!("the page could not be opened: {e}")),
        Ok(Ok(how)) => journal_note(journal, how.to_owned()),
    }
    for action in step.waits.iter().chain(&step.actions) {
        act(page, action, captures, deadline, step.timeout).await?;
        journal_note(journal, format!("done: {}", label(action, captures)));
    }
    Ok(())
}

fn label(action: &BrowserAction, captures: &Captures) -> String {
    let text =
        |t: &crate::check::Template| t.render(captures).unwrap_or_else(|_| t.as_str().to_owned());
    match action {
        BrowserAction::WaitFor {
            selector,
            text: Some(t),
        } => format!("`{selector}` shows \"{}\"", text(t)),
        BrowserAction::WaitFor { selector, .. } => format!("`{selector}` is visible"),
        BrowserAction::WaitText(t) => format!("the page shows \"{}\"", text(t)),
        BrowserAction::Click(selector) => format!("click `{selector}`"),
        BrowserAction::Fill { selector, .. } => format!("type into `{selector}`"),
        BrowserAction::Press(key) => format!("press {key}"),
    }
}

async fn act(
    page: &Page,
    action: &BrowserAction,
    captures: &Captures,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), String> {
    let render = |t: &crate::check::Template| {
        t.render(captures)
            .map_err(|e| format!("no step captured `{}`", e.0))
    };
    match action {
        BrowserAction::WaitFor { selector, text } => {
            let text = text.as_ref().map(render).transpose()?;
            wait_until(page, Some(selector), text.as_deref(), deadline)
                .await
                .map_err(|why| match (why, &text) {
                    (Some(e), _) => e,
                    (None, Some(t)) => format!(
                        "`{selector}` did not show \"{t}\" within {}",
                        human(timeout)
                    ),
                    (None, None) => format!(
                        "`{selector}` did not become visible within {}",
                        human(timeout)
                    ),
                })
        }
        BrowserAction::WaitText(text) => {
            let text = render(text)?;
            wait_until(page, None, Some(&text), deadline)
                .await
                .map_err(|why| {
                    why.unwrap_or_else(|| {
                        format!("the page did not show \"{text}\" within {}", human(timeout))
                    })
                })
        }
        BrowserAction::Click(selector) => {
            visible(page, selector, deadline, timeout).await?;
            let element = page
                .find_element(selector.as_str())
                .await
                .map_err(|e| format!("`{selector}` could not be found to click: {e}"))?;
            element
                .click()
                .await
                .map(|_| ())
                .map_err(|e| format!("`{selector}` could not be clicked: {e}"))
        }
        BrowserAction::Fill { selector, value } => {
            let value = render(value)?;
            visible(page, selector, deadline, timeout).await?;
            let element = page
                .find_element(selector.as_str())
                .await
                .map_err(|e| format!("`{selector}` could not be found to type into: {e}"))?;
            element
                .click()
                .await
                .map_err(|e| format!("`{selector}` could not be focused: {e}"))?;
            // The text goes in as one input (as a paste or an IME does): keystroke by
            // keystroke costs a protocol round trip per character.
            page.execute(InsertTextParams::new(value))
                .await
                .map(|_| ())
                .map_err(|e| format!("typing into `{selector}` failed: {e}"))
        }
        BrowserAction::Press(key) => {
            let key = key_name(key);
            let focused = match page.find_element(":focus").await {
                Ok(element) => element,
                Err(_) => page
                    .find_element("body")
                    .await
                    .map_err(|e| format!("no element to press {key} in: {e}"))?,
            };
            focused
                .press_key(key)
                .await
                .map(|_| ())
                .map_err(|e| format!("pressing {key} failed: {e}"))
        }
    }
}

async fn visible(
    page: &Page,
    selector: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), String> {
    wait_until(page, Some(selector), None, deadline)
        .await
        .map_err(|why| {
            why.unwrap_or_else(|| {
                format!(
                    "`{selector}` did not become visible within {}",
                    human(timeout)
                )
            })
        })
}

/// Waits in the page (a `MutationObserver`, and a re-check every 100 ms for what styles
/// change) until the element is visible and holds the text, or the page's text holds it.
/// `Err(None)`: the deadline passed; `Err(Some(why))`: the condition cannot be judged.
async fn wait_until(
    page: &Page,
    selector: Option<&str>,
    text: Option<&str>,
    deadline: Instant,
) -> Result<(), Option<String>> {
    let condition = serde_json::json!({ "selector": selector, "text": text });
    let expression = format!(
        r#"(() => {{
  const want = {condition};
  const shown = (el) => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const holds = (el) => want.text === null || (el.innerText || "").includes(want.text);
  const met = () => {{
    if (want.selector === null) return !!document.body && holds(document.body);
    return Array.from(document.querySelectorAll(want.selector)).some((el) => shown(el) && holds(el));
  }};
  return new Promise((resolve) => {{
    if (met()) return resolve(true);
    const observer = new MutationObserver(() => {{ if (met()) finish(); }});
    const timer = setInterval(() => {{ if (met()) finish(); }}, 100);
    const finish = () => {{ observer.disconnect(); clearInterval(timer); resolve(true); }};
    observer.observe(document, {{ subtree: true, childList: true, characterData: true, attributes: true }});
  }});
}})()"#
    );
    if let Some(selector) = selector {
        // A selector the browser cannot parse would wait forever: say so at once.
        let probe = format!(
            "(() => {{ try {{ document.querySelector({}); return true; }} catch (e) {{ return false; }} }})()",
            serde_json::Value::String(selector.to_owned())
        );
        if let Ok(Some(false)) = ask(page, &probe).await.map(|v| v.as_bool()) {
            return Err(Some(format!("`{selector}` is not a valid CSS selector")));
        }
    }
    let mut last_error: Option<String> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last_error.map(|e| {
                format!("the page could not be asked what it shows until the deadline: {e}")
            }));
        }
        match tokio::time::timeout(left, ask(page, &expression)).await {
            Err(_) => return Err(None),
            Ok(Ok(_)) => return Ok(()),
            // The page navigated (a click on a link, a form posted): its new document is
            // asked again.
            Ok(Err(e)) => {
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(50).min(left)).await;
            }
        }
    }
}

/// Evaluates `expression` (awaiting a promise) in the page's current main document. The
/// protocol picks the context: a context id remembered from before a navigation would be
/// stale.
/// Whether the tab holds a document other than the blank one it was opened on, fully loaded
/// (`readyState` `complete`: its scripts ran and its `load` event fired).
async fn document_complete(page: &Page) -> bool {
    let expression = r#"document.readyState === "complete" && location.href !== "about:blank""#;
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ask(page, expression)).await,
        Ok(Ok(serde_json::Value::Bool(true)))
    )
}

async fn ask(page: &Page, expression: &str) -> Result<serde_json::Value, String> {
    let params = EvaluateParams::builder()
        .expression(expression)
        .await_promise(true)
        .return_by_value(true)
        .build()?;
    let answer = page.execute(params).await.map_err(|e| e.to_string())?;
    if let Some(thrown) = &answer.result.exception_details {
        return Err(thrown.text.clone());
    }
    Ok(answer.result.result.value.clone().unwrap_or_default())
}

/// Waits until no request of the tab is in flight, or the deadline; a request still loading
/// then is a problem: the visitor is still waiting for it.
async fn quiesce(journal: &Mutex<Journal>, deadline: Instant, judge: bool) {
    loop {
        {
            let mut journal = journal.lock().unwrap_or_else(|p| p.into_inner());
            if journal.in_flight.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                if !judge {
                    return;
                }
                let mut loading: Vec<String> = journal
                    .in_flight
                    .iter()
                    .map(|id| {
                        journal
                            .requests
                            .get(id)
                            .map(|(url, _)| url.clone())
                            .unwrap_or_else(|| format!("request {id}"))
                    })
                    .collect();
                loading.sort();
                for url in loading {
                    journal.problem(format!("still loading at the check's deadline: {url}"));
                }
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn human(duration: Duration) -> String {
    crate::report::human_duration(duration)
}

/// Writes a visit's screenshot and log into `dir` as `<name>.png` and `<name>.log`; returns
/// the paths written.
pub fn keep(dir: &Path, name: &str, visit: &Visit) -> Vec<String> {
    let mut kept = Vec::new();
    if std::fs::create_dir_all(dir).is_err() {
        return kept;
    }
    let stem = name.replace(['/', ' '], "_");
    if let Some(png) = &visit.screenshot {
        let path = dir.join(format!("{stem}.png"));
        if std::fs::write(&path, png).is_ok() {
            kept.push(path.display().to_string());
        }
    }
    let path = dir.join(format!("{stem}.log"));
    if std::fs::write(&path, visit.log()).is_ok() {
        kept.push(path.display().to_string());
    }
    kept
}

#[cfg(test)]
mod tests;
