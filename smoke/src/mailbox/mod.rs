//! Reading the emails a smoke run triggers, from a mail catcher or a real inbox.
//!
//! A booking sends two emails (see `fixtures/azionelab/API.md`, "Emails"); the smoke checks
//! need to read them to follow the confirmation link and decode the QR code. Two backends sit
//! behind one [`Mailbox`]:
//!
//! - [`MailboxConfig::Http`]: the REST API of a MailDev 2.x mail catcher (the test stack's
//!   `mail` service), read with `reqwest` (module `maildev`).
//! - [`MailboxConfig::Imap`]: a live site's real inbox over IMAP4rev1, `imaps://` with rustls
//!   or cleartext `imap://` to a loopback server only (module `imap`).
//!
//! [`Mailbox::wait_for`] polls with a deadline and a growing delay; when the deadline passes,
//! [`MailboxError::NeverArrived`] says what the mailbox did hold, so a person can tell an email
//! sent to the wrong address from one that never left. Matching is case-insensitive, both on
//! the recipient address and on the subject substring, for both backends (IMAP `SEARCH` is
//! case-insensitive anyway).
//!
//! Passwords are [`Secret`]s and every error text goes through [`crate::secret::mask`].

mod imap;
mod maildev;
mod mime;

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::secret::{Secret, mask};

pub use imap::ImapMailbox;
pub use maildev::HttpMailbox;

/// The first pause between two polls; it grows by half each time up to [`MAX_POLL_DELAY`].
const FIRST_POLL_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between two polls: an email that arrives is noticed within this.
const MAX_POLL_DELAY: Duration = Duration::from_secs(2);
/// Even the last poll before the deadline gets this long to answer.
const MIN_ATTEMPT_TIME: Duration = Duration::from_secs(2);
/// How long the summary of what was seen may take once the deadline has passed.
const SEEN_TIME: Duration = Duration::from_secs(10);
/// How many of the newest messages [`Seen`] lists.
pub const SEEN_LAST: usize = 5;

/// Where the emails are read.
#[derive(Debug, Clone)]
pub enum MailboxConfig {
    /// A MailDev 2.x REST API, e.g. `http://127.0.0.1:1080/`.
    Http { api_url: url::Url },
    /// A real inbox over IMAP.
    Imap(ImapConfig),
}

/// An IMAP inbox.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    /// Implicit TLS (`imaps://`, usually port 993). Without it the password travels in clear,
    /// which [`Mailbox::open`] allows only to a loopback address.
    pub tls: bool,
    pub username: String,
    pub password: Secret,
    /// The folder searched, `INBOX` unless the URL names another.
    pub folder: String,
    /// An extra CA certificate (PEM) trusted besides the public roots, for a server with a
    /// private certificate authority.
    pub ca_cert_pem: Option<Vec<u8>>,
}

/// One email, with its attachments' bytes.
#[derive(Debug, Clone)]
pub struct Email {
    /// The backend's identifier: MailDev's id, or the IMAP UID.
    pub id: String,
    /// The sender's bare address (`noreply@example.org`), empty when the email has none.
    pub from: String,
    /// The bare addresses of the `To` header (the SMTP envelope's recipients when the header
    /// names none, as MailDev reports them).
    pub to: Vec<String>,
    pub subject: String,
    /// The `text/plain` body, empty when the email has none.
    pub text: String,
    /// The `text/html` body.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// A file attached to an [`Email`].
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    /// `type/subtype`, without parameters, e.g. `image/png`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Which email to wait for: one to `to` (any case) whose subject contains `subject_contains`
/// (any case).
#[derive(Debug, Clone)]
pub struct MailQuery {
    pub to: String,
    pub subject_contains: String,
}

impl MailQuery {
    /// Whether an email to `recipients` with `subject` answers this query.
    pub fn matches<'a>(
        &self,
        recipients: impl IntoIterator<Item = &'a str>,
        subject: &str,
    ) -> bool {
        self.matches_subject(subject) && self.matches_recipient(recipients)
    }

    fn matches_subject(&self, subject: &str) -> bool {
        subject
            .to_lowercase()
            .contains(&self.subject_contains.to_lowercase())
    }

    fn matches_recipient<'a>(&self, recipients: impl IntoIterator<Item = &'a str>) -> bool {
        let wanted = self.to.trim();
        recipients
            .into_iter()
            .any(|address| address.trim().eq_ignore_ascii_case(wanted))
    }
}

