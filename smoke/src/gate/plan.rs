//! `smoke gate --plan`: what a gate would do, without starting anything, so that scripts ask
//! the gate instead of parsing `gate.toml` themselves.
//!
//! The plan is made from the loaded [`StackSpec`] the way [`super::stack::Stack::prepare`]
//! makes a run's projects: the compose files (the stack's, then each `--override`, absolute),
//! the env file, the infrastructure project; plus the one-shot commands (operations, in an
//! order that respects `after`; the staff account; command assertions). Only the images need
//! `docker compose config` (the docker CLI with Compose v2, no engine); every other format is
//! read from the gate file alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::cli::{GateArgs, MACHINE_NOT_READY, bundled_stack};
use super::compose::{CommandError, ComposeConfig, Project};
use super::preflight::{self, Missing, Need};
use super::spec::{self, SpecError, StackSpec, interpolate, parse_env_file};
use super::stack::{build_project_name, infra_build_project_name};
use crate::exit;
use crate::secret::mask;

/// What `--plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// The whole plan as one JSON document.
    Json,
    /// The images to release, one per line: every image of a service that is not test-only,
    /// in the app and infrastructure projects, sorted.
    Images,
    /// The app project's `docker compose` arguments, one per line: `--env-file FILE`, then
    /// `-f FILE` for each compose file and `--override`.
    ComposeArgs,
    /// The same for the infrastructure project (`[infra_project]`); nothing without one.
    InfraComposeArgs,
    /// The compose project name the gate builds the app project's images under
    /// (`smokegate-build-<name>`): building under it makes the images a gate would use.
    BuildProject,
    /// The same for the infrastructure project (`smokegate-build-<name>-infra`); nothing
    /// without one.
    InfraBuildProject,
    /// One line per operation that is not fixture data, in an order that respects `after`:
    /// shell words `NAME [-e VAR]... SERVICE COMMAND...` (what follows `docker compose run
    /// --rm -T` or `exec -T`).
    Operations,
    /// The same for the operations that make fixture data (those with `exports`).
    Fixtures,
    /// The staff account's command as one such line (`staff -e TOKEN_ENV ...`); nothing
    /// without `[staff]`.
    Staff,
    /// `NAME HEX_CHARS` for each generated secret.
    Secrets,
    /// The `exports` of the fixture operations, one name per line.
    Exports,
}

impl PlanFormat {
    /// Whether this format needs the images, and so `docker compose config`.
    fn needs_compose(self) -> bool {
        matches!(self, PlanFormat::Json | PlanFormat::Images)
    }

    /// The name written after `--plan=`.
    fn name(self) -> String {
        use clap::ValueEnum as _;
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// Everything a gate of the stack would do, as far as the files say.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The stack's `name`.
    pub stack: String,
    /// The gate file, absolute.
    pub gate_file: PathBuf,
    /// The checks file, absolute.
    pub checks_file: PathBuf,
    /// The app project.
    pub project: ProjectPlan,
    /// The infrastructure project, started before the app project and removed after it.
    pub infra_project: Option<InfraPlan>,
    /// Every image of a service that is not test-only, in both projects, sorted: what a
    /// release tags.
    pub deployable_images: Vec<String>,
    /// The variables given a fresh random value per run.
    pub secrets: Vec<SecretPlan>,
    /// The one-shot operations, in an order that respects `after` (the gate runs those
    /// without `after` concurrently).
    pub operations: Vec<OperationPlan>,
    /// The staff account's command, after the operations.
    pub staff: Option<StaffPlan>,
    /// Commands run in the started stack whose exit status is a check.
    pub command_assertions: Vec<AssertionPlan>,
    /// The loaded gate file, for [`resolve_images`].
    #[serde(skip)]
    spec: StackSpec,
}

/// One compose project: how to invoke compose for it, and its images.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectPlan {
    /// The compose project name the gate builds its images under, stable per stack (compose
    /// stamps it into each image it builds).
    pub build_project: String,
    /// The env file compose substitutes variables from, absolute.
    pub env_file: Option<PathBuf>,
    /// Its compose files, absolute, in order (`--override` files last).
    pub compose_files: Vec<PathBuf>,
    /// `--env-file FILE -f FILE...`: the arguments of `docker compose` before its command.
    pub compose_args: Vec<String>,
    /// Each service's image, from `docker compose config`.
    pub images: Vec<ImagePlan>,
}

