//! The MailDev client against a real HTTP server on loopback that serves MailDev-shaped JSON.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::mailbox::mime::tests::png_bytes;
use crate::mailbox::{MailQuery, Mailbox, MailboxConfig, MailboxError};

#[derive(Clone, Default)]
struct Catcher {
    emails: Arc<Mutex<Vec<Value>>>,
    /// Answer 503 to this many list requests first, like a catcher still starting.
    unavailable_for: Arc<Mutex<usize>>,
    list_requests: Arc<Mutex<usize>>,
}

impl Catcher {
    fn push(&self, email: Value) {
        self.emails
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(email);
    }
}

async fn list(State(catcher): State<Catcher>) -> Response {
    *catcher
        .list_requests
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) += 1;
    {
        let mut unavailable = catcher
            .unavailable_for
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *unavailable > 0 {
            *unavailable -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
        }
    }
    let emails = catcher
        .emails
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    axum::Json(Value::Array(emails)).into_response()
}

/// Serves what MailDev does: the attachment whose `generatedFileName` matches, else 404.
async fn attachment(
    State(catcher): State<Catcher>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let emails = catcher
        .emails
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let found = emails
        .iter()
        .find(|email| email["id"] == id)
        .and_then(|email| {
            email["attachments"]
                .as_array()?
                .iter()
                .find(|a| a["generatedFileName"] == name.as_str())
                .cloned()
        });
    match found {
        Some(found) => (
            [(
                header::CONTENT_TYPE,
                found["contentType"]
                    .as_str()
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
            )],
            png_bytes(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!("File not found"))).into_response(),
    }
}

/// Starts the catcher on an ephemeral loopback port; the server task ends with the runtime.
async fn start(catcher: Catcher) -> url::Url {
    let app = Router::new()
        .route("/email", get(list))
        .route("/email/{id}/attachment/{name}", get(attachment))
        .with_state(catcher);
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(err) => panic!("failed to bind a loopback port: {err}"),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    tokio::spawn(async move { axum::serve(listener, app).await });
    match url::Url::parse(&format!("http://127.0.0.1:{port}/")) {
        Ok(url) => url,
        Err(err) => panic!("bad test URL: {err}"),
    }
}

/// A message as MailDev 2.2 stores it after receiving Django's tickets email over SMTP.
fn tickets(id: &str, to: &str, reference: &str) -> Value {
    json!({
        "html": "<p>Your tickets</p>",
        "text": format!("https://site.example/api/bookings/qr/?token=tok-{reference}\n"),
        "headers": {
            "content-type": "multipart/mixed; boundary=\"===============1==\"",
            "mime-version": "1.0",
            "subject": format!("Your tickets for Concert ({reference})"),
            "from": "AzioneLab <noreply@azionelab.example>",
            "to": to,
            "date": "Sat, 22 Nov 2025 10:00:00 -0000",
            "message-id": "<1@azionelab.example>"
        },
        "subject": format!("Your tickets for Concert ({reference})"),
        "messageId": "1@azionelab.example",
        "priority": "normal",
        "from": [{"address": "noreply@azionelab.example", "name": "AzioneLab"}],
        "to": [{"address": to, "name": ""}],
        "date": "2025-11-22T10:00:00.000Z",
        "attachments": [{
            "contentType": "image/png",
            "contentDisposition": "attachment",
            "transferEncoding": "base64",
            "fileName": format!("ticket-{reference}.png"),
            "generatedFileName": "8f14e45fceea167a5a36dedd4bea2543.png",
            "contentId": "8f14e45fceea167a5a36dedd4bea2543@mailparser",
            "checksum": "0e5b7d1f6d3c1b0c1e1a3b5c7d9e1f23",
            "length": 70,
            "transformed": true
        }],
        "id": id,
        "time": "2025-11-22T10:00:00.000Z",
        "read": false,
        "envelope": {
            "from": {"address": "noreply@azionelab.example", "args": false},
            "to": [{"address": to, "args": false}],
            "host": "backend",
            "remoteAddress": "::ffff:172.18.0.3"
        },
        "source": format!("/tmp/maildev-1/{id}.eml"),
        "size": 1234,
        "sizeHuman": "1.21 KB",
        "calculatedBcc": []
    })
}

/// A text-only message (MailDev stores `attachments: null` then).
fn confirmation(id: &str, to: &str, reference: &str) -> Value {
    json!({
        "text": "https://site.example/confirm/?token=abc\n",
        "subject": format!("Confirm your booking {reference}"),
        "from": [{"address": "noreply@azionelab.example", "name": ""}],
        "to": [{"address": to, "name": ""}],
        "attachments": null,
        "id": id,
        "envelope": {"from": {"address": "noreply@azionelab.example"}, "to": [{"address": to}]},
        "calculatedBcc": []
    })
}

fn query(to: &str, subject: &str) -> MailQuery {
    MailQuery {
        to: to.to_owned(),
        subject_contains: subject.to_owned(),
    }
}

async fn open(url: url::Url) -> Mailbox {
    match Mailbox::open(&MailboxConfig::Http { api_url: url }).await {
        Ok(mailbox) => mailbox,
        Err(err) => panic!("failed to open the test catcher: {err}"),
    }
}