impl fmt::Display for MailQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an email to `{}` with a subject containing `{}`",
            self.to, self.subject_contains
        )
    }
}

/// What a mailbox held when a wait gave up.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// How many messages the mailbox (or IMAP folder) held.
    pub total: usize,
    /// The newest messages, newest last, at most [`SEEN_LAST`].
    pub last: Vec<SeenMessage>,
    /// Why the mailbox could not be listed, when it could not.
    pub unavailable: Option<String>,
}

/// The recipients and subject of one message a mailbox held.
#[derive(Debug, Clone)]
pub struct SeenMessage {
    pub to: Vec<String>,
    pub subject: String,
}

impl Seen {
    /// A hint for the person reading the error, from what was seen compared with `query`.
    fn hint(&self, query: &MailQuery) -> Option<&'static str> {
        if self.unavailable.is_some() {
            return None;
        }
        if self.total == 0 {
            return Some(
                "the mailbox is empty: the app sent nothing; check its email backend and SMTP settings",
            );
        }
        let to_elsewhere = self.last.iter().any(|message| {
            query.matches_subject(&message.subject)
                && !query.matches_recipient(message.to.iter().map(String::as_str))
        });
        if to_elsewhere {
            return Some(
                "an email with that subject went to another address: check the recipient the app uses",
            );
        }
        let other_subject = self
            .last
            .iter()
            .any(|message| query.matches_recipient(message.to.iter().map(String::as_str)));
        if other_subject {
            return Some(
                "emails reached that address with other subjects: check the subject the app uses",
            );
        }
        None
    }

    fn describe(&self, query: &MailQuery) -> String {
        if let Some(why) = &self.unavailable {
            return format!("failed to list what the mailbox holds: {why}");
        }
        let mut out = match self.total {
            0 => "the mailbox holds no messages".to_owned(),
            1 => "the mailbox holds 1 message:".to_owned(),
            n if n <= self.last.len() => format!("the mailbox holds {n} messages:"),
            n => format!(
                "the mailbox holds {n} messages, the last {}:",
                self.last.len()
            ),
        };
        for message in &self.last {
            let to = if message.to.is_empty() {
                "no recipient".to_owned()
            } else {
                message
                    .to
                    .iter()
                    .map(|address| format!("`{address}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!("\n  - `{}` to {to}", message.subject));
        }
        if let Some(hint) = self.hint(query) {
            out.push_str(&format!("\n({hint})"));
        }
        out
    }
}

/// Everything that can go wrong reading a mailbox. Texts never hold a registered secret.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The mailbox URL or configuration is unusable.
    #[error("invalid mailbox URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A TLS setting (the extra CA certificate) is unusable.
    #[error("failed to set up TLS for `{target}`: {reason}")]
    Tls { target: String, reason: String },
    /// The server did not answer, or the connection broke. Retried while waiting.
    #[error("failed to reach the mailbox at `{target}`: {reason} ({hint})")]
    Unreachable {
        target: String,
        reason: String,
        hint: &'static str,
    },
    /// The server refused the credentials.
    #[error(
        "failed to log in to `{target}` as `{username}`: {reason} (check the username and the password)"
    )]
    Auth {
        target: String,
        username: String,
        reason: String,
    },
    /// Refused to send a password in clear to a non-loopback host.
    #[error(
        "refusing to send the password for `{target}` over cleartext IMAP (use `imaps://`; \
         `imap://` is only for a test server on a loopback address)"
    )]
    Insecure { target: String },
    /// The server answered something this client does not understand, or an error.
    #[error("failed to read the mailbox at `{target}`: {reason}")]
    Protocol { target: String, reason: String },
    /// The deadline passed before a matching email arrived.
    #[error("{query} never arrived (waited {waited:.1?}); {}", seen.describe(query))]
    NeverArrived {
        query: MailQuery,
        waited: Duration,
        seen: Seen,
    },
}

impl MailboxError {
    /// Whether polling again may succeed (a catcher still starting, a dropped connection).
    fn is_transient(&self) -> bool {
        matches!(self, MailboxError::Unreachable { .. })
    }
}

/// The error and its causes as one line, `a: b: c`, with secrets masked.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some crates repeat their source in their own message; say it once.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    mask(&out)
}