/// The infrastructure project (`[infra_project]`).
#[derive(Debug, Clone, Serialize)]
pub struct InfraPlan {
    /// Its short name (`<app project>-<name>`).
    pub name: String,
    /// The variable through which both projects get the shared network's per-run name.
    pub network_env: String,
    #[serde(flatten)]
    pub project: ProjectPlan,
}

/// One service's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePlan {
    /// The compose service.
    pub service: String,
    /// Its `image:`; none when it is built without a name (the gate then runs
    /// `<build_project>-<service>:gate`, and `infra.no_latest_tags` fails it).
    pub image: Option<String>,
    /// Listed in `test_only_services`: not released.
    pub test_only: bool,
    /// Has a `build:` section.
    pub build: bool,
}

/// A generated secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretPlan {
    pub name: String,
    pub hex_chars: usize,
}

/// A one-shot command run in a fresh container of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationPlan {
    pub name: String,
    pub service: String,
    pub command: Vec<String>,
    pub after: Vec<String>,
    /// Variables passed to the command by name (`-e NAME`).
    pub env: Vec<String>,
    pub exports: Vec<String>,
    /// It makes fixture data for the checks (it has `exports`): a deploy does not run it.
    pub fixture: bool,
}

/// The staff account's command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffPlan {
    pub service: String,
    pub command: Vec<String>,
    /// The variable the generated token reaches the command through.
    pub token_env: String,
    pub env: Vec<String>,
    pub after: Option<String>,
}

/// A command assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionPlan {
    pub name: String,
    pub service: String,
    pub command: Vec<String>,
    /// The Django system-check ids it accepts.
    pub allow: Vec<String>,
}

/// Why there is no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Spec(String),
    #[error(
        "the compose file `{0}` given with `--override` does not exist (give a path from the current folder)"
    )]
    MissingOverride(PathBuf),
    #[error("failed to read the env file `{path}`\n  caused by: {source}")]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("this machine cannot read compose files for `--plan={format}`: {missing}")]
    MachineNotReady { format: String, missing: Missing },
    #[error(
        "the compose files of `{project}` do not make a valid project ({files})\n  caused by: {source}\n  (check them with `docker compose -f FILE config`)"
    )]
    Config {
        project: String,
        files: String,
        source: CommandError,
    },
    #[error(
        "{what} holds a line break, which `--plan={format}` (one item per line) cannot print (use `--plan=json`)"
    )]
    LineBreak { what: String, format: String },
}

impl PlanError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            PlanError::MachineNotReady { .. } => MACHINE_NOT_READY,
            _ => exit::USAGE,
        }
    }
}

/// Runs `smoke gate --plan=FORMAT`: prints the plan, or one paragraph on stderr and exit 2
/// (5 when the images are asked for and the machine has no Compose v2).
pub async fn main(args: &GateArgs, format: PlanFormat) -> ExitCode {
    let stack = args.stack.clone().unwrap_or_else(bundled_stack);
    let result = match load(&stack, &args.overrides) {
        Ok(mut plan) => {
            let resolved = if format.needs_compose() {
                resolve_images(&mut plan, format).await
            } else {
                Ok(())
            };
            resolved.and_then(|()| render(&plan, format))
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(text) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            // A reader that went away (`| head`) is not an error.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            exit::code(exit::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {}", mask(&err.to_string()));
            exit::code(err.exit_code())
        }
    }
}

