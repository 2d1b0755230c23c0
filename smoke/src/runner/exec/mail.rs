//! Email steps: wait for a message to the run's address, capture from its text, its HTML or
//! its attachments; and counting messages after a request (nothing sent twice).

use super::{Ctx, End};
use crate::check::{Captures, EmailSource, EmailStep, MailCount, MailTemplate, Value};
use crate::mailbox::{MailQuery, Mailbox};
use crate::report::{Failure, FailureKind, SkipReason};
use crate::secret::mask;

impl Ctx<'_> {
    async fn mailbox(&self) -> Result<&Mailbox, String> {
        let opened = self
            .mailbox
            .get_or_init(|| async {
                let Some(config) = &self.target.mailbox else {
                    return Err("no mailbox was given".to_owned());
                };
                let opened = match config {
                    crate::mailbox::MailboxConfig::Http { api_url } => {
                        Mailbox::open_http(api_url, self.target.ca_cert_pem.as_deref()).await
                    }
                    other => Mailbox::open(other).await,
                };
                opened.map_err(|e| mask(&e.to_string()))
            })
            .await;
        opened.as_ref().map_err(Clone::clone)
    }

    pub(super) async fn email_step(&self, email: &EmailStep, captures: &Captures) -> End {
        let query = match mail_query(&email.query, captures) {
            Ok(query) => query,
            Err(end) => return *end,
        };
        let mailbox = match self.mailbox().await {
            Ok(mailbox) => mailbox,
            Err(why) => return End::Fail(mailbox_failure(why)),
        };
        let found = match mailbox.wait_for(&query, self.target.timeouts.mail).await {
            Ok(found) => found,
            Err(error) => {
                return End::Fail(Failure {
                    title: "the email never arrived".to_owned(),
                    request: Some(format!(
                        "wait up to {:.0?} for {query}",
                        self.target.timeouts.mail
                    )),
                    expected: format!("{query}"),
                    actual: error.to_string(),
                    hint: Some(
                        "is the backend's email configured (host, port, sender)? look at its logs and the mailbox"
                            .to_owned(),
                    ),
                    ..Failure::default()
                });
            }
        };
        let mut values = Vec::new();
        for (name, source) in &email.captures {
            let (pattern, body, which) = match source {
                EmailSource::Text(pattern) => (pattern, found.text.clone(), "text"),
                EmailSource::Html(pattern) => {
                    (pattern, found.html.clone().unwrap_or_default(), "HTML")
                }
                EmailSource::Attachment {
                    name_prefix,
                    content_type,
                } => {
                    let prefix = match name_prefix.as_ref().map(|p| p.render(captures)) {
                        Some(Ok(prefix)) => Some(prefix),
                        Some(Err(e)) => {
                            return End::Skip(SkipReason::MissingCapture { name: e.0 });
                        }
                        None => None,
                    };
                    let attachment = found.attachments.iter().find(|a| {
                        prefix.as_ref().is_none_or(|p| a.filename.starts_with(p))
                            && content_type.as_ref().is_none_or(|t| {
                                a.content_type
                                    .to_ascii_lowercase()
                                    .starts_with(&t.to_ascii_lowercase())
                            })
                    });
                    match attachment {
                        Some(attachment) => {
                            values.push((name.clone(), Value::Bytes(attachment.bytes.clone())));
                            continue;
                        }
                        None => {
                            let seen = found
                                .attachments
                                .iter()
                                .map(|a| format!("`{}` ({})", a.filename, a.content_type))
                                .collect::<Vec<_>>();
                            let wanted = match (&prefix, content_type) {
                                (Some(p), Some(t)) => format!("an attachment `{p}…` of type `{t}`"),
                                (Some(p), None) => format!("an attachment `{p}…`"),
                                (None, Some(t)) => format!("an attachment of type `{t}`"),
                                (None, None) => "an attachment".to_owned(),
                            };
                            return End::Fail(Failure {
                                title: format!("the email carries no attachment for `{name}`"),
                                request: Some(format!("email `{}`", found.subject)),
                                expected: wanted,
                                actual: if seen.is_empty() {
                                    "no attachment".to_owned()
                                } else {
                                    seen.join(", ")
                                },
                                ..Failure::default()
                            });
                        }
                    }
                }
            };
            let captured = regex::Regex::new(pattern).ok().and_then(|re| {
                re.captures(&body)
                    .and_then(|c| c.get(1).or_else(|| c.get(0)))
                    .map(|m| m.as_str().to_owned())
            });
            match captured {
                Some(value) => values.push((name.clone(), Value::Text(value))),
                None => {
                    return End::Fail(Failure {
                        title: format!("failed to find `{name}` in the email's {which} body"),
                        request: Some(format!("email `{}`", found.subject)),
                        expected: format!("{which} matching `{pattern}`"),
                        actual: if body.trim().is_empty() {
                            format!("no {which} body")
                        } else {
                            "no match".to_owned()
                        },
                        excerpt: Some(crate::check::excerpt(
                            body.as_bytes(),
                            crate::check::EXCERPT_LIMIT,
                        )),
                        ..Failure::default()
                    });
                }
            }
        }
        End::Pass(values)
    }

    /// `Some` ends the step: the count is not the one expected, or cannot be read.
    pub(super) async fn mail_count(
        &self,
        count: &MailCount,
        captures: &Captures,
        described: &str,
    ) -> Option<End> {
        let query = match mail_query(&count.query, captures) {
            Ok(query) => query,
            Err(end) => return Some(*end),
        };
        let mailbox = match self.mailbox().await {
            Ok(mailbox) => mailbox,
            Err(why) => return Some(End::Fail(mailbox_failure(why))),
        };
        match mailbox.count(&query).await {
            Ok(n) if n == count.count => None,
            Ok(n) => Some(End::Fail(Failure {
                title: format!("{n} emails match {query}, not {}", count.count),
                request: Some(described.to_owned()),
                expected: format!("exactly {} matching email(s)", count.count),
                actual: format!("{n}"),
                ..Failure::default()
            })),
            Err(error) => Some(End::Fail(mailbox_failure(error.to_string()))),
        }
    }
}

fn mail_query(query: &MailTemplate, captures: &Captures) -> Result<MailQuery, Box<End>> {
    let render = |t: &crate::check::Template| {
        t.render(captures)
            .map_err(|e| Box::new(End::Skip(SkipReason::MissingCapture { name: e.0 })))
    };
    Ok(MailQuery {
        to: render(&query.to)?,
        subject_contains: render(&query.subject_contains)?,
    })
}

fn mailbox_failure(why: String) -> Failure {
    Failure {
        kind: FailureKind::Transport,
        title: "failed to read the mailbox".to_owned(),
        expected: "a readable mailbox".to_owned(),
        actual: why,
        hint: Some("check `--mailbox` and `SMOKE_IMAP_PASSWORD`".to_owned()),
        ..Failure::default()
    }
}
