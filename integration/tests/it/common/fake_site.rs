//! A loopback "fake AzioneLab": the `fixtures/azionelab/API.md` contract in memory (site
//! index, static files, admin, the JSON API, the markers and security headers), plus a
//! MailDev-shaped mail API under `/maildev/` holding the emails the fake sends.
//!
//! [`Faults`] breaks it in the ways the checks guard against, so a test can show that a check
//! passes on the healthy fake and fails on the broken one.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use super::http_server::{HttpRequest, Reply, Server, serve, serve_tls};

/// The staff token the fake accepts (40 hex characters, as `ensure_staff` wants).
pub const STAFF_TOKEN: &str = "5m0ke5ecret0f40hexchars0000000000000000a";

pub const INDEX: &str = "<!doctype html><html><head><meta name=\"app\" content=\"azionelab\"><title>AzioneLab</title></head><body><div id=\"app\"></div></body></html>";
const ADMIN_LOGIN: &str = "<!doctype html><html><head><title>Log in | Django site admin</title></head><body><h1>Django administration</h1><form method=\"post\" id=\"login-form\"><input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"f4kecsrft0ken\"></form></body></html>";
/// The admin password the fake's staff user signs in with (`SMOKE_STAFF_PASSWORD`).
pub const STAFF_PASSWORD: &str = "fake-staff-password";
/// A non-staff user's token (`SMOKE_USER_TOKEN`).
pub const USER_TOKEN: &str = "0a5e70000000000000000000000000000000user";
/// The largest request body nginx takes (`client_max_body_size 1m`).
const BODY_LIMIT: usize = 1 << 20;

/// Ways to break the fake; all off is the healthy stack.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// `/static/` answered by "Django" (with the marker header).
    pub static_with_marker: bool,
    /// `/admin/` falls through to the site index.
    pub admin_not_proxied: bool,
    /// An unknown `/api/` path gets the site index.
    pub unknown_api_serves_index: bool,
    /// No `X-Frame-Options`.
    pub missing_frame_options: bool,
    /// `/api/health/` says the database is unreachable (503).
    pub database_down: bool,
    /// Confirmation tokens of 6 bytes.
    pub short_token: bool,
    /// The QR code holds the visitor's email, base64url-encoded.
    pub qr_reveals_email: bool,
    /// A second confirmation sends the tickets email again.
    pub second_confirm_resends: bool,
    /// The second scan is accepted again.
    pub second_scan_accepted: bool,
    /// Capacity is not enforced.
    pub oversells: bool,
    /// Check-in works without credentials.
    pub checkin_without_auth: bool,
    /// A bad check-in code gets a 500 page echoing the `Authorization` header.
    pub echo_authorization: bool,
    /// Every `/api/` path but health answers the site index (HTML) instead of JSON.
    pub api_serves_html: bool,
    /// The home page is a 502.
    pub home_502: bool,
    /// The home page is 3 MiB.
    pub huge_home: bool,
    /// The home page announces more bytes than it sends.
    pub truncated_home: bool,
    /// `/shows/` redirects to itself.
    pub shows_redirect_loop: bool,
    /// The unknown-token confirmation answers 500.
    pub confirm_500: bool,
    /// No emails are sent.
    pub no_emails: bool,
    /// Confirmations never answer (to interrupt a run mid-scenario).
    pub hang_confirm: bool,
}

#[derive(Debug, Clone)]
struct Show {
    id: u64,
    title: String,
    capacity: i64,
    seats_left: i64,
}

#[derive(Debug, Clone)]
struct Booking {
    reference: String,
    show: u64,
    email: String,
    name: String,
    seats: i64,
    token: String,
    confirmed: bool,
    code: String,
}

#[derive(Debug, Clone)]
struct Email {
    id: String,
    to: String,
    subject: String,
    text: String,
    attachment: Option<(String, Vec<u8>)>,
}