/// The plan of `stack` (a folder holding `gate.toml`, or the file) with `overrides` layered
/// on its compose files, from the files alone: no images yet (see [`resolve_images`]).
pub fn load(stack: &Path, overrides: &[PathBuf]) -> Result<Plan, PlanError> {
    let spec = StackSpec::load(stack).map_err(|err| spec_error(stack, &err))?;
    for file in overrides {
        if !file.is_file() {
            return Err(PlanError::MissingOverride(file.clone()));
        }
    }
    let gate_file = if stack.is_dir() {
        spec.root.join(spec::FILE_NAME)
    } else {
        std::path::absolute(stack).unwrap_or_else(|_| stack.to_path_buf())
    };
    let env_file = spec.env_file();
    let project = |build_project: String, files: Vec<PathBuf>| ProjectPlan {
        build_project,
        compose_args: compose_args(env_file.as_deref(), &files),
        env_file: env_file.clone(),
        compose_files: files,
        images: Vec::new(),
    };
    // As `Stack::prepare` layers them: the stack's files, then each override, absolute.
    let mut files = spec.compose_files();
    files.extend(
        overrides
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
    );
    let infra_project = spec.infra_project.as_ref().map(|infra| InfraPlan {
        name: infra.name.clone().unwrap_or_else(|| "infra".to_owned()),
        network_env: infra.network_env.clone(),
        project: project(
            infra_build_project_name(&spec.name),
            spec.infra_compose_files(),
        ),
    });
    Ok(Plan {
        stack: spec.name.clone(),
        gate_file,
        checks_file: spec.checks_file(),
        project: project(build_project_name(&spec.name), files),
        infra_project,
        deployable_images: Vec::new(),
        secrets: spec
            .secrets
            .generate
            .iter()
            .map(|s| SecretPlan {
                name: s.name().to_owned(),
                hex_chars: s.hex_chars(),
            })
            .collect(),
        operations: ordered_operations(&spec),
        staff: spec.staff.as_ref().map(|staff| StaffPlan {
            service: staff.service.clone(),
            command: staff.command.clone(),
            token_env: staff.token_env.clone(),
            env: staff.env.clone(),
            after: staff.after.clone(),
        }),
        command_assertions: spec
            .command_assertions
            .iter()
            .map(|a| AssertionPlan {
                name: a.name.clone(),
                service: a.service.clone(),
                command: a.command.clone(),
                allow: a.allow.keys().cloned().collect(),
            })
            .collect(),
        spec,
    })
}

/// The gate file's error, with a hint when the "stack" is a plan format written as
/// `--plan FORMAT` (which clap reads as `--plan` and a stack named FORMAT).
fn spec_error(stack: &Path, err: &SpecError) -> PlanError {
    let mut text = super::run::error_chain(err);
    let name = stack.to_string_lossy();
    if !stack.exists() && <PlanFormat as clap::ValueEnum>::from_str(&name, false).is_ok() {
        text.push_str(&format!(
            "\n  (to choose the plan's format, write `--plan={name}`: `--plan {name}` names a stack `{name}`)"
        ));
    }
    PlanError::Spec(text)
}

/// `--env-file FILE -f FILE...`.
fn compose_args(env_file: Option<&Path>, files: &[PathBuf]) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(env) = env_file {
        args.extend(["--env-file".to_owned(), env.display().to_string()]);
    }
    for file in files {
        args.extend(["-f".to_owned(), file.display().to_string()]);
    }
    args
}

/// The operations in the gate's waves: first those without `after`, then those whose `after`
/// all ran in earlier waves, and so on; declaration order within a wave.
fn ordered_operations(spec: &StackSpec) -> Vec<OperationPlan> {
    let mut placed: Vec<OperationPlan> = Vec::new();
    let mut pending: Vec<&spec::Operation> = spec.operations.iter().collect();
    while !pending.is_empty() {
        let (ready, waiting): (Vec<&spec::Operation>, Vec<&spec::Operation>) = pending
            .into_iter()
            .partition(|op| op.after.iter().all(|a| placed.iter().any(|p| &p.name == a)));
        if ready.is_empty() {
            // A cycle or an unknown name: the gate file's validation refuses both, so this
            // is unreachable; never loop forever on it.
            break;
        }
        placed.extend(ready.into_iter().map(|op| OperationPlan {
            name: op.name.clone(),
            service: op.service.clone(),
            command: op.command.clone(),
            after: op.after.clone(),
            env: op.env.clone(),
            exports: op.exports.clone(),
            fixture: !op.exports.is_empty(),
        }));
        pending = waiting;
    }
    placed
}

