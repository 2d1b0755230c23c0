//! The MailDev 2.x REST API, the mail catcher of the test stack.
//!
//! What this relies on, as MailDev 2.x serves it (`lib/routes.js`, `lib/mailserver.js`):
//!
//! - `GET {api}/email`: every stored message, oldest first. Each has `id`, `subject`,
//!   `from` / `to` / `cc` / `bcc` as arrays of `{address, name}` (absent when the header is),
//!   `text` and `html` (absent when the part is), `envelope.to` (the SMTP recipients,
//!   `{address, args}`; an empty string for messages reloaded from disk) and `attachments`:
//!   `null` when there are none, else `{contentType, fileName, generatedFileName, contentId,
//!   ...}`.
//! - `GET {api}/email/{id}/attachment/{generatedFileName}`: the attachment's bytes.
//!
//! Fields are read leniently (`serde_json::Value` for address lists) because their shape
//! differs between a message received over SMTP and one reloaded from MailDev's directory.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::error_chain;
use super::{Attachment, Email, Found, MailQuery, MailboxError, SEEN_LAST, Seen, SeenMessage};

/// A catcher on the same machine answers in milliseconds; this only bounds a hung one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const UNREACHABLE_HINT: &str = "is the mail catcher running, and its API port published?";

/// A MailDev API client.
#[derive(Debug)]
pub struct HttpMailbox {
    api_url: url::Url,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailDevEmail {
    id: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    from: Value,
    #[serde(default)]
    to: Value,
    #[serde(default)]
    cc: Value,
    #[serde(default)]
    bcc: Value,
    #[serde(default)]
    text: Value,
    #[serde(default)]
    html: Value,
    #[serde(default)]
    envelope: Value,
    #[serde(default)]
    calculated_bcc: Value,
    #[serde(default)]
    attachments: Option<Vec<MailDevAttachment>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailDevAttachment {
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    generated_file_name: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
}

/// The bare addresses in a MailDev address list: `[{address, name}]`, or a plain string.
fn addresses(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Object(fields) => fields.get("address").and_then(Value::as_str),
                Value::String(address) => Some(address.as_str()),
                _ => None,
            })
            .filter(|address| !address.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::String(address) if !address.is_empty() => vec![address.clone()],
        _ => Vec::new(),
    }
}

impl MailDevEmail {
    /// Every address the message went to: headers and SMTP envelope, so that a Bcc counts.
    fn all_recipients(&self) -> Vec<String> {
        let mut all = addresses(&self.to);
        all.extend(addresses(&self.cc));
        all.extend(addresses(&self.bcc));
        all.extend(addresses(&self.calculated_bcc));
        if let Some(envelope_to) = self.envelope.get("to") {
            all.extend(addresses(envelope_to));
        }
        all
    }

    fn header_to(&self) -> Vec<String> {
        let to = addresses(&self.to);
        if !to.is_empty() {
            return to;
        }
        self.envelope.get("to").map(addresses).unwrap_or_default()
    }

    fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or_default()
    }

    fn matches(&self, q: &MailQuery) -> bool {
        q.matches(
            self.all_recipients().iter().map(String::as_str),
            self.subject(),
        )
    }
}

impl HttpMailbox {
    /// Builds the client and lists the messages once, so that a wrong URL fails now.
    pub(crate) async fn open(
        api_url: &url::Url,
        ca_cert_pem: Option<&[u8]>,
    ) -> Result<HttpMailbox, MailboxError> {
        let mut api_url = api_url.clone();
        // `Url::join` and `path_segments_mut` treat `/maildev` and `/maildev/` differently;
        // a base path (MailDev's `--base-pathname`) must end with a slash.
        if !api_url.path().ends_with('/') {
            let path = format!("{}/", api_url.path());
            api_url.set_path(&path);
        }
        let target = display(&api_url);
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("smoke/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_cert_pem {
            let certificate =
                reqwest::Certificate::from_pem(pem).map_err(|err| MailboxError::Tls {
                    target: target.clone(),
                    reason: format!("failed to read the CA certificate: {}", error_chain(&err)),
                })?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|err| MailboxError::Tls {
            target: target.clone(),
            reason: error_chain(&err),
        })?;
        let mailbox = HttpMailbox { api_url, client };
        mailbox.list().await?;
        Ok(mailbox)
    }

    pub(crate) fn target(&self) -> String {
        display(&self.api_url)
    }

