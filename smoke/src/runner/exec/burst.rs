//! Many requests at once: a burst whose statuses must be distributed exactly (capacity under
//! concurrency), a rate limit's burst, and normal traffic spaced in time.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Ctx, End, transport_failure};
use crate::check::{BurstStep, Captures, Request, Response, Value};
use crate::report::{Failure, FailureKind};
use crate::runner::http::Http;

fn tally(map: &BTreeMap<u16, usize>) -> String {
    map.iter()
        .map(|(s, n)| format!("{n} × {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ctx<'_> {
    pub(super) async fn burst(&self, http: &Http, burst: &BurstStep, captures: &Captures) -> End {
        let described = format!(
            "{} × {} at once",
            burst.count,
            http.describe(&burst.request, captures)
        );
        let sends = (0..burst.count).map(|i| {
            let mut mine = captures.clone();
            mine.insert("i".to_owned(), Value::Text(i.to_string()));
            async move { http.send(&burst.request, &mine).await }
        });
        let answers = futures::future::join_all(sends).await;
        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        let mut errors = Vec::new();
        for answer in &answers {
            match answer {
                Ok(response) => *by_status.entry(response.status).or_default() += 1,
                Err(error) => errors.push(error.message.clone()),
            }
        }
        let expected: BTreeMap<u16, usize> = burst.statuses.iter().copied().collect();
        if by_status != expected || !errors.is_empty() {
            let mut actual = tally(&by_status);
            if !errors.is_empty() {
                actual.push_str(&format!(
                    "; {} without an answer ({})",
                    errors.len(),
                    errors[0]
                ));
            }
            let server_errors: usize = by_status.range(500..).map(|(_, n)| n).sum();
            let refused: usize = [401, 403, 413]
                .iter()
                .filter_map(|s| by_status.get(s))
                .sum();
            let (kind, title, hint) = if server_errors > 0 {
                (
                    FailureKind::ServerError,
                    format!("server errors under {} concurrent requests", burst.count),
                    Some("5xx under concurrency: look for database errors (locks, connections) in the backend's logs".to_owned()),
                )
            } else if refused == burst.count {
                (
                    FailureKind::Mismatch,
                    "every request of the burst was refused".to_owned(),
                    Some("the request itself is refused, not the burst: see the other checks sending it".to_owned()),
                )
            } else {
                (
                    FailureKind::Mismatch,
                    "concurrent requests were not handled as expected".to_owned(),
                    None,
                )
            };
            let excerpt = answers
                .iter()
                .flatten()
                .find(|r| r.status >= 500)
                .and_then(Response::excerpt);
            return End::Fail(Failure {
                kind,
                title,
                request: Some(described),
                expected: tally(&expected),
                actual,
                excerpt,
                hint,
                ..Failure::default()
            });
        }
        if let Some(then) = &burst.then {
            return self.http_step(http, then, "", captures).await;
        }
        End::Pass(Vec::new())
    }

    /// Exactly `burst` requests at once: at least one refused, no other 5xx.
    pub(super) async fn rate_limit_burst(
        &self,
        http: &Http,
        request: &Request,
        burst: usize,
        refused_status: u16,
        captures: &Captures,
    ) -> End {
        let described = format!("{burst} × {} at once", http.describe(request, captures));
        let answers =
            futures::future::join_all((0..burst).map(|_| http.send(request, captures))).await;
        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        let mut errors = Vec::new();
        for answer in &answers {
            match answer {
                Ok(response) => {
                    if let Some(failure) = self.maintenance(http, request, response, &described) {
                        return End::Fail(failure);
                    }
                    *by_status.entry(response.status).or_default() += 1;
                }
                Err(error) => errors.push(error.message.clone()),
            }
        }
        let mut actual = tally(&by_status);
        if !errors.is_empty() {
            actual.push_str(&format!(
                "; {} without an answer ({})",
                errors.len(),
                errors[0]
            ));
        }
        let refused = by_status.get(&refused_status).copied().unwrap_or(0);
        let server_errors: usize = by_status
            .range(500..)
            .filter(|(s, _)| **s != refused_status)
            .map(|(_, n)| n)
            .sum();
        let expected =
            format!("at least one status {refused_status}, no other 5xx, every request answered");
        let excerpt = answers
            .iter()
            .flatten()
            .find(|r| r.status >= 500 && r.status != refused_status)
            .and_then(Response::excerpt);
        let (kind, title) = if server_errors > 0 {
            (
                FailureKind::ServerError,
                format!("server errors under a burst of {burst}"),
            )
        } else if !errors.is_empty() {
            (
                FailureKind::Transport,
                format!("requests of a burst of {burst} got no answer"),
            )
        } else if refused == 0 {
            (
                FailureKind::Mismatch,
                format!("rate limit not enforced: none of {burst} requests at once was refused"),
            )
        } else {
            return End::Pass(Vec::new());
        };
        End::Fail(Failure {
            kind,
            title,
            request: Some(described),
            expected,
            actual,
            excerpt,
            ..Failure::default()
        })
    }

    /// `count` requests, `interval` apart: none refused, none a 5xx.
    pub(super) async fn spaced(
        &self,
        http: &Http,
        request: &Request,
        count: usize,
        interval: Duration,
        refused_status: u16,
        captures: &Captures,
    ) -> End {
        let described = format!(
            "{count} × {}, {} ms apart",
            http.describe(request, captures),
            interval.as_millis()
        );
        let mut statuses = Vec::new();
        for i in 0..count {
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            let response = match http.send(request, captures).await {
                Ok(response) => response,
                Err(error) => return End::Fail(transport_failure(&error, described)),
            };
            if let Some(failure) = self.maintenance(http, request, &response, &described) {
                return End::Fail(failure);
            }
            statuses.push(response.status.to_string());
            if response.status == refused_status || response.status >= 500 {
                let (kind, title) = if response.status == refused_status {
                    (
                        FailureKind::Mismatch,
                        format!(
                            "normal traffic refused: request {} of {count} got {refused_status}",
                            i + 1
                        ),
                    )
                } else {
                    (
                        FailureKind::ServerError,
                        format!("server error: status {}", response.status),
                    )
                };
                return End::Fail(Failure {
                    kind,
                    title,
                    request: Some(described),
                    expected: format!("{count} answers, none {refused_status} or 5xx"),
                    actual: format!("statuses {}", statuses.join(", ")),
                    excerpt: response.excerpt(),
                    ..Failure::default()
                });
            }
        }
        End::Pass(Vec::new())
    }
}