/// Fills in each project's images from `docker compose config`, run with the variables the
/// gate gives compose (the env file, a placeholder for each generated secret, `[env]`, the
/// shared network's name), then the deployable ones.
pub async fn resolve_images(plan: &mut Plan, format: PlanFormat) -> Result<(), PlanError> {
    preflight::check(Need::Config)
        .await
        .map_err(|missing| PlanError::MachineNotReady {
            format: format.name(),
            missing,
        })?;
    let env = compose_env(&plan.spec)?;
    let name = format!("smokegate-plan-{}", sanitize(&plan.stack));
    let config = |project: String, label: String, files: Vec<PathBuf>| {
        let env = env.clone();
        async move {
            let describe = files
                .iter()
                .map(|f| format!("`{}`", f.display()))
                .collect::<Vec<_>>()
                .join(", ");
            Project {
                name: project,
                files,
                env,
            }
            .config()
            .await
            .map_err(|source| PlanError::Config {
                project: label,
                files: describe,
                source,
            })
        }
    };
    let app = config(
        name.clone(),
        plan.stack.clone(),
        plan.project.compose_files.clone(),
    )
    .await?;
    let infra = match &plan.infra_project {
        Some(infra) => Some(
            config(
                format!("{name}-{}", sanitize(&infra.name)),
                format!("{} (infrastructure project)", plan.stack),
                infra.project.compose_files.clone(),
            )
            .await?,
        ),
        None => None,
    };
    set_images(plan, app, infra);
    Ok(())
}

/// Each project's images from its resolved configuration, then the deployable ones: every
/// named image of a service that is not test-only, sorted, each once.
fn set_images(plan: &mut Plan, app: ComposeConfig, infra: Option<ComposeConfig>) {
    let test_only = &plan.spec.test_only_services;
    let images = |config: ComposeConfig| -> Vec<ImagePlan> {
        config
            .services
            .into_iter()
            .map(|(service, s)| ImagePlan {
                test_only: test_only.contains(&service),
                build: s.build.is_some(),
                image: s.image,
                service,
            })
            .collect()
    };
    plan.project.images = images(app);
    if let (Some(plan_infra), Some(config)) = (&mut plan.infra_project, infra) {
        plan_infra.project.images = images(config);
    }
    let mut deployable: Vec<String> = plan
        .project
        .images
        .iter()
        .chain(plan.infra_project.iter().flat_map(|i| &i.project.images))
        .filter(|i| !i.test_only)
        .filter_map(|i| i.image.clone())
        .collect();
    deployable.sort();
    deployable.dedup();
    plan.deployable_images = deployable;
}

/// The variables `docker compose config` needs, as the gate sets them for a run: the env
/// file, then each generated secret (a placeholder: nothing is started), then `[env]`, then
/// the shared network's name.
fn compose_env(spec: &StackSpec) -> Result<BTreeMap<String, String>, PlanError> {
    let mut vars = match spec.env_file() {
        Some(path) => parse_env_file(
            &std::fs::read_to_string(&path)
                .map_err(|source| PlanError::EnvFile { path, source })?,
        ),
        None => BTreeMap::new(),
    };
    for secret in &spec.secrets.generate {
        vars.insert(secret.name().to_owned(), "0".repeat(secret.hex_chars()));
    }
    for (key, value) in &spec.env {
        let resolved = interpolate(value, &vars);
        vars.insert(key.clone(), resolved);
    }
    if let Some(infra) = &spec.infra_project {
        vars.insert(
            infra.network_env.clone(),
            format!("smokegate-plan-{}_edge", sanitize(&spec.name)),
        );
    }
    Ok(vars)
}

