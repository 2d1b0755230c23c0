//! Browser steps: one browser per run, started at the first browser step, each step a tab.

use std::sync::Arc;

use super::{Ctx, End, transport_failure};
use crate::check::{BrowserStep, Captures};
use crate::report::{Failure, FailureKind};
use crate::runner::Target;
use crate::runner::browser::{self, Options, Session};
use crate::runner::http::Http;

/// Starts the browser `target`'s browser steps run in, its host names resolved as `http`
/// resolves them.
pub(in crate::runner) async fn launch(
    target: &Target,
    http: &Http,
) -> Result<Arc<Session>, String> {
    let executable = target
        .browser
        .clone()
        .ok_or_else(|| format!("no browser: {}", browser::INSTALL_HINT))?;
    let options = Options {
        executable,
        resolve: http.browser_resolve(),
        accept_any_certificate: target.ca_cert_pem.is_some(),
        profile: std::env::temp_dir().join(format!(
            "smoke-browser-{}-{}",
            target.run_id,
            std::process::id()
        )),
        screenshot_passes: target.screenshots,
    };
    Session::launch(&options).await.map(Arc::new)
}

impl Ctx<'_> {
    /// The run's browser: the one the caller started ahead ([`Target::browser_session`]),
    /// else started on first use.
    async fn browser(&self, http: &Http) -> Result<Arc<Session>, String> {
        self.browser
            .get_or_init(|| async {
                if let Some(started) = &self.target.browser_session {
                    return Ok(started.session());
                }
                launch(&self.target, http).await
            })
            .await
            .clone()
    }

    /// Starts the run's browser ahead of its first step.
    pub(in crate::runner) async fn warm_browser(&self) {
        let _ = self.browser(&self.http).await;
    }

    /// Closes the run's browser, if one was started.
    pub(in crate::runner) async fn close_browser(&self) {
        if let Some(Ok(session)) = self.browser.get() {
            session.close().await;
        }
    }

    pub(super) async fn browser_step(
        &self,
        http: &Http,
        name: &str,
        step: &BrowserStep,
        captures: &Captures,
    ) -> End {
        let url = match http.url(&step.request, captures) {
            Ok(url) => url,
            Err(e) => {
                return End::Fail(transport_failure(
                    &e,
                    http.describe(&step.request, captures),
                ));
            }
        };
        let session = match self.browser(http).await {
            Ok(session) => session,
            Err(e) => {
                return End::Fail(Failure {
                    kind: FailureKind::Setup,
                    title: e,
                    request: Some(format!("BROWSER {url}")),
                    expected: "a headless browser to open the page in".to_owned(),
                    actual: "none started".to_owned(),
                    hint: Some(browser::INSTALL_HINT.to_owned()),
                    ..Failure::default()
                });
            }
        };
        let visit = session.visit(&url, step, captures).await;
        let passed = visit.passed();
        let evidence = if !passed || self.target.screenshots {
            browser::keep(&self.target.evidence_dir, name, &visit)
        } else {
            Vec::new()
        };
        if passed {
            End::Pass(Vec::new())
        } else {
            let mut failure = visit.failure();
            failure.evidence = evidence;
            End::Fail(failure)
        }
    }
}