#[derive(Debug, Default)]
pub struct State {
    next_id: u64,
    shows: HashMap<u64, Show>,
    bookings: Vec<Booking>,
    checked_in: Vec<String>,
    emails: Vec<Email>,
    /// Every request seen, `METHOD target`.
    pub log: Vec<String>,
    /// `https` when served over TLS; the emails' links use it with the request's `Host`.
    scheme: &'static str,
}

/// A running fake site.
#[derive(Debug)]
pub struct FakeSite {
    pub server: Server,
    pub state: Arc<Mutex<State>>,
}

impl FakeSite {
    pub fn start(faults: Faults) -> FakeSite {
        let state = Arc::new(Mutex::new(State::default()));
        let server = serve(handler(faults, state.clone()));
        FakeSite { server, state }
    }

    pub fn start_tls(faults: Faults, acceptor: tokio_rustls::TlsAcceptor) -> FakeSite {
        let state = Arc::new(Mutex::new(State {
            scheme: "https",
            ..State::default()
        }));
        let server = serve_tls(handler(faults, state.clone()), acceptor);
        FakeSite { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn mailbox_url(&self) -> String {
        format!("{}maildev/", self.server.url())
    }

    /// Shows still present (a run must leave none).
    pub fn show_titles(&self) -> Vec<String> {
        let state = self.state.lock().expect("state");
        state.shows.values().map(|s| s.title.clone()).collect()
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").log.clone()
    }
}

/// A plain-HTTP server that redirects everything to `https_base` (or, broken, serves the index).
pub fn http_redirector(https_base: String, broken: bool) -> Server {
    serve(Arc::new(move |request: &HttpRequest| {
        if broken {
            Reply::html(200, INDEX)
        } else {
            // The fake itself speaks plain HTTP; what is checked is the redirect's scheme.
            let base = https_base.replacen("http://", "https://", 1);
            let location = format!("{}{}", base.trim_end_matches('/'), request.target);
            Reply::html(301, "<html>moved</html>").with_header("Location", &location)
        }
    }))
}

fn handler(faults: Faults, state: Arc<Mutex<State>>) -> super::http_server::Handler {
    Arc::new(move |request: &HttpRequest| {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .log
            .push(format!("{} {}", request.method, request.target));
        let reply = route(&faults, &mut state, request);
        nginx_headers(&faults, reply)
    })
}

/// What nginx adds to every response.
fn nginx_headers(faults: &Faults, reply: Reply) -> Reply {
    let reply = reply
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "same-origin")
        .with_header("Strict-Transport-Security", "max-age=31536000");
    if faults.missing_frame_options {
        reply
    } else {
        reply.with_header("X-Frame-Options", "DENY")
    }
}

fn django(reply: Reply) -> Reply {
    reply.with_header("X-Backend", "django")
}

fn detail(status: u16, text: &str) -> Reply {
    django(Reply::json(status, &json!({"detail": text})))
}

fn is_staff(request: &HttpRequest) -> Option<bool> {
    let auth = request.header("Authorization")?;
    Some(auth == format!("Token {STAFF_TOKEN}"))
}

fn random_token(bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn qr_png(payload: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("QR code");
    let image = code
        .render::<image::Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(6, 6)
        .build();
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(image)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("PNG");
    png.into_inner()
}

fn show_json(show: &Show) -> Value {
    json!({"id": show.id, "title": show.title, "starts_at": "2099-06-01T19:00:00Z", "capacity": show.capacity, "seats_left": show.seats_left})
}

/// The origin the request was made to, as the site's links name it.
fn origin(state: &State, request: &HttpRequest) -> String {
    let scheme = if state.scheme.is_empty() {
        "http"
    } else {
        state.scheme
    };
    format!(
        "{scheme}://{}",
        request.header("Host").unwrap_or("azionelab.test")
    )
}

fn route(faults: &Faults, state: &mut State, request: &HttpRequest) -> Reply {
    let path = request.path().to_owned();
    let method = request.method.as_str();
    if let Some(rest) = path.strip_prefix("/maildev/") {
        return maildev(state, rest);
    }
    if request.body.len() > BODY_LIMIT {
        return Reply::html(
            413,
            "<html><center><h1>413 Request Entity Too Large</h1></center></html>",
        );
    }
    let host = request.header("Host").unwrap_or_default();
    let host_name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if !["127.0.0.1", "localhost"].contains(&host_name) {
        // Django's answer to a name outside ALLOWED_HOSTS.
        return django(Reply::html(400, "<h1>Bad Request (400)</h1>"));
    }
    if path.starts_with("/static/") {
        if path == "/static/admin/css/base.css" {
            let reply = Reply::new(200, "text/css", "body { margin: 0; }");
            return if faults.static_with_marker {
                django(reply)
            } else {
                reply
            };
        }
        return Reply::html(404, "<html>404 Not Found</html>");
    }
    if path.starts_with("/admin/") && !faults.admin_not_proxied {
        if method == "POST" {
            return admin_sign_in(state, request);
        }
        return django(Reply::html(200, ADMIN_LOGIN));
    }
    if !path.starts_with("/api/") {
        return match path.as_str() {
            "/" if faults.home_502 => {
                Reply::html(502, "<html><center>502 Bad Gateway</center></html>")
            }
            "/" if faults.huge_home => Reply::html(200, &format!("{INDEX}{}", " ".repeat(3 << 20))),
            "/" if faults.truncated_home => Reply::Truncated {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: b"<!doctype html><html><head>".to_vec(),
                announced: 5000,
            },
            "/shows/" if faults.shows_redirect_loop => {
                Reply::html(302, "").with_header("Location", "/shows/")
            }
            // As nginx serves the site's pages: revalidated on every visit.
            _ => Reply::html(200, INDEX).with_header("Cache-Control", "no-cache"),
        };
    }
    match (method, path.as_str()) {
        ("GET", "/api/health/") => {
            if faults.database_down {
                django(Reply::json(
                    503,
                    &json!({"status": "error", "database": "unreachable: connection refused", "migrations": "unknown"}),
                ))
            } else {
                django(Reply::json(
                    200,
                    &json!({"status": "ok", "database": "ok", "migrations": "ok", "version": "0.1.0"}),
                ))
            }
        }
        ("GET", "/api/health/live/") => django(Reply::json(200, &json!({"status": "ok"}))),
        _ if faults.api_serves_html && !path.starts_with("/api/health/") => Reply::html(200, INDEX),
        ("GET", "/api/shows/") => django(Reply::json(200, &json!([]))),
        ("POST", "/api/shows/") => match is_staff(request) {
            None => detail(401, "Authentication credentials were not provided."),
            Some(false) => detail(403, "Invalid token."),
            Some(true) => {
                let body = request.json().unwrap_or_default();
                state.next_id += 1;
                let capacity = body["capacity"].as_i64().unwrap_or(0);
                let show = Show {
                    id: state.next_id,
                    title: body["title"].as_str().unwrap_or_default().to_owned(),
                    capacity,
                    seats_left: capacity,
                };
                let reply = django(Reply::json(201, &show_json(&show)));
                state.shows.insert(show.id, show);
                reply
            }
        },
        ("POST", "/api/bookings/") => book(faults, state, request),
        ("POST", "/api/bookings/confirm/") if faults.hang_confirm => Reply::Hang,
        ("POST", "/api/bookings/confirm/") => confirm(faults, state, request),
        ("GET", "/api/bookings/qr/") => {
            let token = request.query("token").unwrap_or_default();
            match state
                .bookings
                .iter()
                .find(|b| b.token == token && b.confirmed)
            {
                Some(booking) => django(Reply::new(200, "image/png", qr_png(&booking.code))),
                None => detail(404, "not found"),
            }
        }
        ("POST", "/api/checkins/") => checkin(faults, state, request),
        _ => {
            if let Some(id) = path
                .strip_prefix("/api/shows/")
                .and_then(|r| r.trim_end_matches('/').parse::<u64>().ok())
            {
                return match method {
                    "GET" => match state.shows.get(&id) {
                        Some(show) => django(Reply::json(200, &show_json(show))),
                        None => detail(404, "Not found."),
                    },
                    "DELETE" => match is_staff(request) {
                        Some(true) => match state.shows.remove(&id) {
                            Some(_) => {
                                state.bookings.retain(|b| b.show != id);
                                django(Reply::empty(204))
                            }
                            None => detail(404, "Not found."),
                        },
                        _ => detail(401, "Authentication credentials were not provided."),
                    },
                    _ => detail(405, "Method not allowed."),
                };
            }
            if faults.unknown_api_serves_index {
                return Reply::html(200, INDEX);
            }
            detail(404, "Not found.")
        }
    }
}

fn book(faults: &Faults, state: &mut State, request: &HttpRequest) -> Reply {
    let body = request.json().unwrap_or_default();
    let mut errors = serde_json::Map::new();
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let email = body["email"].as_str().unwrap_or_default().to_owned();
    let seats = body["seats"].as_i64().unwrap_or(0);
    let show_id = body["show"].as_u64().unwrap_or(0);
    if name.is_empty() {
        errors.insert("name".into(), json!(["This field may not be blank."]));
    }
    if !email.contains('@') {
        errors.insert("email".into(), json!(["Enter a valid email address."]));
    }
    if seats < 1 {
        errors.insert(
            "seats".into(),
            json!(["Ensure this value is greater than or equal to 1."]),
        );
    }
    if !state.shows.contains_key(&show_id) {
        errors.insert(
            "show".into(),
            json!(["Invalid pk - object does not exist."]),
        );
    }
    if !errors.is_empty() {
        return django(Reply::json(400, &Value::Object(errors)));
    }
    let Some(show) = state.shows.get_mut(&show_id) else {
        return detail(404, "Not found.");
    };
    if show.seats_left < seats && !faults.oversells {
        return django(Reply::json(
            409,
            &json!({"detail": "sold out", "seats_left": show.seats_left}),
        ));
    }
    show.seats_left = (show.seats_left - seats).max(0);
    let reference = format!("BK{:06}", state.bookings.len() + 1);
    let token = random_token(if faults.short_token { 6 } else { 32 });
    let code = if faults.qr_reveals_email {
        format!(
            "{}.sig",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{{\"email\":\"{email}\"}}"))
        )
    } else {
        format!("ck.{}.{}", random_token(12), random_token(8))
    };
    if !faults.no_emails {
        let id = format!("m{}", state.emails.len() + 1);
        state.emails.push(Email {
            id,
            to: email.clone(),
            subject: format!("Confirm your booking {reference}"),
            text: format!(
                "Hello {name},\n\nConfirm your booking by opening this link:\n{}/confirm/?token={token}\n",
                origin(state, request)
            ),
            attachment: None,
        });
    }
    state.bookings.push(Booking {
        reference: reference.clone(),
        show: show_id,
        email,
        name,
        seats,
        token,
        confirmed: false,
        code,
    });
    django(Reply::json(
        201,
        &json!({"reference": reference, "status": "pending", "show": show_id, "seats": seats}),
    ))
}

fn confirm(faults: &Faults, state: &mut State, request: &HttpRequest) -> Reply {
    let token = request
        .json()
        .and_then(|b| b["token"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let Some(index) = state.bookings.iter().position(|b| b.token == token) else {
        if faults.confirm_500 {
            return django(Reply::html(500, "<h1>Server Error (500)</h1>"));
        }
        return detail(404, "unknown token");
    };
    let first = !state.bookings[index].confirmed;
    state.bookings[index].confirmed = true;
    let booking = state.bookings[index].clone();
    if (first || faults.second_confirm_resends) && !faults.no_emails {
        let title = state
            .shows
            .get(&booking.show)
            .map(|s| s.title.clone())
            .unwrap_or_default();
        let id = format!("m{}", state.emails.len() + 1);
        state.emails.push(Email {
            id,
            to: booking.email.clone(),
            subject: format!("Your tickets for {title} ({})", booking.reference),
            text: format!(
                "Hello {},\n\n{}/api/bookings/qr/?token={}\n",
                booking.name,
                origin(state, request),
                booking.token
            ),
            attachment: Some((
                format!("ticket-{}.png", booking.reference),
                qr_png(&booking.code),
            )),
        });
    }
    django(Reply::json(
        200,
        &json!({"reference": booking.reference, "status": "confirmed"}),
    ))
}

/// Django's admin login: the form's CSRF token and a `Referer` on this origin, then the
/// staff password, or the form again.
fn admin_sign_in(state: &State, request: &HttpRequest) -> Reply {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let referer_ok = request
        .header("Referer")
        .is_some_and(|r| r.starts_with(&origin(state, request)));
    if form.get("csrfmiddlewaretoken").map(String::as_str) != Some("f4kecsrft0ken") || !referer_ok {
        return django(Reply::html(
            403,
            "<h1>Forbidden (403)</h1><p>CSRF verification failed.</p>",
        ));
    }
    if form.get("password").map(String::as_str) == Some(STAFF_PASSWORD) {
        return django(Reply::html(302, "").with_header("Location", "/admin/"));
    }
    django(Reply::html(200, ADMIN_LOGIN))
}

fn checkin(faults: &Faults, state: &mut State, request: &HttpRequest) -> Reply {
    match is_staff(request) {
        None if !faults.checkin_without_auth => {
            return detail(401, "Authentication credentials were not provided.");
        }
        Some(false) => return detail(403, "You do not have permission to perform this action."),
        _ => {}
    }
    let code = request
        .json()
        .and_then(|b| b["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let Some(booking) = state
        .bookings
        .iter()
        .find(|b| b.code == code && b.confirmed)
        .cloned()
    else {
        if faults.echo_authorization {
            let echo = format!(
                "<h1>Server Error</h1><pre>Authorization: {}</pre>",
                request.header("Authorization").unwrap_or("none")
            );
            return django(Reply::html(500, &echo));
        }
        return detail(400, "malformed or badly signed code");
    };
    if state.checked_in.contains(&code) && !faults.second_scan_accepted {
        return detail(409, "already checked in");
    }
    state.checked_in.push(code);
    django(Reply::json(
        201,
        &json!({"reference": booking.reference, "checked_in_at": "2099-06-01T19:01:00Z"}),
    ))
}

fn maildev(state: &State, rest: &str) -> Reply {
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["email"] => {
            let list: Vec<Value> = state
                .emails
                .iter()
                .map(|m| {
                    let attachments = m.attachment.as_ref().map(|(name, _)| {
                        json!([{"fileName": name, "generatedFileName": name, "contentType": "image/png", "contentId": null}])
                    });
                    json!({
                        "id": m.id,
                        "subject": m.subject,
                        "from": [{"address": "tickets@azionelab.test", "name": ""}],
                        "to": [{"address": m.to, "name": ""}],
                        "text": m.text,
                        "envelope": {"to": [{"address": m.to, "args": false}]},
                        "attachments": attachments,
                    })
                })
                .collect();
            Reply::json(200, &Value::Array(list))
        }
        ["email", id, "attachment", name] => {
            match state
                .emails
                .iter()
                .find(|m| m.id == *id)
                .and_then(|m| m.attachment.as_ref())
                .filter(|(n, _)| n == name)
            {
                Some((_, bytes)) => Reply::new(200, "image/png", bytes.clone()),
                None => Reply::json(404, &json!({"error": "not found"})),
            }
        }
        _ => Reply::json(404, &json!({"error": "not found"})),
    }
}