impl MailboxConfig {
    /// Reads a mailbox URL: `http(s)://HOST[:PORT][/PATH]` for a MailDev API, or
    /// `imap(s)://USER@HOST[:PORT][/FOLDER]` for an inbox. The IMAP password comes from
    /// `password`, else from the URL (`imaps://USER:PASSWORD@HOST`, discouraged: it lands in
    /// shell history).
    pub fn parse(url: &str, password: Option<Secret>) -> Result<MailboxConfig, MailboxError> {
        let invalid = |reason: String| MailboxError::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let parsed = url::Url::parse(url.trim()).map_err(|err| invalid(err.to_string()))?;
        // Register an embedded password first, so that any later message masks it.
        let url_password = parsed
            .password()
            .map(|raw| Secret::new(percent_decode(raw)));
        match parsed.scheme() {
            "http" | "https" => {
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("it names no host".to_owned()));
                }
                Ok(MailboxConfig::Http { api_url: parsed })
            }
            "imap" | "imaps" => {
                let tls = parsed.scheme() == "imaps";
                let host = match parsed.host() {
                    Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
                    Some(url::Host::Ipv4(ip)) => ip.to_string(),
                    Some(url::Host::Ipv6(ip)) => ip.to_string(),
                    _ => return Err(invalid("it names no host".to_owned())),
                };
                let username = percent_decode(parsed.username());
                if username.is_empty() {
                    return Err(invalid(
                        "it names no user (write `imaps://USER@HOST/FOLDER`)".to_owned(),
                    ));
                }
                let password = password.or(url_password).ok_or_else(|| {
                    invalid(
                        "no password was given for the IMAP login (pass the mailbox password)"
                            .to_owned(),
                    )
                })?;
                let folder = percent_decode(parsed.path().trim_matches('/'));
                let folder = if folder.is_empty() {
                    "INBOX".to_owned()
                } else {
                    folder
                };
                Ok(MailboxConfig::Imap(ImapConfig {
                    host,
                    port: parsed.port().unwrap_or(if tls { 993 } else { 143 }),
                    tls,
                    username,
                    password,
                    folder,
                    ca_cert_pem: None,
                }))
            }
            other => Err(invalid(format!(
                "unsupported scheme `{other}` (use `http(s)://` for a MailDev API or \
                 `imap(s)://USER@HOST/FOLDER` for an inbox)"
            ))),
        }
    }
}

