//! The AzioneLab scenarios (`fixtures/azionelab/API.md`): booking, confirmation by email, the
//! QR code, check-in, capacity under concurrency, and the cleanup of what they create.
//!
//! Everything a run creates is named after its run id (`smoke <run-id>`,
//! `smoke+<run-id>@example.test`), so reruns and concurrent runs against one site never collide,
//! and shows are unlisted so visitors never see them.

use serde_json::json;

use crate::check::{
    Action, Capture, Category, EmailStep, Expect, HttpStep, MailTemplate, Request, Scenario, Step,
    Template,
};

/// Far enough ahead to be "upcoming" for as long as this code lives.
const STARTS_AT: &str = "2099-06-01T19:00:00Z";
/// The marker of the site index, which an API answer must never be.
const INDEX_MARKER: &str = r#"<meta name="app" content="azionelab">"#;

fn status(codes: &[u16]) -> Expect {
    Expect::Status(codes.to_vec())
}

fn json_eq(pointer: &str, value: serde_json::Value) -> Expect {
    Expect::JsonEquals {
        pointer: pointer.to_owned(),
        value,
    }
}

fn json_ct() -> Expect {
    Expect::ContentType("application/json".to_owned())
}

fn delete_show(capture: &str) -> Request {
    Request {
        method: "DELETE".to_owned(),
        ..Request::get(&format!("/api/shows/{{{{{capture}}}}}/"))
    }
    .with_staff()
}

fn create_show(title: &str, capacity: u32) -> Request {
    Request::json(
        "POST",
        "/api/shows/",
        json!({"title": title, "starts_at": STARTS_AT, "capacity": capacity, "listed": false}),
    )
    .with_staff()
}

/// Checks that need no earlier step.
pub fn independent_checks() -> Vec<Step> {
    vec![
        Step::http(
            Category::Confirmation,
            "unknown_token_404",
            "confirming with a token nobody was sent answers a JSON 404",
            HttpStep::new(
                Request::json(
                    "POST",
                    "/api/bookings/confirm/",
                    json!({"token": "smoke-unknown-{{run_id}}-AAAAAAAAAAAAAAAAAAAAAA"}),
                ),
                vec![
                    status(&[404]),
                    json_ct(),
                    Expect::BodyNotContains(INDEX_MARKER.to_owned()),
                ],
            ),
        )
        .with_hint("look the token up and answer 404 when no booking holds it"),
        Step::http(
            Category::Confirmation,
            "qr_requires_token",
            "the QR endpoint refuses a request without a valid token",
            HttpStep::new(
                Request::get("/api/bookings/qr/?token=smoke-invalid-{{run_id}}"),
                vec![
                    status(&[400, 403, 404]),
                    Expect::BodyNotContains("PNG".to_owned()),
                ],
            ),
        )
        .with_hint("serve the QR code only to the holder of a confirmed booking's token"),
        Step::http(
            Category::Checkin,
            "invalid_code_rejected",
            "a malformed or badly signed check-in code is rejected (400/404), never accepted",
            HttpStep::new(
                Request::json(
                    "POST",
                    "/api/checkins/",
                    json!({"code": "smoke-invalid-{{run_id}}"}),
                )
                .with_staff(),
                vec![status(&[400, 404]), json_ct()],
            ),
        )
        .with_hint("verify the code with `django.core.signing` before looking the booking up"),
    ]
}

/// The booking flow and the capacity scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![booking_flow(), capacity()]
}

