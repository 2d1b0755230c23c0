//! Lint of what cannot run here: the GitHub workflows (actionlint, zizmor), the fixtures'
//! Dockerfiles (hadolint), every compose file set (`docker compose config -q`) and the CI
//! scripts (shellcheck). One test per linter; each fails with the linter's own output.
//!
//! A missing linter mirrors [`common::require_engine`]: under CI (`CI` set) it is a failure
//! naming the install command, elsewhere the test prints a SKIPPED line and passes. The
//! `*_flags_*` tests prove each lint has teeth: the same linter, with the same options, must
//! find something in a deliberately bad sample under `integration/tests/lint-samples/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::workspace_root;

const INSTALL: &str = "bash ci/provision-lint-tools.sh";

/// A linter: the program to look for and how to ask it for its version.
#[derive(Debug, Clone, Copy)]
struct Linter {
    program: &'static str,
    version_args: &'static [&'static str],
}

const ACTIONLINT: Linter = Linter {
    program: "actionlint",
    version_args: &["-version"],
};
const ZIZMOR: Linter = Linter {
    program: "zizmor",
    version_args: &["--version"],
};
const HADOLINT: Linter = Linter {
    program: "hadolint",
    version_args: &["--version"],
};
const SHELLCHECK: Linter = Linter {
    program: "shellcheck",
    version_args: &["--version"],
};
const COMPOSE: Linter = Linter {
    program: "docker",
    version_args: &["compose", "version"],
};

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Returns `true` when `linter` runs here; otherwise says so and returns `false`, or panics
/// under CI, where a skipped lint would let CI go green without linting.
#[track_caller]
fn require_linter(test: &str, linter: Linter) -> bool {
    let runs = Command::new(linter.program)
        .args(linter.version_args)
        .output()
        .is_ok_and(|out| out.status.success());
    if runs {
        return true;
    }
    let why = format!(
        "`{} {}` does not run (install the linters with `{INSTALL}`)",
        linter.program,
        linter.version_args.join(" ")
    );
    if required() {
        panic!("`{test}` needs a linter: {why}; CI requires it (CI is set)");
    }
    eprintln!("SKIPPED `{test}`: {why}.");
    false
}

/// Runs a linter from the workspace root (where `.hadolint.yaml` is).
fn lint(program: &str, args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(program)
        .current_dir(workspace_root())
        .args(args)
        .args(files)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|err| panic!("failed to start `{program}`: {err}"))
}

fn describe(program: &str, args: &[&str], files: &[PathBuf], out: &Output) -> String {
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    format!(
        "command: {program} {} {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        files.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_clean(program: &str, args: &[&str], files: &[PathBuf]) {
    assert!(
        !files.is_empty(),
        "nothing to lint with `{program}`: no files found"
    );
    let out = lint(program, args, files);
    assert!(
        out.status.success(),
        "`{program}` found problems:\n{}",
        describe(program, args, files, &out)
    );
}

#[track_caller]
fn assert_flags(program: &str, args: &[&str], sample: &str, expected: &str) {
    let files = [sample_path(sample)];
    let out = lint(program, args, &files);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && text.contains(expected),
        "`{program}` should reject the bad sample `{sample}` mentioning `{expected}`:\n{}",
        describe(program, args, &files, &out)
    );
}

fn sample_path(name: &str) -> PathBuf {
    workspace_root()
        .join("integration/tests/lint-samples")
        .join(name)
}

/// Files under `dir` (relative to the workspace root) whose name satisfies `keep`, sorted.
fn files_under(dir: &str, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, keep: &dyn Fn(&str) -> bool, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n == "node_modules" || n == "target")
                {
                    continue;
                }
                walk(&path, keep, found);
            } else if path.file_name().and_then(|n| n.to_str()).is_some_and(keep) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&workspace_root().join(dir), keep, &mut found);
    found.sort();
    found
}