impl ImapConfig {
    /// `imaps://user@host:port/folder`, for messages (never the password).
    pub fn display_url(&self) -> String {
        let scheme = if self.tls { "imaps" } else { "imap" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        mask(&format!(
            "{scheme}://{}@{host}:{}/{}",
            self.username, self.port, self.folder
        ))
    }
}

fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// `url` with any `user:password@` password replaced by the mask, even when it does not parse.
fn redact_url(url: &str) -> String {
    let url = url.trim();
    let Some(scheme_end) = url.find("://") else {
        return mask(url);
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let redacted = match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:{}{}{}",
                &url[..rest_start],
                &authority[..colon],
                crate::secret::MASK,
                &authority[at..],
                &rest[authority_end..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    mask(&redacted)
}

/// A connected mailbox. Cheap to share by reference; the IMAP backend serialises its commands
/// on one connection.
#[derive(Debug)]
pub enum Mailbox {
    Http(HttpMailbox),
    Imap(ImapMailbox),
}

/// What one poll found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// How many messages answer the query.
    pub count: usize,
    /// The newest of them, attachments filled in, when asked for.
    pub newest: Option<Email>,
}

impl Mailbox {
    /// Connects (and for IMAP logs in and opens the folder), so that a wrong URL or password
    /// fails here rather than as a missing email.
    pub async fn open(config: &MailboxConfig) -> Result<Mailbox, MailboxError> {
        match config {
            MailboxConfig::Http { api_url } => Self::open_http(api_url, None).await,
            MailboxConfig::Imap(imap) => Ok(Mailbox::Imap(ImapMailbox::open(imap).await?)),
        }
    }

    /// Like [`Mailbox::open`] for a MailDev API served over HTTPS with a private certificate
    /// authority: `ca_cert_pem` is trusted besides the public roots.
    pub async fn open_http(
        api_url: &url::Url,
        ca_cert_pem: Option<&[u8]>,
    ) -> Result<Mailbox, MailboxError> {
        Ok(Mailbox::Http(
            HttpMailbox::open(api_url, ca_cert_pem).await?,
        ))
    }

    /// Waits up to `deadline` for an email answering `q` and returns the newest one, with its
    /// attachments' bytes. Polls with a growing delay (100 ms up to 2 s), so an email is
    /// noticed soon after it lands; a mailbox that does not answer is retried until the
    /// deadline.
    pub async fn wait_for(&self, q: &MailQuery, deadline: Duration) -> Result<Email, MailboxError> {
        let start = Instant::now();
        let end = start + deadline;
        let mut delay = FIRST_POLL_DELAY;
        // Set by every poll: the error of the last one, if it failed in a retryable way.
        let mut last_error;
        loop {
            let allowed = end
                .saturating_duration_since(Instant::now())
                .max(MIN_ATTEMPT_TIME);
            match tokio::time::timeout(allowed, self.find(q, true)).await {
                Ok(Ok(Found {
                    newest: Some(email),
                    ..
                })) => return Ok(email),
                Ok(Ok(_)) => last_error = None,
                Ok(Err(err)) if err.is_transient() => last_error = Some(err),
                Ok(Err(err)) => return Err(err),
                Err(_) => {
                    last_error = Some(MailboxError::Unreachable {
                        target: self.target(),
                        reason: format!("no answer within {allowed:.1?}"),
                        hint: "is the server overloaded or the network filtered?",
                    })
                }
            }
            let now = Instant::now();
            if now >= end {
                break;
            }
            tokio::time::sleep(delay.min(end - now)).await;
            delay = (delay * 3 / 2).min(MAX_POLL_DELAY);
        }
        if let Some(err) = last_error {
            return Err(err);
        }
        let seen = match tokio::time::timeout(SEEN_TIME, self.seen()).await {
            Ok(Ok(seen)) => seen,
            Ok(Err(err)) => Seen {
                unavailable: Some(err.to_string()),
                ..Seen::default()
            },
            Err(_) => Seen {
                unavailable: Some(format!("no answer within {SEEN_TIME:?}")),
                ..Seen::default()
            },
        };
        Err(MailboxError::NeverArrived {
            query: q.clone(),
            waited: start.elapsed(),
            seen,
        })
    }

    /// How many emails answer `q` right now (e.g. to check that a second confirmation sent
    /// nothing more).
    pub async fn count(&self, q: &MailQuery) -> Result<usize, MailboxError> {
        Ok(self.find(q, false).await?.count)
    }

    /// What the mailbox holds: its size and its newest messages.
    pub async fn seen(&self) -> Result<Seen, MailboxError> {
        match self {
            Mailbox::Http(http) => http.seen().await,
            Mailbox::Imap(imap) => imap.seen().await,
        }
    }

    async fn find(&self, q: &MailQuery, fetch_newest: bool) -> Result<Found, MailboxError> {
        match self {
            Mailbox::Http(http) => http.find(q, fetch_newest).await,
            Mailbox::Imap(imap) => imap.find(q, fetch_newest).await,
        }
    }

    /// Where this mailbox is, for messages.
    pub fn target(&self) -> String {
        match self {
            Mailbox::Http(http) => http.target(),
            Mailbox::Imap(imap) => imap.target(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn secret() -> Secret {
        Secret::new("mailbox-test-password-1")
    }

    #[test]
    fn http_urls_are_mail_catchers() {
        let config = MailboxConfig::parse("http://127.0.0.1:1080/", None);
        let Ok(MailboxConfig::Http { api_url }) = config else {
            panic!("expected an HTTP mailbox, got {config:?}");
        };
        assert_eq!(api_url.as_str(), "http://127.0.0.1:1080/");
    }

    #[rstest]
    #[case::imaps_default_port_and_inbox(
        "imaps://smoke@mail.example.org",
        "mail.example.org",
        993,
        true,
        "smoke",
        "INBOX"
    )]
    #[case::imap_port_folder(
        "imap://smoke@127.0.0.1:1143/Smoke",
        "127.0.0.1",
        1143,
        false,
        "smoke",
        "Smoke"
    )]
    #[case::encoded_user_and_folder(
        "imaps://smoke%40example.org@mail.example.org/INBOX%2FSmoke%20runs",
        "mail.example.org",
        993,
        true,
        "smoke@example.org",
        "INBOX/Smoke runs"
    )]
    #[case::ipv6("imap://u@[::1]:1143", "::1", 1143, false, "u", "INBOX")]
    fn imap_urls_are_parsed(
        #[case] url: &str,
        #[case] host: &str,
        #[case] port: u16,
        #[case] tls: bool,
        #[case] username: &str,
        #[case] folder: &str,
    ) {
        let config = MailboxConfig::parse(url, Some(secret()));
        let Ok(MailboxConfig::Imap(imap)) = config else {
            panic!("expected an IMAP mailbox, got {config:?}");
        };
        assert_eq!(
            (
                imap.host.as_str(),
                imap.port,
                imap.tls,
                imap.username.as_str(),
                imap.folder.as_str()
            ),
            (host, port, tls, username, folder)
        );
        assert_eq!(imap.password.expose(), "mailbox-test-password-1");
    }

    #[test]
    fn a_password_in_the_url_is_used_and_never_shown() {
        let config = MailboxConfig::parse("imaps://smoke:url-pass%2Fword@mail.example.org", None);
        let Ok(MailboxConfig::Imap(imap)) = config else {
            panic!("expected an IMAP mailbox, got {config:?}");
        };
        assert_eq!(imap.password.expose(), "url-pass/word");
        assert!(!format!("{imap:?}").contains("url-pass"));
        assert!(!imap.display_url().contains("url-pass"));
    }

    #[rstest]
    #[case::no_user("imaps://mail.example.org", "names no user")]
    #[case::no_password_at_all("imaps://smoke@mail.example.org", "no password was given")]
    #[case::scheme("ftp://mail.example.org", "unsupported scheme `ftp`")]
    #[case::garbage("not a url", "relative URL without a base")]
    fn bad_urls_say_why(#[case] url: &str, #[case] expected: &str) {
        let err = match MailboxConfig::parse(url, None) {
            Ok(config) => panic!("`{url}` parsed as {config:?}"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.contains(expected),
            "`{err}` does not contain `{expected}`"
        );
        assert!(err.starts_with("invalid mailbox URL"), "{err}");
    }

    #[test]
    fn an_unparseable_url_never_shows_its_password() {
        let err = MailboxConfig::parse("imaps://smoke:hunter2-secret@[bad/INBOX", None)
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(err.contains("imaps://smoke:****@[bad/INBOX"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[rstest]
    #[case::exact(&["visitor@example.org"], "Confirm your booking AB12", true)]
    #[case::address_case(&["Visitor@Example.ORG"], "Confirm your booking AB12", true)]
    #[case::subject_case(&["visitor@example.org"], "CONFIRM YOUR BOOKING ab12", true)]
    #[case::among_several(&["a@b.c", "visitor@example.org"], "Confirm your booking AB12", true)]
    #[case::other_address(&["other@example.org"], "Confirm your booking AB12", false)]
    #[case::address_prefix_is_not_enough(&["visitor@example.org.evil"], "Confirm your booking AB12", false)]
    #[case::other_subject(&["visitor@example.org"], "Your tickets for X (AB12)", false)]
    fn queries_match_address_and_subject(
        #[case] to: &[&str],
        #[case] subject: &str,
        #[case] expected: bool,
    ) {
        let query = MailQuery {
            to: "visitor@example.org".to_owned(),
            subject_contains: "confirm your booking AB12".to_owned(),
        };
        assert_eq!(query.matches(to.iter().copied(), subject), expected);
    }

    #[test]
    fn never_arrived_names_what_was_seen_and_hints_at_the_wrong_address() {
        let err = MailboxError::NeverArrived {
            query: MailQuery {
                to: "visitor@example.org".to_owned(),
                subject_contains: "Confirm your booking".to_owned(),
            },
            waited: Duration::from_millis(30_000),
            seen: Seen {
                total: 7,
                last: vec![
                    SeenMessage {
                        to: vec!["someone@example.org".to_owned()],
                        subject: "Welcome".to_owned(),
                    },
                    SeenMessage {
                        to: vec!["webmaster@localhost".to_owned()],
                        subject: "Confirm your booking AB12".to_owned(),
                    },
                ],
                unavailable: None,
            },
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "an email to `visitor@example.org` with a subject containing `Confirm your booking` \
             never arrived (waited 30.0s); the mailbox holds 7 messages, the last 2:\n  \
             - `Welcome` to `someone@example.org`\n  \
             - `Confirm your booking AB12` to `webmaster@localhost`\n\
             (an email with that subject went to another address: check the recipient the app uses)"
        );
    }

    #[test]
    fn never_arrived_on_an_empty_mailbox_says_nothing_left() {
        let err = MailboxError::NeverArrived {
            query: MailQuery {
                to: "v@example.org".to_owned(),
                subject_contains: "x".to_owned(),
            },
            waited: Duration::from_secs(5),
            seen: Seen::default(),
        };
        assert!(
            err.to_string().ends_with(
                "the mailbox holds no messages\n(the mailbox is empty: the app sent nothing; \
                 check its email backend and SMTP settings)"
            ),
            "{err}"
        );
    }
}
