//! The `smoke` command: `smoke run` checks a live site (after a deploy or a rollback) with a
//! checks file, `smoke list` prints its checks, `smoke gate` is the release gate, `smoke
//! report` prints the reports they wrote, `smoke schema` prints the JSON Schema of the two
//! files, `smoke init` writes first versions of them from a stack's compose files. Exit codes
//! are documented in `smoke/README.md` and [`smoke::exit`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use smoke::check::{Step, Suite};
use smoke::exit;
use smoke::mailbox::MailboxConfig;
use smoke::runner::{
    self, Http, NoProgress, Progress, Selection, Target, TerminalProgress, Timeouts,
};
use smoke::secret::{Secret, mask};

/// Smoke checks for Django web apps deployed with Docker Compose.
#[derive(Debug, Parser)]
#[command(name = "smoke", version, about, long_about = None, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the checks against a site.
    // Boxed: the run options are by far the largest variant.
    Run(Box<RunArgs>),
    /// List the checks: name, category, what each proves.
    List(ListArgs),
    /// Build, start, migrate and check a compose stack, then tear it down: the release gate.
    Gate(smoke::gate::GateArgs),
    /// Print the JSON Schema of the checks file or the gate file, for editors.
    Schema(SchemaArgs),
    /// Write a first gate file, test override and checks file from a stack's compose files.
    Init(InitArgs),
    /// Say whether this machine can run a gate: docker CLI, engine, Compose v2, buildx.
    Doctor,
    /// Print JSON reports written by `run` or `gate`: human, Markdown, a table, or lines.
    Report(ReportArgs),
}

/// Options of `smoke report`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("format").args(["markdown", "table", "phases", "checks"])))]
struct ReportArgs {
    /// The JSON reports (`report.json` of `smoke gate`, `--report-json` of `smoke run`).
    #[arg(value_name = "REPORT_JSON", required_unless_present = "junit")]
    reports: Vec<PathBuf>,
    /// Each report as Markdown, as `--report-markdown` writes it [default: as the human
    /// report `smoke run` prints].
    #[arg(long)]
    markdown: bool,
    /// One Markdown table, a row per report: verdict, target, counts, failed checks.
    #[arg(long)]
    table: bool,
    /// `PHASE SECONDS` lines: the gate phases of each report, in the order they ran.
    #[arg(long)]
    phases: bool,
    /// `NAME CATEGORY STATUS SECONDS` lines: every check of each report.
    #[arg(long)]
    checks: bool,
    /// First, a Markdown summary of this JUnit XML file (e.g. nextest's
    /// `target/nextest/ci/junit.xml`): test counts and failed tests. Reports then default to
    /// Markdown. Give it once per partition of a partitioned run: they are summarised as one
    /// run, and a test in two of them is an error.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["phases", "checks"])]
    junit: Vec<PathBuf>,
    /// Also write the `--junit` files merged into one JUnit XML file (suites of the same name
    /// joined, counts recomputed), for a CI system that reads one report.
    #[arg(long, value_name = "FILE", requires = "junit")]
    merged_junit: Option<PathBuf>,
}

/// Options of `smoke init`.
#[derive(Debug, Args)]
struct InitArgs {
    /// The stack's production compose files (what `docker compose -f` takes).
    #[arg(required = true, value_name = "COMPOSE_FILE")]
    compose_files: Vec<PathBuf>,
    /// Where to write `gate.toml`, `compose.smoke.yml` and `checks.toml` [default: the first
    /// compose file's folder].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The env file the compose files' `${VAR}` are substituted from (e.g. `.env.example`);
    /// needed when they require variables (`${VAR:?...}`). The gate file names it.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Replace the files when they exist.
    #[arg(long)]
    force: bool,
}