    fn url(&self, segments: &[&str]) -> Result<url::Url, MailboxError> {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| MailboxError::InvalidUrl {
                url: self.target(),
                reason: "it cannot hold a path".to_owned(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn get(&self, url: url::Url) -> Result<reqwest::Response, MailboxError> {
        let shown = display(&url);
        let response =
            self.client
                .get(url)
                .send()
                .await
                .map_err(|err| MailboxError::Unreachable {
                    target: shown.clone(),
                    reason: error_chain(&err),
                    hint: UNREACHABLE_HINT,
                })?;
        let status = response.status();
        if status.is_server_error() {
            // A catcher still starting (or behind a proxy that is) answers 502/503: retry.
            return Err(MailboxError::Unreachable {
                target: shown,
                reason: format!("it answered {status}"),
                hint: UNREACHABLE_HINT,
            });
        }
        if !status.is_success() {
            return Err(MailboxError::Protocol {
                target: shown,
                reason: format!("it answered {status} (is this MailDev's API URL?)"),
            });
        }
        Ok(response)
    }

    async fn list(&self) -> Result<Vec<MailDevEmail>, MailboxError> {
        let url = self.url(&["email"])?;
        let shown = display(&url);
        let body = self
            .get(url)
            .await?
            .bytes()
            .await
            .map_err(|err| MailboxError::Unreachable {
                target: shown.clone(),
                reason: error_chain(&err),
                hint: UNREACHABLE_HINT,
            })?;
        serde_json::from_slice(&body).map_err(|err| MailboxError::Protocol {
            target: shown,
            reason: format!(
                "failed to read the message list: {} (is this MailDev's API URL?)",
                error_chain(&err)
            ),
        })
    }

    async fn attachment(
        &self,
        email_id: &str,
        attachment: &MailDevAttachment,
    ) -> Result<Attachment, MailboxError> {
        let filename = attachment
            .file_name
            .clone()
            .or_else(|| attachment.generated_file_name.clone())
            .unwrap_or_default();
        let Some(generated) = attachment.generated_file_name.as_deref() else {
            return Err(MailboxError::Protocol {
                target: self.target(),
                reason: format!(
                    "attachment `{filename}` of message `{email_id}` has no `generatedFileName`"
                ),
            });
        };
        let url = self.url(&["email", email_id, "attachment", generated])?;
        let shown = display(&url);
        let bytes =
            self.get(url)
                .await?
                .bytes()
                .await
                .map_err(|err| MailboxError::Unreachable {
                    target: shown,
                    reason: error_chain(&err),
                    hint: UNREACHABLE_HINT,
                })?;
        Ok(Attachment {
            filename,
            content_type: attachment
                .content_type
                .as_deref()
                .and_then(|ct| ct.split(';').next())
                .map(|ct| ct.trim().to_ascii_lowercase())
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            bytes: bytes.to_vec(),
        })
    }

    pub(crate) async fn find(
        &self,
        q: &MailQuery,
        fetch_newest: bool,
    ) -> Result<Found, MailboxError> {
        let emails = self.list().await?;
        let matching: Vec<&MailDevEmail> = emails.iter().filter(|email| email.matches(q)).collect();
        let newest = match matching.last() {
            Some(email) if fetch_newest => Some(self.complete(email).await?),
            _ => None,
        };
        Ok(Found {
            count: matching.len(),
            newest,
        })
    }

    async fn complete(&self, email: &MailDevEmail) -> Result<Email, MailboxError> {
        let mut attachments = Vec::new();
        for attachment in email.attachments.iter().flatten() {
            attachments.push(self.attachment(&email.id, attachment).await?);
        }
        Ok(Email {
            id: email.id.clone(),
            from: addresses(&email.from)
                .into_iter()
                .next()
                .unwrap_or_default(),
            to: email.header_to(),
            subject: email.subject().to_owned(),
            text: email.text.as_str().unwrap_or_default().to_owned(),
            html: email.html.as_str().map(str::to_owned),
            attachments,
        })
    }

    pub(crate) async fn seen(&self) -> Result<Seen, MailboxError> {
        let emails = self.list().await?;
        let skip = emails.len().saturating_sub(SEEN_LAST);
        Ok(Seen {
            total: emails.len(),
            last: emails
                .iter()
                .skip(skip)
                .map(|email| SeenMessage {
                    to: email.header_to(),
                    subject: email.subject().to_owned(),
                })
                .collect(),
            unavailable: None,
        })
    }
}

/// A URL for messages: without any password, secrets masked.
fn display(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only fails for URLs that cannot have credentials, which then have no password.
        let _ = shown.set_password(Some(crate::secret::MASK));
    }
    crate::secret::mask(shown.as_str())
}

#[cfg(test)]
mod tests;
