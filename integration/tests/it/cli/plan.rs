//! `smoke gate --plan`: what the gate would do on the bundled stacks, without starting
//! anything, in each format the CI scripts read; and its errors (exit 2, 5 never here).
//! The line formats read only the gate file; `json` and `images` also ask `docker compose
//! config` (the docker CLI with Compose v2), so those tests need the machine the container
//! tests need.

use std::path::Path;

use super::{Ran, run};
use crate::common::smoke_cmd::smoke;
use crate::common::{require_engine, workspace_root};

const STACKS: &[&str] = &["azionelab", "multienv", "stage"];

/// Every format that is read from the gate file alone.
const LINE_FORMATS: &[&str] = &[
    "compose-args",
    "infra-compose-args",
    "build-project",
    "infra-build-project",
    "operations",
    "fixtures",
    "staff",
    "secrets",
    "exports",
];

fn stack(name: &str) -> String {
    workspace_root()
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The workspace's absolute path as `[ROOT]`, for snapshots.
fn redact_root(text: &str) -> String {
    let root = std::fs::canonicalize(workspace_root()).unwrap();
    text.replace(&root.display().to_string(), "[ROOT]")
        .replace(&workspace_root().display().to_string(), "[ROOT]")
}

fn plan(args: &[&str]) -> Ran {
    let mut full = vec!["gate"];
    full.extend_from_slice(args);
    run(&mut smoke(&full))
}

#[test]
fn plan_line_formats_of_the_bundled_stacks() {
    let mut text = String::new();
    for name in STACKS {
        let stack = stack(name);
        for format in LINE_FORMATS {
            let ran = plan(&[&stack, &format!("--plan={format}")]);
            ran.assert_code(0);
            assert!(ran.stderr.is_empty(), "{ran:?}");
            text.push_str(&format!(
                "$ smoke gate {name} --plan={format}\n{}\n",
                ran.stdout
            ));
        }
    }
    insta::assert_snapshot!("gate_plan_lines", redact_root(&text));
}

#[test]
fn plan_compose_args_put_overrides_last_and_absolute() {
    let over = "fixtures/broken/admin-not-proxied/compose.override.yml";
    let mut cmd = smoke(&[
        "gate",
        "fixtures/azionelab",
        "--override",
        over,
        // Any other gate option is accepted and changes nothing.
        "--no-build",
        "--category",
        "pages",
        "--plan=compose-args",
    ]);
    let ran = run(cmd.current_dir(workspace_root()));
    ran.assert_code(0);
    let args: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(args.len(), 8, "{ran:?}");
    assert_eq!(args[6], "-f");
    assert_eq!(
        Path::new(args[7]),
        std::path::absolute(workspace_root().join(over)).unwrap()
    );
    assert!(
        args.iter()
            .all(|a| a.starts_with('-') || a.starts_with('/')),
        "{ran:?}"
    );
}

#[test]
fn plan_json_holds_projects_images_and_commands() {
    if !require_engine("plan_json_holds_projects_images_and_commands") {
        return;
    }
    // The bundled stack when none is named, JSON when no format is.
    let ran = plan(&["--plan"]);
    ran.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(json["stack"], "azionelab");
    assert_eq!(
        json["deployable_images"],
        serde_json::json!([
            "azionelab/backend:0.1.0",
            "azionelab/nginx:0.1.0",
            "azionelab/postgres:15-0.1.0"
        ])
    );
    let mail = json["project"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "mail")
        .unwrap();
    assert_eq!(mail["test_only"], true);
    assert_eq!(mail["build"], true);
    assert_eq!(json["operations"][0]["name"], "migrate");
    assert_eq!(json["operations"][2]["fixture"], true);
    assert_eq!(json["staff"]["token_env"], "SMOKE_STAFF_TOKEN");

    // The stack with an infrastructure project: its files and images too.
    let ran = plan(&[&stack("multienv"), "--plan=json"]);
    ran.assert_code(0);
    insta::assert_snapshot!("gate_plan_multienv_json", redact_root(&ran.stdout));
}

#[test]
fn plan_images_are_what_a_release_tags() {
    if !require_engine("plan_images_are_what_a_release_tags") {
        return;
    }
    let mut text = String::new();
    for name in STACKS {
        let ran = plan(&[&stack(name), "--plan=images"]);
        ran.assert_code(0);
        text.push_str(&format!(
            "$ smoke gate {name} --plan=images\n{}\n",
            ran.stdout
        ));
    }
    insta::assert_snapshot!("gate_plan_images", text);
}

#[test]
fn plan_of_a_missing_stack_is_exit_2_and_a_format_taken_for_a_stack_says_how() {
    let ran = plan(&["/nonexistent/stack", "--plan=operations"]);
    ran.assert_code(2)
        .assert_stderr_contains("error: failed to read the stack description `/nonexistent/stack`");
    assert!(ran.stdout.is_empty(), "{ran:?}");
    assert!(
        !ran.stderr.contains("--plan="),
        "no format hint for a real path: {ran:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let ran = run(smoke(&["gate", "--plan", "images"]).current_dir(dir.path()));
    ran.assert_code(2)
        .assert_stderr_contains("write `--plan=images`: `--plan images` names a stack");
    assert!(ran.stdout.is_empty(), "{ran:?}");
}

#[test]
fn plan_refuses_an_unknown_format_a_missing_override_and_an_invalid_gate_file() {
    plan(&["--plan=everything"])
        .assert_code(2)
        .assert_stderr_contains("invalid value 'everything'")
        .assert_stderr_contains("compose-args");
    plan(&[
        &stack("azionelab"),
        "--override",
        "/nonexistent.yml",
        "--plan=staff",
    ])
    .assert_code(2)
    .assert_stderr_contains("`/nonexistent.yml` given with `--override` does not exist");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gate.toml"),
        "name = \"x\"\ncompose_files = []\n",
    )
    .unwrap();
    plan(&[dir.path().to_str().unwrap(), "--plan=operations"])
        .assert_code(2)
        .assert_stderr_contains("failed to parse the stack description");
}

#[test]
fn plan_images_of_a_compose_file_that_does_not_parse_is_exit_2() {
    if !require_engine("plan_images_of_a_compose_file_that_does_not_parse_is_exit_2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yml"),
        "services:\n  web:\n    image: x:1\n    ports: 80\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gate.toml"),
        "name = \"broken\"\ncompose_files = [\"compose.yml\"]\n[public]\nservice = \"web\"\nhttp_port = 80\n",
    )
    .unwrap();
    let stack = dir.path().to_str().unwrap();
    let ran = plan(&[stack, "--plan=images"]);
    ran.assert_code(2)
        .assert_stderr_contains("the compose files of `broken` do not make a valid project")
        .assert_stderr_contains("caused by:");
    assert!(ran.stdout.is_empty(), "{ran:?}");
    // The line formats do not read the compose files.
    plan(&[stack, "--plan=compose-args"]).assert_code(0);
}
