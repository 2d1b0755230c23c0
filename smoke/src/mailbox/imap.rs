//! A real inbox over IMAP4rev1, for smoke runs against a live site.
//!
//! The client logs in with `LOGIN`, opens the folder read-only (`EXAMINE`, so a smoke run never
//! marks a person's mail as read) and, per poll, searches `TO <address> SUBJECT <text>` on the
//! server, then checks the candidates' headers itself (IMAP `TO` is a substring match, so
//! `visitor@example.org` would also find `xvisitor@example.org`). Messages are fetched with
//! `BODY.PEEK[]` and parsed by [`super::mime`].
//!
//! One connection is kept between polls. A command interrupted half-way (a poll that hit the
//! deadline) or a broken connection drops it, and the next poll reconnects.
//!
//! `imaps://` uses rustls (ring) with the public web roots plus an optional extra CA. Cleartext
//! `imap://` is only allowed to a loopback address: it exists for test servers.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_imap::error::Error as ImapError;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::mime::{parse_email, parse_summary};
use super::{
    Found, ImapConfig, MailQuery, MailboxError, SEEN_LAST, Seen, SeenMessage, error_chain,
};

/// How long a TCP connect, a TLS handshake or the greeting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const UNREACHABLE_HINT: &str = "check the host and port, and that the server accepts IMAP there";

/// Anything a session can run over: a plain TCP stream or a TLS one.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Transport for T {}

type Session = async_imap::Session<Box<dyn Transport>>;

/// An IMAP inbox, logged in.
pub struct ImapMailbox {
    config: ImapConfig,
    /// `None` between a broken or interrupted command and the next poll.
    session: tokio::sync::Mutex<Option<Session>>,
}

impl fmt::Debug for ImapMailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapMailbox")
            .field("target", &self.config.display_url())
            .finish_non_exhaustive()
    }
}

impl ImapMailbox {
    /// Connects, logs in and opens the folder, so that a wrong host, password or folder fails
    /// now.
    pub(crate) async fn open(config: &ImapConfig) -> Result<ImapMailbox, MailboxError> {
        let mut session = connect(config).await?;
        examine(&mut session, config).await?;
        Ok(ImapMailbox {
            config: config.clone(),
            session: tokio::sync::Mutex::new(Some(session)),
        })
    }

    pub(crate) fn target(&self) -> String {
        self.config.display_url()
    }

    /// Takes the session (connecting if there is none). The caller puts it back only when its
    /// commands completed, so that a cancelled poll never leaves a half-read response behind.
    async fn take_session(&self) -> Result<Session, MailboxError> {
        let taken = self.session.lock().await.take();
        match taken {
            Some(session) => Ok(session),
            None => connect(&self.config).await,
        }
    }

    async fn give_back(&self, session: Session, outcome: &Result<impl Sized, MailboxError>) {
        // A broken connection is not reused; any other outcome left the session in step.
        if !matches!(outcome, Err(MailboxError::Unreachable { .. })) {
            *self.session.lock().await = Some(session);
        }
    }

    pub(crate) async fn find(
        &self,
        q: &MailQuery,
        fetch_newest: bool,
    ) -> Result<Found, MailboxError> {
        let mut session = self.take_session().await?;
        let outcome = find_in(&mut session, &self.config, q, fetch_newest).await;
        self.give_back(session, &outcome).await;
        outcome
    }