/// Options of `smoke schema`.
#[derive(Debug, Args)]
struct SchemaArgs {
    /// Which file.
    #[arg(value_enum, default_value = "checks")]
    file: SchemaFile,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SchemaFile {
    /// The checks file: what to prove.
    Checks,
    /// The gate file (`gate.toml`): how to drive a stack.
    Gate,
}

/// Options of `smoke run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The site's base URL, e.g. `https://azionelab.example/`.
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    base_url: url::Url,
    /// The same site over plain HTTP, to check the redirect to HTTPS (skipped without it).
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    http_url: Option<url::Url>,
    /// Only these categories (and the steps they depend on), comma-separated.
    #[arg(long, value_name = "CATEGORY", value_delimiter = ',')]
    category: Vec<String>,
    /// The checks file: what to prove [default: `./checks.toml`].
    #[arg(long, value_name = "FILE", visible_alias = "stack")]
    checks: Option<PathBuf>,
    /// A variable the checks read as `{{env.NAME}}` or `{{secret.NAME}}`, before the
    /// environment (repeatable): `--var UNPUBLISHED_SHOW_ID=12`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// The public origin the site builds its links with, when it differs from the base URL's
    /// (`{{site_url}}`; links on it are sent to the base URL).
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    site_url: Option<url::Url>,
    /// A CA certificate (PEM) to trust besides the public roots, for self-signed stacks.
    #[arg(long, value_name = "PATH")]
    ca_cert: Option<PathBuf>,
    /// Connect to this IP address whatever the URLs' host names resolve to (as `curl
    /// --resolve`), keeping the names for Host and TLS: a new server before DNS points at it,
    /// or one node behind a load balancer.
    #[arg(long, value_name = "IP")]
    connect_to: Option<std::net::IpAddr>,
    /// Where the emails are read: `http://HOST:PORT/` (MailDev API) or `imaps://USER@HOST:993/`
    /// (password from `SMOKE_IMAP_PASSWORD`). Email steps are skipped without it.
    #[arg(long, value_name = "URL")]
    mailbox: Option<String>,
    /// Deadline of one HTTP request (`500ms`, `10s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// How long to wait for each email.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    mail_timeout: Duration,
    /// How long to wait for the health endpoint before giving up (exit 3).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    ready_timeout: Duration,
    /// The largest response body read, in bytes; larger ones fail the check that reads them.
    #[arg(long, value_name = "BYTES", default_value_t = runner::DEFAULT_MAX_BODY)]
    max_body: usize,
    /// The run id naming what the run creates (random by default).
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    run_id: Option<String>,
    /// Write the report as JSON.
    #[arg(long, value_name = "PATH")]
    report_json: Option<PathBuf>,
    /// Write the report as JUnit XML.
    #[arg(long, value_name = "PATH")]
    report_junit: Option<PathBuf>,
    /// Append the report as Markdown (e.g. to `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "PATH")]
    report_markdown: Option<PathBuf>,
    /// The browser the browser checks run in (headless Chromium) [default: `SMOKE_BROWSER`,
    /// else `chromium` on the PATH]; without one they are skipped, with a note.
    #[arg(long, value_name = "PATH")]
    browser: Option<PathBuf>,
    /// Where failed browser checks keep their screenshot and log [default:
    /// `smoke-evidence/<run id>/`].
    #[arg(long, value_name = "DIR")]
    evidence_dir: Option<PathBuf>,
    /// Keep the screenshots of passing browser checks too (a release record).
    #[arg(long)]
    screenshots: bool,
    /// Print no live progress lines on standard error.
    #[arg(long)]
    quiet: bool,
}

/// Options of `smoke list`.
#[derive(Debug, Args)]
struct ListArgs {
    /// The checks file [default: `./checks.toml`].
    #[arg(long, value_name = "FILE", visible_alias = "stack")]
    checks: Option<PathBuf>,
    /// Only these categories, comma-separated.
    #[arg(long, value_name = "CATEGORY", value_delimiter = ',')]
    category: Vec<String>,
}

/// A user-facing error: the message (one paragraph) and its exit code.
struct Fatal {
    code: u8,
    message: String,
}