#[tokio::test]
async fn wait_for_returns_as_soon_as_the_email_lands_with_its_attachment() {
    let catcher = Catcher::default();
    catcher.push(confirmation("a1", "visitor@example.org", "AB12"));
    let mailbox = open(start(catcher.clone()).await).await;

    let late = catcher.clone();
    let arrives_after = Duration::from_millis(700);
    tokio::spawn(async move {
        tokio::time::sleep(arrives_after).await;
        late.push(tickets("b2", "Visitor@Example.org", "AB12"));
    });

    let started = Instant::now();
    let email = mailbox
        .wait_for(
            &query("visitor@example.org", "your tickets for"),
            Duration::from_secs(20),
        )
        .await;
    let waited = started.elapsed();
    let email = match email {
        Ok(email) => email,
        Err(err) => panic!("the email was not found: {err}"),
    };
    assert!(
        waited >= arrives_after,
        "returned before the email existed: {waited:?}"
    );
    // The poll delay never exceeds 2 s, so the email is seen well before the 20 s deadline.
    assert!(
        waited < Duration::from_secs(3),
        "took {waited:?} to notice the email"
    );

    assert_eq!(email.id, "b2");
    assert_eq!(email.from, "noreply@azionelab.example");
    assert_eq!(email.to, vec!["Visitor@Example.org".to_owned()]);
    assert_eq!(email.subject, "Your tickets for Concert (AB12)");
    assert!(email.text.contains("/api/bookings/qr/?token=tok-AB12"));
    assert_eq!(email.html.as_deref(), Some("<p>Your tickets</p>"));
    assert_eq!(email.attachments.len(), 1);
    assert_eq!(email.attachments[0].filename, "ticket-AB12.png");
    assert_eq!(email.attachments[0].content_type, "image/png");
    assert_eq!(email.attachments[0].bytes, png_bytes());
}

#[tokio::test]
async fn never_arrived_names_what_the_catcher_held() {
    let catcher = Catcher::default();
    catcher.push(confirmation("a1", "someone@example.org", "ZZ99"));
    catcher.push(confirmation("a2", "webmaster@localhost", "AB12"));
    let mailbox = open(start(catcher).await).await;

    let started = Instant::now();
    let result = mailbox
        .wait_for(
            &query("visitor@example.org", "Confirm your booking AB12"),
            Duration::from_millis(800),
        )
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "gave up early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "overran the deadline: {waited:?}"
    );
    match result {
        Err(MailboxError::NeverArrived { seen, .. }) => {
            assert_eq!(seen.total, 2);
            let subjects: Vec<&str> = seen.last.iter().map(|m| m.subject.as_str()).collect();
            assert_eq!(
                subjects,
                ["Confirm your booking ZZ99", "Confirm your booking AB12"]
            );
            assert_eq!(seen.last[1].to, vec!["webmaster@localhost".to_owned()]);
        }
        other => panic!("expected NeverArrived, got {other:?}"),
    }
    let text = match mailbox
        .wait_for(
            &query("visitor@example.org", "Confirm your booking AB12"),
            Duration::ZERO,
        )
        .await
    {
        Err(err) => err.to_string(),
        Ok(email) => panic!("unexpected email {email:?}"),
    };
    assert!(text.contains("the mailbox holds 2 messages:"), "{text}");
    assert!(
        text.contains("- `Confirm your booking AB12` to `webmaster@localhost`"),
        "{text}"
    );
    assert!(text.contains("went to another address"), "{text}");
}

#[tokio::test]
async fn count_counts_matching_emails_only() {
    let catcher = Catcher::default();
    catcher.push(confirmation("a1", "visitor@example.org", "AB12"));
    catcher.push(tickets("a2", "visitor@example.org", "AB12"));
    catcher.push(confirmation("a3", "visitor@example.org", "AB12"));
    catcher.push(confirmation("a4", "other@example.org", "AB12"));
    let mailbox = open(start(catcher).await).await;
    let count = mailbox
        .count(&query("VISITOR@example.org", "confirm your booking"))
        .await;
    assert_eq!(count.ok(), Some(2));
    // The newest of several matches is the one returned.
    let newest = mailbox
        .wait_for(
            &query("visitor@example.org", "Confirm"),
            Duration::from_secs(5),
        )
        .await
        .map(|email| email.id);
    assert_eq!(newest.ok().as_deref(), Some("a3"));
}

#[tokio::test]
async fn a_catcher_that_is_still_starting_is_retried() {
    let catcher = Catcher::default();
    catcher.push(confirmation("a1", "visitor@example.org", "AB12"));
    let mailbox = open(start(catcher.clone()).await).await;
    *catcher
        .unavailable_for
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = 2;
    let before = *catcher
        .list_requests
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let email = mailbox
        .wait_for(
            &query("visitor@example.org", "AB12"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(email.map(|email| email.id).ok().as_deref(), Some("a1"));
    let after = *catcher
        .list_requests
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    assert_eq!(after - before, 3, "two 503s then the list");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_with_a_hint() {
    // Bind then drop, so that the port is (almost certainly) closed.
    let port = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener.local_addr().map(|a| a.port()).unwrap_or_default(),
        Err(err) => panic!("failed to bind a loopback port: {err}"),
    };
    let config = MailboxConfig::parse(&format!("http://127.0.0.1:{port}"), None);
    let Ok(config) = config else {
        panic!("{config:?}");
    };
    match Mailbox::open(&config).await {
        Err(err @ MailboxError::Unreachable { .. }) => {
            let text = err.to_string();
            assert!(
                text.starts_with(&format!(
                    "failed to reach the mailbox at `http://127.0.0.1:{port}/email`"
                )),
                "{text}"
            );
            assert!(
                text.ends_with("(is the mail catcher running, and its API port published?)"),
                "{text}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_url_that_is_not_maildev_is_a_protocol_error() {
    let base = start(Catcher::default()).await;
    let Ok(wrong) = base.join("not-maildev/") else {
        panic!("bad URL");
    };
    match Mailbox::open(&MailboxConfig::Http { api_url: wrong }).await {
        Err(err @ MailboxError::Protocol { .. }) => {
            assert!(
                err.to_string()
                    .contains("404 Not Found (is this MailDev's API URL?)"),
                "{err}"
            );
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
}