fn workflows() -> Vec<PathBuf> {
    files_under(".github/workflows", &|n| {
        n.ends_with(".yml") || n.ends_with(".yaml")
    })
}

fn dockerfiles() -> Vec<PathBuf> {
    files_under("fixtures", &|n| {
        n == "Dockerfile" || n.starts_with("Dockerfile.")
    })
}

fn ci_scripts() -> Vec<PathBuf> {
    let mut scripts = files_under("ci", &|n| n.ends_with(".sh"));
    scripts.push(workspace_root().join(".ci/run"));
    scripts
}

const ZIZMOR_ARGS: &[&str] = &["--offline", "--no-progress"];
/// Warnings and errors fail; info and style notes are left to review (as in `ci/lint.sh`).
const SHELLCHECK_ARGS: &[&str] = &["--severity=warning", "--external-sources"];

#[test]
fn workflows_pass_actionlint() {
    if !require_linter("workflows_pass_actionlint", ACTIONLINT) {
        return;
    }
    assert_clean("actionlint", &[], &workflows());
}

#[test]
fn workflows_pass_zizmor() {
    if !require_linter("workflows_pass_zizmor", ZIZMOR) {
        return;
    }
    assert_clean("zizmor", ZIZMOR_ARGS, &workflows());
}

#[test]
fn dockerfiles_pass_hadolint() {
    if !require_linter("dockerfiles_pass_hadolint", HADOLINT) {
        return;
    }
    assert_clean("hadolint", &[], &dockerfiles());
}

#[test]
fn ci_scripts_pass_shellcheck() {
    if !require_linter("ci_scripts_pass_shellcheck", SHELLCHECK) {
        return;
    }
    assert_clean("shellcheck", SHELLCHECK_ARGS, &ci_scripts());
}

/// Every compose file set that is deployed or tested: the reference stack alone, with its
/// test override, and with each `compose.override.yml` under `fixtures/` on top.
/// Every compose file set the gate runs: each stack's own (from its `gate.toml`: env file
/// plus compose files, and its infrastructure project), each broken variant layered on the
/// stack its `expect.toml` names, and each release override on the reference stack.
fn compose_sets() -> Vec<Vec<String>> {
    let root = workspace_root();
    let fixtures = root.join("fixtures");
    let mut stacks = std::collections::BTreeMap::new();
    for gate_toml in files_under("fixtures", &|n| n == "gate.toml") {
        let spec = smoke::gate::spec::StackSpec::load(&gate_toml)
            .unwrap_or_else(|err| panic!("`{}` does not load: {err}", gate_toml.display()));
        let env: Vec<String> = spec
            .env_file()
            .map(|f| vec!["--env-file".to_owned(), f.display().to_string()])
            .unwrap_or_default();
        let with = |files: Vec<PathBuf>| -> Vec<String> {
            let mut set = env.clone();
            for file in files {
                set.extend(["-f".to_owned(), file.display().to_string()]);
            }
            set
        };
        let folder = spec
            .root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let infra = spec.infra_compose_files();
        let infra = (!infra.is_empty()).then(|| with(infra));
        stacks.insert(folder, (with(spec.compose_files()), infra));
    }
    let mut sets = Vec::new();
    for (app, infra) in stacks.values() {
        sets.push(app.clone());
        sets.extend(infra.clone());
    }
    for override_file in files_under("fixtures", &|n| n == "compose.override.yml") {
        let dir = override_file.parent().unwrap_or(&fixtures);
        let stack = ["expect.toml", "expect.toml.pending"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(dir.join(name)).ok())
            .filter_map(|text| toml::from_str::<toml::Table>(&text).ok())
            .find_map(|table| table.get("stack")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "azionelab".to_owned());
        let (app, _) = stacks.get(&stack).unwrap_or_else(|| {
            panic!(
                "`{}` names the stack `{stack}`, which has no gate.toml",
                override_file.display()
            )
        });
        let mut set = app.clone();
        set.extend(["-f".to_owned(), override_file.display().to_string()]);
        sets.push(set);
    }
    sets
}

