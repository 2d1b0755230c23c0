//! `smoke init` on real compose files: the three example stacks and a stack of the usual
//! tutorial shape (`fixtures/init/tutorial/`). The generated gate file and checks file must
//! load as the gate loads them, name the stack's own public and internal services, and the
//! command must refuse to overwrite and explain a compose file that does not parse.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{self, gate_runs_dir, smoke_bin, workspace_root};

fn init(compose: &[&str], env_file: &str, out: &PathBuf, extra: &[&str]) -> Output {
    let root = workspace_root().join("fixtures");
    let mut command = Command::new(smoke_bin());
    command.arg("init");
    for file in compose {
        command.arg(root.join(file));
    }
    command
        .arg("--env-file")
        .arg(root.join(env_file))
        .arg("--out")
        .arg(out)
        .args(extra);
    command.output().expect("`smoke init` starts")
}

fn scratch(name: &str) -> PathBuf {
    let dir = gate_runs_dir().join(format!("init-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[rstest::rstest]
#[case::reference("azionelab", &["azionelab/infra/docker/compose.yml"], "azionelab/.env.example", "nginx", &["backend", "postgres"])]
#[case::stage("stage", &["stage/compose.yml"], "stage/.env.example", "next", &["django", "pgdb"])]
#[case::multienv("multienv", &["multienv/app/compose.yml"], "multienv/.env.example", "nginx", &["prod-web", "staging-web", "celery-worker"])]
#[case::tutorial("tutorial", &["init/tutorial/compose.yml"], "init/tutorial/.env.example", "nginx", &["db", "web"])]
fn init_writes_a_gate_file_and_checks_file_that_load(
    #[case] name: &str,
    #[case] compose: &[&str],
    #[case] env_file: &str,
    #[case] public: &str,
    #[case] internal: &[&str],
) {
    if !common::require_engine("init_writes_a_gate_file_and_checks_file_that_load") {
        return;
    }
    let out = scratch(name);
    let output = init(compose, env_file, &out, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "`smoke init` failed on {compose:?}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("guesses to review") && stdout.contains("smoke gate"),
        "it must say what to do next:\n{stdout}"
    );
    for file in ["gate.toml", "compose.smoke.yml", "checks.toml"] {
        assert!(
            out.join(file).is_file(),
            "{file} was not written:\n{stdout}"
        );
    }
    let spec = smoke::gate::spec::StackSpec::load(&out)
        .unwrap_or_else(|e| panic!("the generated gate file does not load: {e:#}"));
    smoke::catalog::load(&spec.checks_file())
        .unwrap_or_else(|e| panic!("the generated checks file does not load: {e:#}"));
    let gate = std::fs::read_to_string(out.join("gate.toml")).expect("read gate.toml");
    if !public.is_empty() {
        assert_eq!(spec.public.service, public, "{gate}");
        let override_file =
            std::fs::read_to_string(out.join("compose.smoke.yml")).expect("read the override");
        let section = override_file
            .split_once(&format!("\n  {public}:\n"))
            .map(|(_, rest)| {
                rest.split("\n  ")
                    .find(|l| !l.trim_start().starts_with('#'))
            })
            .unwrap_or_default()
            .unwrap_or_default();
        assert!(
            section.trim_start().starts_with("ports: !override"),
            "the test override must replace the public service's fixed ports:\n{override_file}"
        );
    }
    for service in internal {
        assert!(
            spec.internal_services.iter().any(|s| s == service),
            "`{service}` publishes nothing and must be internal:\n{gate}"
        );
    }
    assert!(!stdout.contains("panicked") && !stderr.contains("panicked"));
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    if !common::require_engine("init_refuses_to_overwrite_without_force") {
        return;
    }
    let out = scratch("overwrite");
    let compose = ["init/tutorial/compose.yml"];
    let env = "init/tutorial/.env.example";
    assert_eq!(init(&compose, env, &out, &[]).status.code(), Some(0));
    std::fs::write(out.join("checks.toml"), "# edited by hand\n").expect("edit checks.toml");
    let again = init(&compose, env, &out, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.status.code(), Some(2), "{text}");
    assert!(
        text.contains("checks.toml") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("checks.toml")).unwrap(),
        "# edited by hand\n",
        "a refused init must not touch the files"
    );
    assert_eq!(
        init(&compose, env, &out, &["--force"]).status.code(),
        Some(0)
    );
}

#[test]
fn init_explains_a_compose_file_that_does_not_parse() {
    if !common::require_engine("init_explains_a_compose_file_that_does_not_parse") {
        return;
    }
    let out = scratch("unparsable");
    std::fs::create_dir_all(&out).expect("create the scratch folder");
    let compose = out.join("compose.yml");
    std::fs::write(&compose, "services:\n  web:\n    image: [unclosed\n").expect("write");
    let output = Command::new(smoke_bin())
        .arg("init")
        .arg(&compose)
        .output()
        .expect("`smoke init` starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("compose.yml"),
        "the error must name the file:\n{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        !out.join("gate.toml").exists(),
        "nothing is written on an error"
    );
}

/// Replaces `from` with `to` in `file`, which must hold `from`: an edit the README documents.
fn edit(file: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read a generated file");
    assert!(
        text.contains(from),
        "{}: the documented edit expects `{from}`:\n{text}",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).expect("write the edited file");
}

/// One documented edit: in `file` (of the generated three), `from` becomes `to`.
struct Edit {
    file: &'static str,
    from: &'static str,
    to: String,
}

fn replace(file: &'static str, from: &'static str, to: impl Into<String>) -> Edit {
    Edit {
        file,
        from,
        to: to.into(),
    }
}

/// The edits `fixtures/init/README.md` lists for each example stack, in its order; each
/// answers one `# REVIEW:` line of the generated files or states a fact no compose file holds.
fn documented_edits(stack: &str) -> Vec<Edit> {
    let fixtures = workspace_root().join("fixtures");
    let file = |rel: &str| fixtures.join(rel).display().to_string();
    match stack {
        "stage" => vec![
            // 1. The team's own test override (test settings over plain HTTP, a mail catcher)
            //    instead of the generated one, and the catcher it adds declared test-only.
            replace(
                "gate.toml",
                "\"compose.smoke.yml\"]",
                format!(
                    "\"{}\"]\ntest_only_services = [\"mail\"]",
                    file("stage/compose.test.yml")
                ),
            ),
            // 2. `check --deploy` with the production settings, which the override replaces.
            replace(
                "gate.toml",
                "\"check\", \"--deploy\",",
                "\"check\", \"--deploy\", \"--settings\", \"config.settings\",",
            ),
            // 3. The stack's health path.
            replace(
                "checks.toml",
                "path = \"/health/\"",
                "path = \"/api/health/\"",
            ),
        ],
        "azionelab" => vec![
            // 1. The team's own test override (a throwaway certificate, MailDev) instead of
            //    the generated one, and the services it adds declared test-only.
            replace(
                "gate.toml",
                "\"compose.smoke.yml\"]",
                format!(
                    "\"{}\"]\ntest_only_services = [\"mail\", \"certs\"]",
                    file("azionelab/infra/docker/compose.test.yml")
                ),
            ),
            // 2. HTTPS: the certificate to trust (its path in nginx) and the name it is for.
            replace(
                "gate.toml",
                "http_port = 80\n",
                "http_port = 80\nca_cert = \"/etc/nginx/certs/tls.crt\"\nhost = \"localhost\"\n",
            ),
            // 3. The stack's health path.
            replace(
                "checks.toml",
                "path = \"/health/\"",
                "path = \"/api/health/\"",
            ),
        ],
        "multienv" => vec![
            // 1. The database and Redis live in a compose project of their own.
            replace(
                "gate.toml",
                "\n[secrets]",
                format!(
                    "\n[infra_project]\ncompose_files = [\"{}\"]\n\n[secrets]",
                    file("multienv/infra/compose.yml")
                ),
            ),
            // 2. nginx routes by virtual host: the checks ask for production's name.
            replace(
                "gate.toml",
                "http_port = 80\n",
                "http_port = 80\nhost = \"prod.multienv.test\"\n",
            ),
            // 3. This example does not claim `check --deploy` (its own gate does not either).
            replace(
                "gate.toml",
                "# It reads only code and settings: it runs as soon as the container does (`while_starting`).\n[[command_assertions]]\nname = \"infra.check_deploy_clean\"\nservice = \"prod-daphne\"\ncommand = [\"python\", \"manage.py\", \"check\", \"--deploy\", \"--fail-level\", \"WARNING\"]\nhint = \"fix what `manage.py check --deploy` reports with the production settings\"\nwhile_starting = true\n",
                "",
            ),
            // 4. The stack's health path.
            replace(
                "checks.toml",
                "path = \"/health/\"",
                "path = \"/api/v1/system/status/\"",
            ),
            // 5. It has no Django admin.
            replace(
                "checks.toml",
                "[[routes]]\nname = \"admin_reaches_django\"\npath = \"/admin/login/\"\nproves = \"`/admin/` reaches Django and serves the admin login page\"\ncontent_type = \"text/html\"\ncontains = ['id=\"login-form\"']\nhint = \"proxy `/admin/` to Django\"\n\n",
                "",
            ),
        ],
        other => panic!("no documented edits for `{other}`"),
    }
}

/// "A team should start from something that runs": `smoke init` on each example stack's
/// production compose file, the edits `fixtures/init/README.md` lists, then the real gate.
#[rstest::rstest]
#[case::stage("stage", "stage/compose.yml", "stage/.env.example", &["health.ok", "pages.home", "routing.admin_reaches_django", "operations.migrate", "infra.health_fails_when_database_down", "infra.data_survives_recreation"])]
#[case::azionelab("azionelab", "azionelab/infra/docker/compose.yml", "azionelab/.env.example", &["health.ok", "pages.home", "routing.admin_reaches_django", "routing.static_served", "operations.migrate", "operations.collectstatic", "infra.check_deploy_clean", "infra.health_fails_when_database_down", "infra.data_survives_recreation"])]
#[case::multienv("multienv", "multienv/app/compose.yml", "multienv/.env.example", &["health.ok", "pages.home", "routing.unknown_api_is_404", "operations.migrate"])]
#[tokio::test]
async fn init_output_gates_the_example_stack_after_the_documented_edits(
    #[case] stack: &str,
    #[case] compose: &str,
    #[case] env_file: &str,
    #[case] checks: &[&str],
) {
    if !common::require_engine("init_output_gates_the_example_stack_after_the_documented_edits") {
        return;
    }
    let out = scratch(&format!("{stack}-gated"));
    let output = init(&[compose], env_file, &out, &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    for e in documented_edits(stack) {
        edit(&out.join(e.file), e.from, &e.to);
    }
    let options = smoke::gate::GateOptions {
        stack: out.clone(),
        overrides: Vec::new(),
        runs_dir: gate_runs_dir(),
        skip_build: false,
        selection: smoke::runner::Selection::All,
        browser: None,
        screenshots: false,
    };
    let outcome = smoke::gate::run_gate(&options, &smoke::runner::NoProgress).await;
    common::assert_gate_passed(
        &outcome,
        &format!("`smoke init`'s files for the {stack} stack"),
        checks,
    );
}