    pub(crate) async fn seen(&self) -> Result<Seen, MailboxError> {
        let mut session = self.take_session().await?;
        let outcome = seen_in(&mut session, &self.config).await;
        self.give_back(session, &outcome).await;
        outcome
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn tls_connector(config: &ImapConfig) -> Result<TlsConnector, MailboxError> {
    let tls_error = |reason: String| MailboxError::Tls {
        target: config.display_url(),
        reason,
    };
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = &config.ca_cert_pem {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|err| {
                tls_error(format!("failed to read the CA certificate PEM: {err}"))
            })?;
            roots.add(certificate).map_err(|err| {
                tls_error(format!(
                    "failed to trust the CA certificate: {}",
                    error_chain(&err)
                ))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(tls_error(
                "the CA certificate PEM holds no `CERTIFICATE` block".to_owned(),
            ));
        }
    }
    // An explicit provider: the process-wide default is ambiguous when another dependency
    // enables a second rustls backend.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| tls_error(error_chain(&err)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(client)))
}

async fn connect(config: &ImapConfig) -> Result<Session, MailboxError> {
    let target = config.display_url();
    if !config.tls && !is_loopback(&config.host) {
        return Err(MailboxError::Insecure { target });
    }
    let unreachable = |reason: String| MailboxError::Unreachable {
        target: target.clone(),
        reason,
        hint: UNREACHABLE_HINT,
    };
    let within = |what: &str| format!("{what} took longer than {CONNECT_TIMEOUT:?}");

    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((config.host.as_str(), config.port)),
    )
    .await
    .map_err(|_| unreachable(within("connecting")))?
    .map_err(|err| unreachable(error_chain(&err)))?;

    let stream: Box<dyn Transport> = if config.tls {
        let connector = tls_connector(config)?;
        let name = ServerName::try_from(config.host.clone()).map_err(|err| MailboxError::Tls {
            target: target.clone(),
            reason: format!("`{}` is not a valid TLS server name: {err}", config.host),
        })?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| unreachable(within("the TLS handshake")))?
            .map_err(|err| MailboxError::Tls {
                target: target.clone(),
                reason: format!(
                    "the TLS handshake failed: {} (is it an `imaps://` port? for a private \
                     certificate authority, pass its CA certificate)",
                    error_chain(&err)
                ),
            })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };

    let mut client = async_imap::Client::new(stream);
    match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Err(_) => return Err(unreachable(within("waiting for the server greeting"))),
        Ok(Err(err)) => return Err(unreachable(error_chain(&err))),
        Ok(Ok(None)) => {
            return Err(unreachable(
                "the server closed the connection before greeting".to_owned(),
            ));
        }
        Ok(Ok(Some(_greeting))) => {}
    }
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        client.login(&config.username, config.password.expose()),
    )
    .await
    .map_err(|_| unreachable(within("logging in")))?
    .map_err(|(err, _client)| match err {
        ImapError::No(_) | ImapError::Bad(_) | ImapError::Validate(_) => MailboxError::Auth {
            target: target.clone(),
            username: config.username.clone(),
            reason: error_chain(&err),
        },
        other => classify(&target, other),
    })
}

/// An IMAP error as a mailbox error: a broken connection is worth retrying, the rest is not.
fn classify(target: &str, err: ImapError) -> MailboxError {
    match err {
        ImapError::Io(_) | ImapError::ConnectionLost => MailboxError::Unreachable {
            target: target.to_owned(),
            reason: error_chain(&err),
            hint: UNREACHABLE_HINT,
        },
        other => MailboxError::Protocol {
            target: target.to_owned(),
            reason: error_chain(&other),
        },
    }
}

/// Opens the folder read-only; re-issued each poll so that new messages are visible.
async fn examine(session: &mut Session, config: &ImapConfig) -> Result<u32, MailboxError> {
    let target = config.display_url();
    match session.examine(&config.folder).await {
        Ok(mailbox) => Ok(mailbox.exists),
        Err(err @ ImapError::No(_)) => Err(MailboxError::Protocol {
            reason: format!(
                "failed to open the folder `{}`: {} (check the folder name in the URL path; \
                 it is case-sensitive except for `INBOX`)",
                config.folder,
                error_chain(&err)
            ),
            target,
        }),
        Err(err) => Err(classify(&target, err)),
    }
}