#[test]
fn compose_files_pass_docker_compose_config() {
    if !require_linter("compose_files_pass_docker_compose_config", COMPOSE) {
        return;
    }
    let mut failures = Vec::new();
    for set in compose_sets() {
        let mut args: Vec<&str> = vec!["compose"];
        args.extend(set.iter().map(String::as_str));
        args.extend(["config", "-q"]);
        let out = lint("docker", &args, &[]);
        if !out.status.success() {
            failures.push(describe("docker", &args, &[], &out));
        }
    }
    assert!(
        failures.is_empty(),
        "`docker compose config` rejects compose file sets:\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn actionlint_flags_untrusted_input_in_a_script() {
    if !require_linter("actionlint_flags_untrusted_input_in_a_script", ACTIONLINT) {
        return;
    }
    assert_flags(
        "actionlint",
        &[],
        "workflow-unpinned.yml",
        "potentially untrusted",
    );
}

#[test]
fn zizmor_flags_an_unpinned_action() {
    if !require_linter("zizmor_flags_an_unpinned_action", ZIZMOR) {
        return;
    }
    assert_flags(
        "zizmor",
        ZIZMOR_ARGS,
        "workflow-unpinned.yml",
        "unpinned-uses",
    );
}

#[test]
fn hadolint_flags_a_latest_base_image() {
    if !require_linter("hadolint_flags_a_latest_base_image", HADOLINT) {
        return;
    }
    assert_flags("hadolint", &[], "Dockerfile.bad", "DL3007");
}

#[test]
fn shellcheck_flags_iterating_over_ls() {
    if !require_linter("shellcheck_flags_iterating_over_ls", SHELLCHECK) {
        return;
    }
    assert_flags("shellcheck", SHELLCHECK_ARGS, "bad.sh", "SC2045");
}

#[test]
fn docker_compose_config_flags_a_malformed_file() {
    if !require_linter("docker_compose_config_flags_a_malformed_file", COMPOSE) {
        return;
    }
    let sample = sample_path("compose.bad.yml").display().to_string();
    let args = ["compose", "-f", sample.as_str(), "config", "-q"];
    let out = lint("docker", &args, &[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("ports"),
        "`docker compose config` should reject `compose.bad.yml` naming `ports`:\n{}",
        describe("docker", &args, &[], &out)
    );
}

/// The one-shot commands the gate files declare (operations and staff accounts), each as the
/// start of its command line (`python manage.py migrate`): a CI script that spells one out has
/// hard-coded what `smoke gate --plan=operations` (or `fixtures`, `staff`) gives it.
fn gate_file_commands() -> Vec<(String, String)> {
    let mut commands = Vec::new();
    for gate_toml in files_under("fixtures", &|n| n == "gate.toml") {
        let spec = smoke::gate::spec::StackSpec::load(&gate_toml)
            .unwrap_or_else(|err| panic!("`{}` does not load: {err}", gate_toml.display()));
        let named = spec
            .operations
            .iter()
            .map(|op| (format!("operation `{}`", op.name), &op.command))
            .chain(
                spec.staff
                    .iter()
                    .map(|staff| ("the staff command".to_owned(), &staff.command)),
            );
        for (what, command) in named {
            let start = command[..command.len().min(3)].join(" ");
            let what = format!("{what} of `{}`", gate_toml.display());
            if !commands.iter().any(|(s, _)| s == &start) {
                commands.push((start, what));
            }
        }
    }
    commands
}

/// What a CI script does by hand that `smoke` does for it, one finding per line: parsing the
/// gate file, a report or a JUnit file with Python or jq (`smoke gate --plan`, `smoke report`),
/// or spelling out a command of `commands` (see [`gate_file_commands`]).
fn hand_parsing(script: &str, commands: &[(String, String)]) -> Vec<String> {
    // Python reading a program from `-c` or stdin, or jq: a parser on the host.
    let parser =
        regex::Regex::new(r"(?:^|[\s;|&(])(?:python3?\s+-c?(?:\s|$)|jq(?:\s|$))").expect("regex");
    const READS: &[&str] = &[
        "report.json",
        "gate.toml",
        "junit",
        "testcase",
        "duration_ms",
        "phases",
        "checks",
        "outcome",
        "verdict",
        "compose_files",
        "test_only_services",
        "env_file",
        "operations",
    ];
    let lines: Vec<&str> = script.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i];
        i += 1;
        if line.trim_start().starts_with('#') {
            continue;
        }
        // The whole command: a heredoc's body, or a quoted program spanning lines.
        let mut command = line.to_owned();
        if let Some(tag) = heredoc_tag(line) {
            while i < lines.len() && lines[i].trim() != tag {
                command.push('\n');
                command.push_str(lines[i]);
                i += 1;
            }
        } else if parser.is_match(line) {
            while (command.matches('\'').count() % 2 == 1 || command.matches('"').count() % 2 == 1)
                && i < lines.len()
            {
                command.push('\n');
                command.push_str(lines[i]);
                i += 1;
            }
        }
        if command.contains("tomllib") {
            found.push(format!("line {number}: parses TOML (`tomllib`)"));
        } else if parser.is_match(&command)
            && let Some(what) = READS.iter().find(|w| command.contains(*w))
        {
            found.push(format!(
                "line {number}: reads `{what}` with Python or jq (use `smoke gate --plan` or `smoke report`)"
            ));
        }
        for (start, what) in commands {
            let hard_coded = command.match_indices(start.as_str()).any(|(at, _)| {
                command[at + start.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric() && c != '_')
            });
            if hard_coded {
                found.push(format!(
                    "line {number}: spells out `{start}`, {what} (use `smoke gate --plan=operations`, `fixtures` or `staff`)"
                ));
            }
        }
    }
    found
}

