//! A fake of the shared-nginx, multi-environment stack (seed 001, `fixtures/multienv`) on
//! loopback: it routes by `Host` header to `staging.multienv.test` (behind basic auth) and
//! `prod.multienv.test` (a rate limit on `/api/ping/`), serves a JSON health at
//! `/api/v1/system/status/`, echoes websocket text frames at `/ws/echo/`, and can be switched
//! into each way it may be broken ([`VhostFaults`]).
//!
//! One request per connection, except websocket upgrades, which it answers itself (101, the
//! accept key) before handing the socket to tungstenite as a server.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

pub const STAGING: &str = "staging.multienv.test";
pub const PROD: &str = "prod.multienv.test";
pub const STAGING_USER: &str = "reviewer";
pub const STAGING_PASSWORD: &str = "s3cret-staging-Pa55";

/// How the fake is broken.
#[derive(Debug, Clone, Copy, Default)]
pub struct VhostFaults {
    /// Staging answers without credentials.
    pub no_auth: bool,
    /// Prod's `/api/ping/` has no limit.
    pub no_limit: bool,
    /// Staging serves the 503 "Deployment in progress" page (prod is fine).
    pub maintenance: bool,
    /// The proxy drops `Upgrade`/`Connection`: `/ws/echo/` reaches gunicorn, which answers 404.
    pub no_upgrade: bool,
    /// The websocket accepts the upgrade but never answers.
    pub silent_websocket: bool,
}

/// The fixed window of prod's rate limit: this many requests per second.
const LIMIT_PER_SECOND: usize = 10;

struct State {
    faults: VhostFaults,
    window: Mutex<(Instant, usize)>,
}

/// A running fake; stops when dropped.
pub struct VhostSite {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl VhostSite {
    pub fn start(faults: VhostFaults) -> VhostSite {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::new(State {
            faults,
            window: Mutex::new((Instant::now(), 0)),
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let state = Arc::clone(&state);
                        tokio::spawn(async move {
                            let _ = serve(stream, &state).await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        VhostSite {
            addr,
            stop: Some(stop_tx),
        }
    }

    /// `http://localhost:PORT/`, as the gate gives it.
    pub fn url(&self) -> String {
        format!("http://localhost:{}/", self.addr.port())
    }
}

impl Drop for VhostSite {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Head {
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Head { path, headers })
}

async fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &str) {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve(mut stream: TcpStream, state: &State) -> Option<()> {
    let head = read_head(&mut stream).await?;
    let faults = state.faults;
    let host = head
        .header("host")
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let env = match host.as_str() {
        STAGING => "staging",
        PROD => "prod",
        _ => {
            respond(
                &mut stream,
                404,
                &[("Content-Type", "text/plain")],
                "no such site",
            )
            .await;
            return Some(());
        }
    };
    if faults.maintenance && env == "staging" {
        respond(
            &mut stream,
            503,
            &[("Content-Type", "text/html")],
            "<html><h1>Deployment in progress</h1><p>Back in a minute.</p></html>",
        )
        .await;
        return Some(());
    }
    if env == "staging" && !faults.no_auth {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{STAGING_USER}:{STAGING_PASSWORD}"))
        );
        if head.header("authorization") != Some(expected.as_str()) {
            respond(
                &mut stream,
                401,
                &[
                    ("WWW-Authenticate", "Basic realm=\"staging\""),
                    ("Content-Type", "text/html"),
                ],
                "<html>401 Authorization Required</html>",
            )
            .await;
            return Some(());
        }
    }
    let path = head.path.split('?').next().unwrap_or_default().to_owned();
    match path.as_str() {
        "/" => {
            let body = format!("<html><title>multienv {env}</title></html>");
            respond(&mut stream, 200, &[("Content-Type", "text/html")], &body).await;
        }
        "/api/v1/system/status/" => {
            let body = format!("{{\"status\": \"ok\", \"environment\": \"{env}\"}}");
            respond(
                &mut stream,
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("X-Backend", "django"),
                ],
                &body,
            )
            .await;
        }
        // What the server received, echoed: a page a masking test can fail on.
        "/echo-headers/" => {
            let body = format!("{:?}", head.headers);
            respond(&mut stream, 200, &[("Content-Type", "text/plain")], &body).await;
        }
        "/api/ping/" => {
            let refused = env == "prod" && !faults.no_limit && {
                let mut window = state.window.lock().unwrap();
                if window.0.elapsed() >= Duration::from_secs(1) {
                    *window = (Instant::now(), 0);
                }
                window.1 += 1;
                window.1 > LIMIT_PER_SECOND
            };
            if refused {
                respond(
                    &mut stream,
                    429,
                    &[("Content-Type", "text/html")],
                    "slow down",
                )
                .await;
            } else {
                respond(
                    &mut stream,
                    200,
                    &[("Content-Type", "application/json")],
                    "{\"pong\": true}",
                )
                .await;
            }
        }
        "/ws/echo/" => {
            let upgrade = head
                .header("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let key = head.header("sec-websocket-key").map(str::to_owned);
            match (upgrade && !faults.no_upgrade, key) {
                (true, Some(key)) => {
                    let answer = format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                        derive_accept_key(key.as_bytes())
                    );
                    stream.write_all(answer.as_bytes()).await.ok()?;
                    let mut socket =
                        WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
                    while let Some(Ok(message)) = socket.next().await {
                        match message {
                            Message::Text(text) if !faults.silent_websocket => {
                                socket.send(Message::Text(text)).await.ok()?;
                            }
                            _ => {}
                        }
                    }
                }
                _ => {
                    respond(
                        &mut stream,
                        404,
                        &[("Content-Type", "text/html")],
                        "<h1>Not Found</h1>",
                    )
                    .await;
                }
            }
        }
        _ => {
            respond(
                &mut stream,
                404,
                &[("Content-Type", "text/html")],
                "<h1>Not Found</h1>",
            )
            .await;
        }
    }
    Some(())
}