/// A compose project name: lowercase letters, digits and `-`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The plan in `format`.
pub fn render(plan: &Plan, format: PlanFormat) -> Result<String, PlanError> {
    let lines = |items: Vec<String>, what: &dyn Fn(&str) -> String| {
        let mut text = String::new();
        for item in items {
            if item.contains(['\n', '\r']) {
                return Err(PlanError::LineBreak {
                    what: what(&item),
                    format: format.name(),
                });
            }
            text.push_str(&item);
            text.push('\n');
        }
        Ok(text)
    };
    let argument = |arg: &str| format!("the argument `{}`", arg.escape_debug());
    match format {
        PlanFormat::Json => {
            let mut text = serde_json::to_string_pretty(plan).unwrap_or_default();
            text.push('\n');
            Ok(text)
        }
        PlanFormat::Images => lines(plan.deployable_images.clone(), &|i| {
            format!("the image `{i}`")
        }),
        PlanFormat::ComposeArgs => lines(plan.project.compose_args.clone(), &argument),
        PlanFormat::BuildProject => Ok(format!("{}\n", plan.project.build_project)),
        PlanFormat::InfraBuildProject => Ok(plan
            .infra_project
            .iter()
            .map(|i| format!("{}\n", i.project.build_project))
            .collect()),
        PlanFormat::InfraComposeArgs => lines(
            plan.infra_project
                .iter()
                .flat_map(|i| i.project.compose_args.clone())
                .collect(),
            &argument,
        ),
        PlanFormat::Operations | PlanFormat::Fixtures => {
            let fixture = format == PlanFormat::Fixtures;
            let mut text = String::new();
            for op in plan.operations.iter().filter(|op| op.fixture == fixture) {
                text.push_str(&command_line(
                    &op.name,
                    &op.env,
                    &op.service,
                    &op.command,
                    format,
                )?);
            }
            Ok(text)
        }
        PlanFormat::Staff => match &plan.staff {
            Some(staff) => {
                let mut env = vec![staff.token_env.clone()];
                env.extend(staff.env.iter().cloned());
                command_line("staff", &env, &staff.service, &staff.command, format)
            }
            None => Ok(String::new()),
        },
        PlanFormat::Secrets => lines(
            plan.secrets
                .iter()
                .map(|s| format!("{} {}", s.name, s.hex_chars))
                .collect(),
            &|s| format!("the secret `{s}`"),
        ),
        PlanFormat::Exports => {
            let mut names: Vec<String> = Vec::new();
            for name in plan.operations.iter().flat_map(|op| &op.exports) {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            lines(names, &|n| format!("the export `{n}`"))
        }
    }
}

/// `NAME [-e VAR]... SERVICE COMMAND...` as shell words, one line.
fn command_line(
    name: &str,
    env: &[String],
    service: &str,
    command: &[String],
    format: PlanFormat,
) -> Result<String, PlanError> {
    let mut words = vec![name.to_owned()];
    for var in env {
        words.extend(["-e".to_owned(), var.clone()]);
    }
    words.push(service.to_owned());
    words.extend(command.iter().cloned());
    if let Some(word) = words.iter().find(|w| w.contains(['\n', '\r'])) {
        return Err(PlanError::LineBreak {
            what: format!("`{name}`'s argument `{}`", word.escape_debug()),
            format: format.name(),
        });
    }
    let mut line = shell_words::join(&words);
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        std::fs::canonicalize(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
    }

    fn fixture(path: &str) -> PathBuf {
        workspace().join("fixtures").join(path)
    }

    /// The plan's text with the workspace's absolute path replaced, for snapshots.
    fn redacted(text: &str) -> String {
        text.replace(&workspace().display().to_string(), "[ROOT]")
    }

    fn plan_of(stack: &str) -> Plan {
        load(&fixture(stack), &[]).unwrap()
    }

    #[test]
    fn the_reference_stack_plans_its_operations_fixtures_and_staff() {
        let plan = plan_of("azionelab");
        assert_eq!(plan.stack, "azionelab");
        assert!(plan.gate_file.ends_with("azionelab/gate.toml"));
        assert!(plan.infra_project.is_none());
        let names: Vec<&str> = plan.operations.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["migrate", "collectstatic", "fixtures"]);
        let text = [
            PlanFormat::ComposeArgs,
            PlanFormat::InfraComposeArgs,
            PlanFormat::BuildProject,
            PlanFormat::InfraBuildProject,
            PlanFormat::Operations,
            PlanFormat::Fixtures,
            PlanFormat::Staff,
            PlanFormat::Secrets,
            PlanFormat::Exports,
        ]
        .map(|format| {
            format!(
                "--plan={}\n{}",
                format.name(),
                render(&plan, format).unwrap()
            )
        })
        .join("\n");
        insta::assert_snapshot!("plan_azionelab_lines", redacted(&text));
    }

    #[test]
    fn the_multienv_stack_plans_its_infrastructure_project() {
        let plan = plan_of("multienv");
        let infra = plan.infra_project.as_ref().unwrap();
        assert_eq!(infra.name, "infra");
        assert_eq!(infra.network_env, "INFRA_NETWORK");
        assert!(plan.staff.is_none());
        assert_eq!(render(&plan, PlanFormat::Staff).unwrap(), "");
        assert_eq!(render(&plan, PlanFormat::Fixtures).unwrap(), "");
        let text = [
            PlanFormat::ComposeArgs,
            PlanFormat::InfraComposeArgs,
            PlanFormat::BuildProject,
            PlanFormat::InfraBuildProject,
            PlanFormat::Operations,
        ]
        .map(|format| {
            format!(
                "--plan={}\n{}",
                format.name(),
                render(&plan, format).unwrap()
            )
        })
        .join("\n");
        insta::assert_snapshot!("plan_multienv_lines", redacted(&text));
    }

    #[test]
    fn images_of_both_projects_are_read_and_test_only_ones_are_not_deployable() {
        let mut plan = plan_of("multienv");
        let config =
            |json: serde_json::Value| -> ComposeConfig { serde_json::from_value(json).unwrap() };
        // As `docker compose config --format json` prints them, abridged.
        let app = config(serde_json::json!({"services": {
            "nginx": {"image": "multienv/nginx:0.1.0", "build": {"context": "../nginx"}},
            "prod-web": {"image": "multienv/django:0.1.0", "build": {"context": "../django"}},
            "staging-web": {"image": "multienv/django:0.1.0", "build": {"context": "../django"}},
            "unnamed": {"build": {"context": "."}},
        }}));
        let infra = config(serde_json::json!({"services": {
            "redis": {"image": "multienv/redis:7-0.1.0", "build": {"context": "../redis"}},
            "postgres": {"image": "postgres:15.6"},
        }}));
        set_images(&mut plan, app, Some(infra));
        assert_eq!(
            plan.deployable_images,
            [
                "multienv/django:0.1.0",
                "multienv/nginx:0.1.0",
                "multienv/redis:7-0.1.0",
                "postgres:15.6"
            ]
        );
        let infra = &plan.infra_project.as_ref().unwrap().project.images;
        assert_eq!(
            infra[0],
            ImagePlan {
                service: "postgres".into(),
                image: Some("postgres:15.6".into()),
                test_only: false,
                build: false,
            }
        );
        assert_eq!(
            render(&plan, PlanFormat::Images).unwrap().lines().count(),
            4
        );

        // The reference stack's test-only services (`mail`, `certs`) are not released, but
        // an image one of them shares with a released service is.
        let mut plan = plan_of("azionelab");
        let app = config(serde_json::json!({"services": {
            "nginx": {"image": "azionelab/nginx:0.1.0", "build": {"context": "."}},
            "certs": {"image": "azionelab/nginx:0.1.0", "build": {"context": "."}},
            "mail": {"image": "azionelab/maildev:2.2.1", "build": {"context": "."}},
        }}));
        set_images(&mut plan, app, None);
        assert_eq!(plan.deployable_images, ["azionelab/nginx:0.1.0"]);
        let mail = plan
            .project
            .images
            .iter()
            .find(|i| i.service == "mail")
            .unwrap();
        assert!(mail.test_only && mail.build);
        let json: serde_json::Value =
            serde_json::from_str(&render(&plan, PlanFormat::Json).unwrap()).unwrap();
        assert_eq!(json["project"]["images"][1]["service"], "mail");
        assert_eq!(json["infra_project"], serde_json::Value::Null);
        assert_eq!(json["operations"][2]["fixture"], true);
        assert_eq!(json["staff"]["token_env"], "SMOKE_STAFF_TOKEN");
        assert_eq!(
            json["command_assertions"][0]["name"],
            "infra.check_deploy_clean"
        );
    }

    #[test]
    fn overrides_come_last_and_absolute() {
        let over = fixture("broken/admin-not-proxied/compose.override.yml");
        let plan = load(&fixture("azionelab"), std::slice::from_ref(&over)).unwrap();
        let files = &plan.project.compose_files;
        assert_eq!(files.len(), 3);
        assert_eq!(files[2], over);
        assert!(files.iter().all(|f| f.is_absolute()), "{files:?}");
        let args = &plan.project.compose_args;
        assert_eq!(
            args[..2],
            [
                "--env-file".to_owned(),
                fixture("azionelab/.env.example").display().to_string()
            ]
        );
        assert_eq!(
            args[args.len() - 2..],
            ["-f".to_owned(), over.display().to_string()]
        );
        let err = load(&fixture("azionelab"), &[PathBuf::from("no/such.yml")]).unwrap_err();
        assert!(err.to_string().contains("`no/such.yml`"), "{err}");
        assert_eq!(err.exit_code(), exit::USAGE);
    }

    #[test]
    fn operations_are_ordered_after_what_they_wait_for_and_fixtures_are_told_apart() {
        let dir = std::env::temp_dir().join(format!(
            "smoke-plan-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.yml"), "services: {}\n").unwrap();
        std::fs::write(
            dir.join("gate.toml"),
            r#"
name = "order"
compose_files = ["c.yml"]
[public]
service = "web"
http_port = 80
[[operations]]
name = "seed"
service = "web"
command = ["sh", "-c", "echo ID=$(seed) 'quoted arg'"]
after = ["migrate", "cache"]
env = ["TOKEN"]
exports = ["ID"]
[[operations]]
name = "migrate"
service = "web"
command = ["migrate"]
[[operations]]
name = "warm"
service = "web"
command = ["warm"]
after = "migrate"
[[operations]]
name = "cache"
service = "web"
command = ["cache", "two\nlines"]
"#,
        )
        .unwrap();
        let plan = load(&dir, &[]).unwrap();
        let names: Vec<&str> = plan.operations.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["migrate", "cache", "seed", "warm"]);
        assert_eq!(
            render(&plan, PlanFormat::Fixtures).unwrap(),
            "seed -e TOKEN web sh -c 'echo ID=$(seed) '\\''quoted arg'\\'''\n"
        );
        // A word with a line break cannot be one line: an error, never a broken line.
        let err = render(&plan, PlanFormat::Operations).unwrap_err();
        assert!(
            err.to_string().contains("`cache`'s argument `two\\nlines`"),
            "{err}"
        );
        assert_eq!(err.exit_code(), exit::USAGE);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_plan_format_written_as_a_stack_gets_a_hint() {
        let err = load(Path::new("images"), &[]).unwrap_err().to_string();
        assert!(err.contains("write `--plan=images`"), "{err}");
        let err = load(Path::new("no-such-stack"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("failed to read the stack description"),
            "{err}"
        );
        assert!(!err.contains("--plan="), "{err}");
    }
}
