//! The websocket check: an HTTP/1.1 upgrade through the proxy (over TLS when the base URL is
//! HTTPS, trusting the same CA), one text message sent, an answer containing a text awaited,
//! then a clean close. Virtual hosts connect to the base URL's address with the virtual host's
//! name in the URL, the `Host` header and the TLS server name.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::http::WebSocketTarget;
use crate::check::{Placeholder, Response};
use crate::report::Failure;

/// A stream the websocket runs over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What one websocket check asks.
#[derive(Debug)]
pub(super) struct Exchange<'a> {
    pub target: WebSocketTarget,
    pub send: String,
    pub expect_contains: String,
    pub subprotocol: Option<&'a str>,
    /// The maintenance page of the host, and the host's name.
    pub placeholder: Option<(&'a Placeholder, &'a str)>,
}

/// Runs the exchange; `Err` is the failure to report.
pub(super) async fn check(exchange: Exchange<'_>) -> Result<(), Failure> {
    let target = &exchange.target;
    let described = format!("websocket {}", target.url);
    let fail = |title: String, expected: &str, actual: String, hint: Option<&str>| Failure {
        title,
        request: Some(described.clone()),
        expected: expected.to_owned(),
        actual,
        excerpt: None,
        hint: hint.map(str::to_owned),
        ..Failure::default()
    };
    let timeout = target.timeout;
    let stream = tokio::time::timeout(timeout, connect(target))
        .await
        .map_err(|_| {
            fail(
                "no answer in time".to_owned(),
                "a connection",
                format!("no connection within {timeout:.1?}"),
                Some("is the site up and listening on that port?"),
            )
        })?
        .map_err(|why| fail("failed to connect".to_owned(), "a connection", why, None))?;

    let mut request = target.url.as_str().into_client_request().map_err(|e| {
        fail(
            "the request could not be built".to_owned(),
            "a websocket request",
            e.to_string(),
            None,
        )
    })?;
    let headers = request.headers_mut();
    if let Some(value) = target
        .authorization
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert("Authorization", value);
    }
    if let Some(value) = exchange
        .subprotocol
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert("Sec-WebSocket-Protocol", value);
    }
    let upgraded = tokio::time::timeout(
        timeout,
        tokio_tungstenite::client_async_with_config(request, stream, None),
    )
    .await;
    let mut socket = match upgraded {
        Err(_) => {
            return Err(fail(
                format!("no upgrade within {}s", timeout.as_secs()),
                "status 101 Switching Protocols",
                format!("no answer to the upgrade within {timeout:.1?}"),
                Some("does the proxy pass the upgrade to the websocket server?"),
            ));
        }
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            let seen = Response {
                status,
                headers: response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body,
                url: None,
                truncated: None,
                latency: Duration::ZERO,
            };
            if let Some((placeholder, host)) = exchange.placeholder
                && placeholder.matches(&seen)
            {
                let mut failure = super::exec::placeholder_failure(host, placeholder, &seen);
                failure.request = Some(described.clone());
                return Err(failure);
            }
            let mut failure = fail(
                format!("websocket upgrade refused: status {status}"),
                "status 101 Switching Protocols",
                format!("status {status}"),
                Some(
                    "pass the upgrade in nginx: `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";` and route the path to the ASGI server (Daphne)",
                ),
            );
            failure.excerpt = seen.excerpt();
            return Err(failure);
        }
        Ok(Err(error)) => {
            return Err(fail(
                "websocket upgrade failed".to_owned(),
                "a valid 101 Switching Protocols answer",
                error.to_string(),
                exchange.subprotocol.map(|_| {
                    "the server must select the subprotocol asked for (`Sec-WebSocket-Protocol`)"
                }),
            ));
        }
        Ok(Ok((socket, _response))) => socket,
    };

    socket
        .send(Message::text(exchange.send.clone()))
        .await
        .map_err(|e| {
            fail(
                "failed to send the websocket message".to_owned(),
                "the message sent",
                e.to_string(),
                None,
            )
        })?;
    let expected = format!("a message containing `{}`", exchange.expect_contains);
    let mut seen = Vec::new();
    let awaited = tokio::time::timeout(timeout, async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) if text.as_str().contains(&exchange.expect_contains) => {
                    return Ok(());
                }
                Ok(Message::Binary(bytes))
                    if String::from_utf8_lossy(&bytes).contains(&exchange.expect_contains) =>
                {
                    return Ok(());
                }
                Ok(Message::Text(text)) => seen.push(crate::check::excerpt(text.as_bytes(), 80)),
                Ok(Message::Binary(bytes)) => seen.push(crate::check::excerpt(&bytes, 80)),
                Ok(Message::Close(frame)) => {
                    return Err(format!(
                        "the server closed the websocket ({})",
                        frame.map_or_else(|| "no reason".to_owned(), |f| f.to_string())
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("the websocket broke: {e}")),
            }
        }
        Err("the websocket ended".to_owned())
    })
    .await;
    let received = |seen: &[String]| {
        if seen.is_empty() {
            "no message".to_owned()
        } else {
            format!("only {}", seen.join(" | "))
        }
    };
    match awaited {
        Err(_) => {
            return Err(fail(
                format!("no echo within {}s", timeout.as_secs()),
                &expected,
                received(&seen),
                Some("is the websocket consumer running (Daphne, the channel layer)?"),
            ));
        }
        Ok(Err(why)) => return Err(fail(why.clone(), &expected, received(&seen), None)),
        Ok(Ok(())) => {}
    }
    let closed = tokio::time::timeout(timeout, async {
        socket.close(None).await?;
        while let Some(message) = socket.next().await {
            message?;
        }
        Ok::<(), WsError>(())
    })
    .await;
    match closed {
        Ok(Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Ok(()),
        Ok(Err(error)) => Err(fail(
            "the websocket did not close cleanly".to_owned(),
            "a close frame answered",
            error.to_string(),
            None,
        )),
        Err(_) => Err(fail(
            "the websocket did not close cleanly".to_owned(),
            "a close frame answered",
            format!("no answer to the close within {timeout:.1?}"),
            None,
        )),
    }
}

async fn connect(target: &WebSocketTarget) -> Result<Box<dyn Io>, String> {
    let tcp = if target.connect.is_empty() {
        TcpStream::connect((target.host.as_str(), target.port)).await
    } else {
        TcpStream::connect(target.connect.as_slice()).await
    }
    .map_err(|e| {
        format!(
            "failed to connect to `{}:{}`: {e}",
            target.host, target.port
        )
    })?;
    if !target.tls {
        return Ok(Box::new(tcp));
    }
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = &target.ca_cert_pem {
        for cert in CertificateDer::pem_slice_iter(pem).flatten() {
            roots
                .add(cert)
                .map_err(|e| format!("failed to trust the CA certificate: {e}"))?;
        }
    }
    // An explicit provider, as for IMAP: the process default may be ambiguous.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| format!("invalid TLS server name `{}`: {e}", target.host))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("the TLS handshake with `{}` failed: {e}", target.host))?;
    Ok(Box::new(tls))
}