fn booking_flow() -> Scenario {
    let confirm = || {
        Request::json(
            "POST",
            "/api/bookings/confirm/",
            json!({"token": "{{token}}"}),
        )
    };
    let checkin = || {
        Request::json(
            "POST",
            "/api/checkins/",
            json!({"code": "{{checkin_code}}"}),
        )
    };
    let tickets = MailTemplate {
        to: Template::new("{{email}}"),
        subject_contains: Template::new("({{reference}})"),
    };
    let steps = vec![
        Step::http(
            Category::Booking,
            "create_show",
            "staff can create an unlisted show through the API",
            HttpStep::new(create_show("smoke {{run_id}}", 20), vec![status(&[201]), json_ct()])
                .with_captures(vec![Capture::json("show_id", "/id")])
                .with_cleanup(delete_show("show_id")),
        )
        .with_hint("is the staff token right (`ensure_staff`)? look at the backend's logs"),
        Step::http(
            Category::Booking,
            "invalid_payload_400",
            "an invalid booking is refused with a 400 naming the bad fields",
            HttpStep::new(
                Request::json(
                    "POST",
                    "/api/bookings/",
                    json!({"show": "{{show_id}}", "name": "", "email": "not-an-email", "seats": 0}),
                ),
                vec![status(&[400]), json_ct(), Expect::JsonExists("/email".to_owned())],
            ),
        )
        .with_hint("validate with a serializer and answer its errors as `{\"field\": [\"message\"]}`"),
        Step::http(
            Category::Booking,
            "create",
            "a visitor can book seats; the booking starts pending",
            HttpStep::new(
                Request::json(
                    "POST",
                    "/api/bookings/",
                    json!({"show": "{{show_id}}", "name": "{{visitor_name}}", "email": "{{email}}", "seats": 2}),
                ),
                vec![status(&[201]), json_ct(), json_eq("/status", json!("pending"))],
            )
            .with_captures(vec![Capture::json("reference", "/reference")]),
        ),
        Step::new(
            Category::Confirmation,
            "email_received",
            "the booking sends a confirmation email carrying the confirmation link",
            Action::Email(EmailStep {
                query: MailTemplate {
                    to: Template::new("{{email}}"),
                    subject_contains: Template::new("Confirm your booking {{reference}}"),
                },
                text_captures: vec![("token".to_owned(), r"/confirm/\?token=([A-Za-z0-9_\-]+)".to_owned())],
                png_attachment: None,
            }),
        ),
        Step::new(
            Category::Confirmation,
            "token_unguessable",
            "the confirmation token is URL-safe base64 of at least 128 random bits",
            Action::TokenStrength { token: "token".to_owned(), min_bytes: 16 },
        ),
        Step::http(
            Category::Confirmation,
            "confirm",
            "the link's token confirms the booking",
            HttpStep::new(
                confirm(),
                vec![status(&[200]), json_eq("/status", json!("confirmed")), json_eq("/reference", json!("{{reference}}"))],
            ),
        ),
        Step::new(
            Category::Confirmation,
            "qr_email_received",
            "confirming sends the tickets email with the QR code attached",
            Action::Email(EmailStep {
                query: tickets.clone(),
                text_captures: Vec::new(),
                png_attachment: Some(("qr_png".to_owned(), Template::new("ticket-{{reference}}"))),
            }),
        )
        .after(&["confirmation.confirm"]),
        Step::http(
            Category::Confirmation,
            "idempotent",
            "confirming twice answers 200 again and sends no second tickets email",
            HttpStep::new(confirm(), vec![status(&[200]), json_eq("/status", json!("confirmed"))])
                .with_mail_count(tickets, 1),
        )
        .after(&["confirmation.qr_email_received"]),
        Step::new(
            Category::Confirmation,
            "qr_no_personal_data",
            "the QR code decodes to an opaque code revealing neither name nor email, even encoded",
            Action::QrNoPersonalData {
                png: "qr_png".to_owned(),
                into: "checkin_code".to_owned(),
                needles: vec![Template::new("{{visitor_name}}"), Template::new("{{email}}")],
            },
        ),
        Step::http(
            Category::Checkin,
            "requires_staff",
            "check-in without credentials is refused (401/403)",
            HttpStep::new(checkin(), vec![status(&[401, 403])]),
        )
        .with_hint("protect the check-in view with `IsAdminUser`"),
        Step::http(
            Category::Checkin,
            "first_scan_201",
            "staff scanning the QR code checks the booking in",
            HttpStep::new(
                checkin().with_staff(),
                vec![status(&[201]), json_eq("/reference", json!("{{reference}}"))],
            ),
        )
        .after(&["checkin.requires_staff"]),
        Step::http(
            Category::Checkin,
            "second_scan_409",
            "scanning the same code again is rejected (409)",
            HttpStep::new(checkin().with_staff(), vec![status(&[409])]),
        )
        .after(&["checkin.first_scan_201"])
        .with_hint("record check-ins with a unique constraint and answer 409 on a repeat"),
        Step::new(Category::Booking, "cleanup", "the show this scenario created is deleted again", Action::Cleanup),
    ];
    Scenario {
        name: "booking".to_owned(),
        steps,
    }
}

fn capacity() -> Scenario {
    let steps = vec![
        Step::http(
            Category::Booking,
            "capacity_show",
            "staff can create the 10-seat show the capacity check books",
            HttpStep::new(
                create_show("smoke capacity {{run_id}}", 10),
                vec![status(&[201])],
            )
            .with_captures(vec![Capture::json("capacity_show_id", "/id")])
            .with_cleanup(delete_show("capacity_show_id")),
        ),
        Step::new(
            Category::Booking,
            "capacity_enforced",
            "50 concurrent single-seat bookings of 10 seats give exactly 10 × 201 and 40 × 409, no 5xx, and 0 seats left",
            Action::Burst {
                request: Request::json(
                    "POST",
                    "/api/bookings/",
                    json!({
                        "show": "{{capacity_show_id}}",
                        "name": "Smoke Burst {{run_id}} {{i}}",
                        "email": "smoke+{{run_id}}-{{i}}@example.test",
                        "seats": 1,
                    }),
                ),
                count: 50,
                statuses: vec![(201, 10), (409, 40)],
                verify: Some(HttpStep::new(
                    Request::get("/api/shows/{{capacity_show_id}}/"),
                    vec![status(&[200]), json_eq("/seats_left", json!(0))],
                )),
            },
        ),
        Step::new(
            Category::Booking,
            "capacity_cleanup",
            "the 10-seat show is deleted again",
            Action::Cleanup,
        ),
    ];
    Scenario {
        name: "capacity".to_owned(),
        steps,
    }
}