impl Fatal {
    fn usage(message: impl Into<String>) -> Self {
        Fatal {
            code: exit::USAGE,
            message: message.into(),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(*args).await,
        Command::List(args) => list(&args),
        Command::Gate(args) => return smoke::gate::main(args).await,
        Command::Schema(args) => schema(&args),
        Command::Init(args) => init(args).await,
        Command::Doctor => doctor().await,
        Command::Report(args) => report(&args),
    };
    match result {
        Ok(code) => exit::code(code),
        Err(fatal) => {
            eprintln!("error: {}", mask(&fatal.message));
            exit::code(fatal.code)
        }
    }
}

fn parse_http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| {
        format!("`{text}` is not a URL: {e} (write it like `https://example.test/`)")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` is not an HTTP(S) URL (write it like `https://example.test/`)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host"));
    }
    Ok(url)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write `500ms`, `10s` or `2m`)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use `ms`, `s` or `m`)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

fn parse_run_id(text: &str) -> Result<String, String> {
    if !text.is_empty()
        && text.len() <= 32
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{text}` must be 1 to 32 letters, digits or `-` (it goes into email addresses)"
        ))
    }
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not `NAME=VALUE`"))?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a variable name"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn selection(categories: &[String], suite: &Suite) -> Result<Selection, Fatal> {
    let selection = if categories.is_empty() {
        Selection::All
    } else {
        Selection::Categories(categories.iter().map(|c| c.trim().to_owned()).collect())
    };
    selection.validate(suite).map_err(Fatal::usage)
}

fn load_suite(checks: Option<&Path>) -> Result<Suite, Fatal> {
    let path = match checks {
        Some(path) => path.to_path_buf(),
        None if Path::new("checks.toml").is_file() => PathBuf::from("checks.toml"),
        None => {
            return Err(Fatal::usage(
                "no checks file: pass `--checks FILE` (or run where `checks.toml` is); `smoke init COMPOSE_FILE` writes a first one",
            ));
        }
    };
    let suite = smoke::catalog::load(&path).map_err(|e| Fatal::usage(e.to_string()))?;
    // Every secret the checks read is masked from here on, before anything is printed.
    for step in suite.steps() {
        for name in step.reads() {
            if let Some((true, var)) = runner::variable(&name)
                && let Ok(value) = std::env::var(var)
            {
                smoke::secret::register(&value);
            }
        }
    }
    Ok(suite)
}

/// A secret from the environment; empty counts as unset.
fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim()))
}

fn schema(args: &SchemaArgs) -> Result<u8, Fatal> {
    let schema = match args.file {
        SchemaFile::Checks => smoke::catalog::json_schema(),
        SchemaFile::Gate => smoke::gate::spec::json_schema(),
    };
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    print_out(&text)
}

/// Prints to stdout; a reader that went away (`smoke schema | head`) ends the command
/// quietly instead of a panic.
fn print_out(text: &str) -> Result<u8, Fatal> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(exit::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::SUCCESS),
        Err(e) => Err(Fatal::usage(format!(
            "failed to write to standard output\n  caused by: {e}"
        ))),
    }
}

/// `smoke report`: every report that can be read is printed; each one that cannot is an
/// error on stderr, and the exit code is then 2.
fn report(args: &ReportArgs) -> Result<u8, Fatal> {
    use smoke::report as r;
    let mut text = String::new();
    let mut unreadable = false;
    let mut complain = |err: &dyn std::fmt::Display| {
        eprintln!("error: {}", mask(&err.to_string()));
        unreadable = true;
    };
    if !args.junit.is_empty() {
        match r::read_junit(&args.junit) {
            Ok(summary) => {
                text.push_str(&summary.markdown());
                if let Some(out) = &args.merged_junit
                    && let Err(err) = r::write_merged_junit(&args.junit, out)
                {
                    complain(&err);
                }
            }
            Err(err) => complain(&err),
        }
    }
    let read: Vec<(PathBuf, Result<r::RunReport, r::ReadError>)> = args
        .reports
        .iter()
        .map(|path| (path.clone(), r::read_json(path)))
        .collect();
    if args.table {
        let rows: Vec<(PathBuf, Result<r::RunReport, String>)> = read
            .into_iter()
            .map(|(path, result)| {
                let row = result.map_err(|err| {
                    complain(&err);
                    err.to_string()
                });
                (path, row)
            })
            .collect();
        if !rows.is_empty() {
            text.push_str(&r::render_table(&rows));
        }
    } else {
        let markdown = args.markdown || !args.junit.is_empty();
        for (index, (_, result)) in read.into_iter().enumerate() {
            let report = match result {
                Ok(report) => report,
                Err(err) => {
                    complain(&err);
                    continue;
                }
            };
            if index > 0 && !(args.phases || args.checks) {
                text.push('\n');
            }
            text.push_str(&if args.phases {
                r::phase_lines(&report)
            } else if args.checks {
                r::check_lines(&report)
            } else if markdown {
                r::render_markdown(&report)
            } else {
                r::render_human(&report)
            });
        }
    }
    print_out(&text)?;
    Ok(if unreadable {
        exit::USAGE
    } else {
        exit::SUCCESS
    })
}

/// The gate's own preflight, on its own: what `smoke gate` would find missing, and the fix.
async fn doctor() -> Result<u8, Fatal> {
    use smoke::gate::preflight::{Need, check, unsupported_transport};
    // Which engine first: every answer below is that engine's.
    let engine =
        smoke::gate::engine::Engine::from_env().map_err(|e| Fatal::usage(e.to_string()))?;
    if let Some(why) = unsupported_transport(&engine) {
        return Err(Fatal {
            code: smoke::gate::cli::MACHINE_NOT_READY,
            message: format!("this machine cannot run a gate: {why}"),
        });
    }
    match check(Need::Build).await {
        Ok(found) => {
            // Only stacks with browser checks need one: said, not required.
            let browser = match smoke::runner::browser::find(None) {
                Ok(Some(path)) => format!("browser {}", path.display()),
                Ok(None) => format!(
                    "no browser (browser checks need one: {})",
                    smoke::runner::browser::INSTALL_HINT
                ),
                Err(why) => why,
            };
            print_out(&format!(
                "this machine can run a gate: engine {}, compose {}, {}\n{}\n{browser}\n",
                found.engine,
                found.compose,
                found.buildx.unwrap_or_default(),
                engine.describe()
            ))
        }
        Err(missing) => Err(Fatal {
            code: smoke::gate::cli::MACHINE_NOT_READY,
            message: format!(
                "this machine cannot run a gate: {}\n  {}",
                missing.explain(),
                engine.describe()
            ),
        }),
    }
}

async fn init(args: InitArgs) -> Result<u8, Fatal> {
    let options = smoke::init::InitOptions {
        compose_files: args.compose_files,
        out: args.out,
        env_file: args.env_file,
        force: args.force,
    };
    let written = smoke::init::init(&options).await.map_err(|e| match e {
        smoke::init::InitError::MachineNotReady(_) => Fatal {
            code: smoke::gate::cli::MACHINE_NOT_READY,
            message: e.to_string(),
        },
        _ => Fatal::usage(e.to_string()),
    })?;
    let mut text = String::new();
    for file in &written.files {
        text.push_str(&format!("wrote {}\n", file.display()));
    }
    text.push_str(&format!(
        "{} guesses to review: the `# REVIEW:` lines at the top of each file. Then: smoke gate {}\n",
        written.reviews,
        written.dir.display()
    ));
    print_out(&text)
}

