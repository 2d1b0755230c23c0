//! Steps that judge a value rather than an answer: assertions on captures, the strength of a
//! token, and what a QR code holds.

use base64::Engine as _;

use super::{Ctx, End, transport_failure};
use crate::check::{AssertStep, Captures, QrSource, QrStep, Template, Value};
use crate::report::{Failure, SkipReason};
use crate::runner::http::Http;

pub(super) fn assert(assert: &AssertStep, captures: &Captures) -> End {
    let value = match assert.value.render(captures) {
        Ok(value) => value,
        Err(e) => return End::Skip(SkipReason::MissingCapture { name: e.0 }),
    };
    let mismatches: Vec<_> = assert
        .checks
        .iter()
        .filter_map(|c| c.check(&value, captures).err())
        .collect();
    let Some(first) = mismatches.first() else {
        return End::Pass(Vec::new());
    };
    End::Fail(Failure {
        title: format!("`{}` is not as expected", assert.value.as_str()),
        expected: mismatches
            .iter()
            .map(|m| m.expected.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        actual: first.actual.clone(),
        ..Failure::default()
    })
}

pub(super) fn token_strength(captures: &Captures, value: &Template, min_bytes: usize) -> End {
    let token = match value.render(captures) {
        Ok(token) => token,
        Err(e) => return End::Skip(SkipReason::MissingCapture { name: e.0 }),
    };
    let trimmed = token.trim_end_matches('=');
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed);
    match decoded {
        Ok(bytes) if bytes.len() >= min_bytes => End::Pass(Vec::new()),
        Ok(bytes) => End::Fail(Failure {
            title: format!("`{}` is guessable", value.as_str()),
            expected: format!(
                "URL-safe base64 of at least {min_bytes} random bytes ({} bits)",
                min_bytes * 8
            ),
            actual: format!("{} bytes ({} bits)", bytes.len(), bytes.len() * 8),
            hint: Some("make it with `secrets.token_urlsafe(32)`".to_owned()),
            ..Failure::default()
        }),
        Err(_) => End::Fail(Failure {
            title: format!("`{}` is not URL-safe base64", value.as_str()),
            expected: format!("URL-safe base64 of at least {min_bytes} random bytes"),
            actual: format!("a {}-character value that does not decode", token.len()),
            hint: Some("make it with `secrets.token_urlsafe(32)`".to_owned()),
            ..Failure::default()
        }),
    }
}

impl Ctx<'_> {
    pub(super) async fn qr_step(&self, http: &Http, qr: &QrStep, captures: &Captures) -> End {
        let (bytes, from) = match &qr.source {
            QrSource::Capture(name) => match captures.get(name) {
                Some(Value::Bytes(bytes)) => (bytes.clone(), format!("`{name}`")),
                Some(Value::Text(_)) => {
                    return End::Fail(Failure {
                        title: format!("`{name}` is text, not an image"),
                        expected: "the bytes of an image (an attachment)".to_owned(),
                        actual: "a text capture".to_owned(),
                        ..Failure::default()
                    });
                }
                None => return End::Skip(SkipReason::MissingCapture { name: name.clone() }),
            },
            QrSource::Request(request) => {
                let described = http.describe(request, captures);
                let response = match http.send(request, captures).await {
                    Ok(response) => response,
                    Err(error) => return End::Fail(transport_failure(&error, described)),
                };
                if response.status != 200 || !response.content_type().starts_with("image/") {
                    return End::Fail(Failure {
                        title: "the QR code's URL serves no image".to_owned(),
                        request: Some(described),
                        expected: "status 200 with an `image/...` content type".to_owned(),
                        actual: format!(
                            "status {} with `{}`",
                            response.status,
                            response.content_type()
                        ),
                        excerpt: response.excerpt(),
                        ..Failure::default()
                    });
                }
                (response.body, described)
            }
        };
        let payload = match crate::qr::decode_png(&bytes) {
            Ok(payload) => payload,
            Err(error) => {
                return End::Fail(Failure {
                    title: "failed to decode the QR code".to_owned(),
                    request: Some(from),
                    expected: "an image holding one QR code".to_owned(),
                    actual: error.to_string(),
                    ..Failure::default()
                });
            }
        };
        let values: Vec<(String, Value)> = qr
            .capture
            .iter()
            .map(|name| (name.clone(), Value::Text(payload.clone())))
            .collect();
        if let Some(equals) = &qr.equals {
            let want = match equals.render(captures) {
                Ok(want) => want,
                Err(e) => return End::Skip(SkipReason::MissingCapture { name: e.0 }),
            };
            if payload != want {
                return End::Fail(Failure {
                    title: "the QR code holds another code".to_owned(),
                    request: Some(from),
                    expected: format!("`{}`", crate::check::excerpt(want.as_bytes(), 120)),
                    actual: format!("`{}`", crate::check::excerpt(payload.as_bytes(), 120)),
                    ..Failure::default()
                });
            }
        }
        let needles: Vec<String> = qr
            .not_revealing
            .iter()
            .filter_map(|n| n.render(captures).ok())
            .collect();
        let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
        if let Some(explanation) = crate::qr::reveals_personal_data(&payload, &refs) {
            return End::FailKeep(
                Failure {
                    title: "the QR code reveals personal data".to_owned(),
                    request: Some(from),
                    expected: "an opaque code, none of the personal data (not even encoded)"
                        .to_owned(),
                    actual: explanation,
                    excerpt: Some(crate::check::excerpt(payload.as_bytes(), 200)),
                    hint: Some(
                        "sign a random per-record id (e.g. with `django.core.signing`), nothing else"
                            .to_owned(),
                    ),
                    ..Failure::default()
                },
                values,
            );
        }
        End::Pass(values)
    }
}
