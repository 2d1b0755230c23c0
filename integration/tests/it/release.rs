//! `ci/release-gate.sh` tags only on green: in a throwaway clone of the repository (so the
//! real one never gets a tag), a broken variant leaves no git tag, no image tag and nothing in
//! the registry, a green run creates both and pushes the images and the release's smoke image
//! to the real loopback registry, recording their digests in the tag; a dirty tree, an
//! existing tag or a missing registry is refused before anything runs, and a registry that
//! does not answer is exit 6 before anything is built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, image_id, smoke_bin, workspace_root};

/// The images the reference stack deploys (its test-only services are not released).
const RELEASED: &[&str] = &["azionelab/nginx", "azionelab/backend", "azionelab/postgres"];
/// The release's smoke image, built by ci/release-smoke.sh and pushed with the others.
const SMOKE_IMAGE: &str = "release-gate/smoke";
const BROKEN: &str = "fixtures/releases/broken-admin-routing/compose.override.yml";

/// A throwaway clone holding the work tree's CI scripts and fixtures, committed, so the
/// script sees a clean tree; removed on drop.
#[derive(Debug)]
struct Clone {
    dir: PathBuf,
}

impl Clone {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("release-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        git(
            &workspace_root(),
            &[
                "clone",
                "-q",
                &workspace_root().display().to_string(),
                &dir.display().to_string(),
            ],
        );
        // What is tested is the work tree, not only what was committed.
        for folder in ["ci", "fixtures"] {
            let status = Command::new("cp")
                .args([
                    "-a",
                    &workspace_root().join(folder).display().to_string(),
                    &dir.display().to_string(),
                ])
                .status()
                .expect("cp runs");
            assert!(status.success(), "failed to copy `{folder}` into the clone");
        }
        git(&dir, &["add", "-A"]);
        git(
            &dir,
            &[
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@localhost",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "test snapshot",
            ],
        );
        Clone { dir }
    }

    fn release(&self, version: &str, registry: Option<&str>, gate_args: &[&str]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.current_dir(&self.dir)
            .arg("ci/release-gate.sh")
            .arg(version)
            .env("SMOKE_BIN", smoke_bin())
            // The shipped smoke is this run's build, not a release build (minutes).
            .env("RELEASE_SMOKE_BIN", smoke_bin())
            .env_remove("RELEASE_REGISTRY")
            .env_remove("GITHUB_STEP_SUMMARY");
        if let Some(registry) = registry {
            cmd.env("RELEASE_REGISTRY", registry);
        }
        if !gate_args.is_empty() {
            cmd.arg("--").args(gate_args);
        }
        cmd.output().expect("ci/release-gate.sh starts")
    }

    fn tag_exists(&self, tag: &str) -> bool {
        Command::new("git")
            .current_dir(&self.dir)
            .args(["rev-parse", "-q", "--verify", &format!("refs/tags/{tag}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Clone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[track_caller]
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {} failed in {}:\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the image tags a test created, whatever happened.
#[derive(Debug)]
struct ImageTags(String);

impl Drop for ImageTags {
    fn drop(&mut self) {
        for repo in RELEASED.iter().chain([&SMOKE_IMAGE]) {
            let _ = Command::new("docker")
                .args(["image", "rm", &format!("{repo}:{}", self.0)])
                .output();
        }
    }
}

fn unique_version() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("0.0.0-test.{}{nanos:x}", std::process::id())
}

/// The HTTP status the registry answers for the manifest `reference` (a tag or a digest) of `repo`.
fn manifest_status(registry: &str, repo: &str, reference: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-I",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("http://{registry}/v2/{repo}/manifests/{reference}"),
        ])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn release_gate_refuses_to_tag_a_broken_variant() {
    if !common::require_engine("release_gate_refuses_to_tag_a_broken_variant") {
        return;
    }
    let Some(registry) = common::require_registry("release_gate_refuses_to_tag_a_broken_variant")
    else {
        return;
    };
    let clone = Clone::new("red");
    let version = unique_version();
    let _cleanup = ImageTags(version.clone());
    let out = clone.release(&version, Some(&registry), &["--override", BROKEN]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed check must end the release with the gate's code 1\n{}",
        describe(&out)
    );
    assert!(
        !clone.tag_exists(&format!("v{version}")),
        "a red gate created the tag v{version}\n{}",
        describe(&out)
    );
    for repo in RELEASED {
        assert_eq!(
            image_id(&format!("{repo}:{version}")),
            None,
            "a red gate created the image tag {repo}:{version}"
        );
    }
    for repo in RELEASED.iter().chain([&SMOKE_IMAGE]) {
        assert_eq!(
            manifest_status(&registry, repo, &version),
            "404",
            "a red gate pushed {repo}:{version} to the registry"
        );
    }
    assert_eq!(
        image_id(&format!("{SMOKE_IMAGE}:{version}")),
        None,
        "a red gate left the smoke image tag behind"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("routing.admin_reaches_django"),
        "the failed check is not named:\n{}",
        describe(&out)
    );
}

#[test]
fn release_gate_tags_the_commit_and_the_verified_images_when_green() {
    let test = "release_gate_tags_the_commit_and_the_verified_images_when_green";
    if !common::require_engine(test) {
        return;
    }
    let Some(registry) = common::require_registry(test) else {
        return;
    };
    let clone = Clone::new("green");
    let version = unique_version();
    let _cleanup = ImageTags(version.clone());
    let out = clone.release(&version, Some(&registry), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the release gate did not pass on the reference stack\n{}",
        describe(&out)
    );
    let tag = format!("v{version}");
    assert!(
        clone.tag_exists(&tag),
        "no tag {tag} after a green gate\n{}",
        describe(&out)
    );
    assert_eq!(
        git(&clone.dir, &["cat-file", "-t", &tag]).trim(),
        "tag",
        "{tag} is not an annotated tag"
    );
    assert_eq!(
        git(&clone.dir, &["rev-parse", &format!("{tag}^{{commit}}")]),
        git(&clone.dir, &["rev-parse", "HEAD"])
    );
    let message = git(&clone.dir, &["tag", "-l", "--format=%(contents)", &tag]);
    for repo in RELEASED {
        let reference = format!("{repo}:{version}");
        let id = image_id(&reference)
            .unwrap_or_else(|| panic!("no image tag {reference} after a green gate"));
        assert!(
            message.contains(&format!("{reference}={id}")),
            "the tag message does not record the digest of {reference} ({id}):\n{message}"
        );
    }
    assert!(
        message.contains("Gate: PASSED"),
        "the tag message has no gate verdict:\n{message}"
    );
    // Each released image and the smoke image, by a digest the registry has.
    assert!(
        message.contains(&format!("Registry: {registry}\n")),
        "the tag message does not name the registry:\n{message}"
    );
    for repo in RELEASED.iter().chain([&SMOKE_IMAGE]) {
        let prefix = format!("  {repo}@sha256:");
        let line = message
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| {
                panic!("no registry digest of {repo} in the tag message:\n{message}")
            });
        let digest = line
            .trim()
            .split_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        assert_eq!(
            digest.len(),
            "sha256:".len() + 64,
            "a malformed digest: {line}"
        );
        assert_eq!(
            manifest_status(&registry, repo, digest),
            "200",
            "the registry does not have {repo}@{digest}, recorded in the tag"
        );
        assert_eq!(
            manifest_status(&registry, repo, &version),
            "200",
            "the registry has no tag {repo}:{version}"
        );
    }
    let binary = clone.dir.join(format!(
        "target/release-artifacts/{version}/smoke-{version}-{}-linux-gnu",
        std::env::consts::ARCH
    ));
    assert!(binary.is_file(), "no smoke binary at {}", binary.display());
    assert!(
        message.contains(&format!("smoke-{version}-")),
        "the tag message does not name the smoke binary:\n{message}"
    );
}

#[test]
fn release_gate_refuses_without_a_registry_and_stops_when_it_does_not_answer() {
    let clone = Clone::new("registry");
    let version = unique_version();
    let _cleanup = ImageTags(version.clone());
    let out = clone.release(&version, None, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set RELEASE_REGISTRY"),
        "{}",
        describe(&out)
    );

    let down = format!("127.0.0.1:{}", common::closed_port());
    let out = clone.release(&version, Some(&down), &[]);
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the registry {down} does not answer"))
            && stderr.contains("nothing was tagged"),
        "{}",
        describe(&out)
    );
    assert!(
        !stderr.contains("building"),
        "the release built before checking the registry\n{}",
        describe(&out)
    );
    assert!(!clone.tag_exists(&format!("v{version}")));
}

#[test]
fn release_gate_refuses_a_dirty_tree_and_an_existing_tag() {
    let clone = Clone::new("refusals");
    std::fs::write(clone.dir.join("uncommitted.txt"), "work in progress\n").expect("write a file");
    let out = clone.release("9.9.9", None, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uncommitted changes"),
        "{}",
        describe(&out)
    );
    std::fs::remove_file(clone.dir.join("uncommitted.txt")).expect("remove the file");

    git(
        &clone.dir,
        &[
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@localhost",
            "tag",
            "-a",
            "v9.9.9",
            "-m",
            "taken",
        ],
    );
    let out = clone.release("9.9.9", None, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        describe(&out)
    );

    let out = clone.release("latest", None, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a version"),
        "{}",
        describe(&out)
    );
}