fn list(args: &ListArgs) -> Result<u8, Fatal> {
    let suite = load_suite(args.checks.as_deref())?;
    let selection = selection(&args.category, &suite)?;
    let steps: Vec<&Step> = suite
        .steps()
        .filter(|s| selection.includes(&s.category))
        .collect();
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    let mut text = format!(
        "{:<width$}  {:<12}  {:<8}  PROVES\n",
        "NAME", "CATEGORY", "NEEDS"
    );
    for step in steps {
        let mut needs: Vec<&str> = step.credentials();
        if step.needs_mailbox() {
            needs.push("mail");
        }
        if step.needs_http_url() {
            needs.push("http");
        }
        if step.needs_browser() {
            needs.push("browser");
        }
        let needs = if needs.is_empty() {
            "-".to_owned()
        } else {
            needs.join(",")
        };
        text.push_str(&format!(
            "{:<width$}  {:<12}  {:<8}  {}\n",
            step.name, step.category, needs, step.proves
        ));
    }
    print_out(&text)
}

async fn run(args: RunArgs) -> Result<u8, Fatal> {
    // Secrets first, so that every later message is masked.
    let imap_password = env_secret("SMOKE_IMAP_PASSWORD");
    let suite = load_suite(args.checks.as_deref())?;
    let selection = selection(&args.category, &suite)?;
    let ca_cert_pem = match &args.ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            Fatal::usage(format!(
                "failed to read the CA certificate `{}`\n  caused by: {e}\n  (pass a PEM file with `--ca-cert`)",
                path.display()
            ))
        })?),
        None => None,
    };
    let mailbox = match &args.mailbox {
        Some(url) => {
            let mut config = MailboxConfig::parse(url, imap_password).map_err(|e| {
                Fatal::usage(format!("failed to use `--mailbox`: {e} (the IMAP password comes from `SMOKE_IMAP_PASSWORD`)"))
            })?;
            if let MailboxConfig::Imap(imap) = &mut config {
                imap.ca_cert_pem.clone_from(&ca_cert_pem);
            }
            Some(config)
        }
        None => None,
    };
    let mut target = Target::new(args.base_url.clone());
    target.http_url = args.http_url.clone();
    target.ca_cert_pem = ca_cert_pem;
    target.site_url = args.site_url.clone();
    target.mailbox = mailbox;
    target.vars = args.vars.iter().cloned().collect();
    target.timeouts = Timeouts {
        request: args.request_timeout,
        mail: args.mail_timeout,
        ready: args.ready_timeout,
    };
    target.max_body = args.max_body.max(1024);
    target.connect_ip = args.connect_to;
    if let Some(id) = &args.run_id {
        target.run_id.clone_from(id);
    }
    if suite.steps().any(Step::needs_browser) {
        target.browser =
            smoke::runner::browser::find(args.browser.as_deref()).map_err(Fatal::usage)?;
    }
    target.evidence_dir = args
        .evidence_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("smoke-evidence").join(&target.run_id));
    target.screenshots = args.screenshots;
    if let Err(error) = Http::new(&target) {
        return Err(Fatal::usage(format!(
            "{error}\n  (the file was `{}`)",
            args.ca_cert.as_deref().unwrap_or(Path::new("?")).display()
        )));
    }
    let terminal = TerminalProgress::new(&suite);
    let progress: &dyn Progress = if args.quiet { &NoProgress } else { &terminal };
    progress.note(&format!(
        "smoke run {} against {}: waiting for `{}`",
        target.run_id, target.base_url, suite.readiness.path
    ));
    if let Err(not_ready) = runner::wait_ready(&target, &suite, target.timeouts.ready).await {
        return Err(Fatal {
            code: exit::UNREACHABLE,
            message: not_ready.to_string(),
        });
    }
    let report = runner::run(&suite, &target, &selection, progress).await;
    print!("{}", smoke::report::render_human(&report));
    let write =
        |what: &str,
         path: &Option<PathBuf>,
         writer: fn(&smoke::report::RunReport, &Path) -> std::io::Result<()>| {
            match path {
                Some(path) => writer(&report, path).map_err(|e| {
                    Fatal::usage(format!(
                        "failed to write the {what} report `{}`\n  caused by: {e}",
                        path.display()
                    ))
                }),
                None => Ok(()),
            }
        };
    write("JSON", &args.report_json, smoke::report::write_json)?;
    write("JUnit", &args.report_junit, smoke::report::write_junit)?;
    write(
        "Markdown",
        &args.report_markdown,
        smoke::report::write_markdown,
    )?;
    Ok(if report.interrupted {
        exit::INTERRUPTED
    } else if report.passed() {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("1h").is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(parse_http_url("https://example.test/").is_ok());
        assert!(parse_http_url("example.test").is_err());
        assert!(parse_http_url("ftp://example.test/").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
