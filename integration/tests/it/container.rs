//! The container chain itself: the base image exists, an image builds `FROM` it, and
//! testcontainers starts it. If this fails, every stack test would fail for the same reason,
//! so this test says so first and plainly.

use testcontainers::GenericBuildableImage;
use testcontainers::core::{ExecCommand, WaitFor};
use testcontainers::runners::{AsyncBuilder, AsyncRunner};
use tokio::io::AsyncReadExt;

use crate::common;

const BASE_IMAGE: &str = "debian:bookworm-slim";

#[tokio::test]
async fn an_image_built_from_the_base_image_starts_through_testcontainers() {
    if !common::require_engine("an_image_built_from_the_base_image_starts_through_testcontainers") {
        return;
    }
    let image = GenericBuildableImage::new("release-gate-selftest", "0.1.0")
        .with_dockerfile_string(format!(
            "FROM {BASE_IMAGE}\nCOPY hello.sh /usr/local/bin/hello.sh\n\
             CMD [\"sh\", \"/usr/local/bin/hello.sh\"]\n"
        ))
        .with_data(
            "#!/bin/sh\necho \"container chain ok on $(cat /etc/debian_version)\"\nexec sleep 300\n",
            "./hello.sh",
        )
        .build_image()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "failed to build an image `FROM {BASE_IMAGE}`: {err}\n\
                 (is the base image present? run `bash ci/base-images.sh`)"
            )
        });

    let container = image
        .with_wait_for(WaitFor::message_on_stdout("container chain ok"))
        .start()
        .await
        .unwrap_or_else(|err| panic!("failed to start the self-test container: {err}"));

    let mut exec = container
        .exec(ExecCommand::new(["cat", "/etc/os-release"]))
        .await
        .unwrap_or_else(|err| panic!("failed to exec in the self-test container: {err}"));
    let mut os_release = String::new();
    exec.stdout()
        .read_to_string(&mut os_release)
        .await
        .unwrap_or_else(|err| panic!("failed to read the exec output: {err}"));
    assert!(
        os_release.contains("bookworm"),
        "the self-test container does not run Debian bookworm; /etc/os-release says:\n{os_release}"
    );
    container
        .rm()
        .await
        .unwrap_or_else(|err| panic!("failed to remove the self-test container: {err}"));
}