/// An IMAP quoted string, or `None` when `text` needs a literal (non-ASCII, line breaks): the
/// search then leaves that criterion to the client-side check.
fn quoted(text: &str) -> Option<String> {
    if !text.is_ascii() || text.contains(['\r', '\n', '\0']) {
        return None;
    }
    Some(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

fn search_criteria(q: &MailQuery) -> String {
    let mut criteria = Vec::new();
    if let Some(to) = quoted(q.to.trim()) {
        criteria.push(format!("TO {to}"));
    }
    if let Some(subject) = quoted(&q.subject_contains).filter(|s| s.len() > 2) {
        criteria.push(format!("SUBJECT {subject}"));
    }
    if criteria.is_empty() {
        "ALL".to_owned()
    } else {
        criteria.join(" ")
    }
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

async fn find_in(
    session: &mut Session,
    config: &ImapConfig,
    q: &MailQuery,
    fetch_newest: bool,
) -> Result<Found, MailboxError> {
    let target = config.display_url();
    if examine(session, config).await? == 0 {
        return Ok(Found::default());
    }
    let mut uids: Vec<u32> = session
        .uid_search(search_criteria(q))
        .await
        .map_err(|err| classify(&target, err))?
        .into_iter()
        .collect();
    if uids.is_empty() {
        return Ok(Found::default());
    }
    uids.sort_unstable();

    let headers: Vec<_> = session
        .uid_fetch(uid_set(&uids), "(UID BODY.PEEK[HEADER])")
        .await
        .map_err(|err| classify(&target, err))?
        .try_collect()
        .await
        .map_err(|err| classify(&target, err))?;
    let mut matching: Vec<u32> = headers
        .iter()
        .filter_map(|fetch| {
            let summary = parse_summary(fetch.header()?);
            q.matches(summary.to.iter().map(String::as_str), &summary.subject)
                .then_some(fetch.uid)
                .flatten()
        })
        .collect();
    matching.sort_unstable();

    let newest = match matching.last() {
        Some(&uid) if fetch_newest => {
            let fetched: Vec<_> = session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                .await
                .map_err(|err| classify(&target, err))?
                .try_collect()
                .await
                .map_err(|err| classify(&target, err))?;
            let raw = fetched
                .iter()
                .find(|fetch| fetch.uid == Some(uid))
                .and_then(|fetch| fetch.body())
                .ok_or_else(|| MailboxError::Protocol {
                    target: target.clone(),
                    reason: format!("the server returned no body for message UID {uid}"),
                })?;
            Some(
                parse_email(uid.to_string(), raw).ok_or_else(|| MailboxError::Protocol {
                    target: target.clone(),
                    reason: format!("message UID {uid} is not a readable RFC 822 message"),
                })?,
            )
        }
        _ => None,
    };
    Ok(Found {
        count: matching.len(),
        newest,
    })
}

async fn seen_in(session: &mut Session, config: &ImapConfig) -> Result<Seen, MailboxError> {
    let target = config.display_url();
    let exists = examine(session, config).await?;
    if exists == 0 {
        return Ok(Seen::default());
    }
    let last = u32::try_from(SEEN_LAST).unwrap_or(u32::MAX);
    let first = exists.saturating_sub(last - 1).max(1);
    let mut fetched: Vec<_> = session
        .fetch(format!("{first}:{exists}"), "(BODY.PEEK[HEADER])")
        .await
        .map_err(|err| classify(&target, err))?
        .try_collect()
        .await
        .map_err(|err| classify(&target, err))?;
    fetched.sort_by_key(|fetch| fetch.message);
    Ok(Seen {
        total: usize::try_from(exists).unwrap_or(usize::MAX),
        last: fetched
            .iter()
            .map(|fetch| match fetch.header() {
                Some(header) => parse_summary(header),
                None => SeenMessage {
                    to: Vec::new(),
                    subject: String::new(),
                },
            })
            .collect(),
        unavailable: None,
    })
}

#[cfg(test)]
mod tests;