/// The closing word of a heredoc `line` opens (`<<'PY'`, `<<EOF`, `<<-X`), if any; a
/// here-string (`<<<`) opens none.
fn heredoc_tag(line: &str) -> Option<String> {
    let re = regex::Regex::new(r#"<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?"#).expect("regex");
    if line.contains("<<<") {
        return None;
    }
    re.captures(line).map(|c| c[1].to_owned())
}

#[test]
fn ci_scripts_ask_smoke_instead_of_parsing_gate_files_and_reports() {
    let commands = gate_file_commands();
    assert!(
        commands
            .iter()
            .any(|(s, _)| s == "python manage.py migrate"),
        "the gate files' commands were not found: {commands:?}"
    );
    let mut failures = Vec::new();
    for script in ci_scripts() {
        let text = std::fs::read_to_string(&script)
            .unwrap_or_else(|err| panic!("failed to read `{}`: {err}", script.display()));
        for finding in hand_parsing(&text, &commands) {
            failures.push(format!("{}: {finding}", script.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "CI scripts re-implement what `smoke` answers (gate.toml and the reports are read by \
         `smoke gate --plan` and `smoke report` only):\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_hand_parsing_check_flags_each_way_of_doing_it() {
    let text = std::fs::read_to_string(sample_path("hand-parsing.sh")).expect("the sample");
    let found = hand_parsing(&text, &gate_file_commands());
    let expected = [
        "line 4: parses TOML (`tomllib`)",
        "line 9: reads `report.json` with Python or jq",
        "line 10: reads `duration_ms` with Python or jq",
        "line 11: reads `junit` with Python or jq",
        "line 15: spells out `python manage.py migrate`",
        "line 16: spells out `python manage.py ensure_staff`",
        "line 18: spells out `python manage.py smoke_fixtures`",
    ];
    for words in expected {
        assert!(
            found.iter().any(|f| f.starts_with(words)),
            "`{words}` was not found in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
}
