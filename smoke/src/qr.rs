//! Decoding the QR code a tickets email carries, and checking that it hides no personal data.
//!
//! The contract (`fixtures/azionelab/API.md`, "Emails") says the QR encodes an opaque signed
//! check-in code, never the visitor's name or email, "not even encoded". A payload made with
//! `django.core.signing.dumps({"email": ...})` looks opaque but is only base64url (and with
//! `compress=True`, zlib) over readable JSON: [`reveals_personal_data`] undoes those layers,
//! so the gate cannot be fooled by it.

use std::io::Read as _;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// What the first bytes of every PNG are.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Needles shorter than this are not looked for: two or three letters turn up by chance in
/// random signature bytes, and a false alarm would fail the gate for nothing.
pub const MIN_NEEDLE_LEN: usize = 4;

/// How many layers (segment, decode, inflate) deep [`reveals_personal_data`] looks.
const MAX_DEPTH: u8 = 3;

/// Decoded layers are capped so that a hostile payload (a zlib bomb) cannot exhaust memory.
const MAX_INFLATED: u64 = 1 << 20;

/// Why a PNG gave no QR payload.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The bytes are not a readable PNG.
    #[error("failed to read the image as a PNG: {reason}")]
    NotPng { reason: String },
    /// The image holds nothing that looks like a QR code.
    #[error(
        "no QR code found in the {width}x{height} PNG (is it the ticket image? a QR code needs \
         its three corner squares and a light margin)"
    )]
    NoQrCode { width: u32, height: u32 },
    /// Something QR-shaped was found but could not be read.
    #[error("failed to decode the QR code found in the PNG: {reason}")]
    Undecodable { reason: String },
}

/// Decodes the first QR code in a PNG and returns its payload as text.
pub fn decode_png(bytes: &[u8]) -> Result<String, QrError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(QrError::NotPng {
            reason: format!(
                "it does not start with the PNG signature ({} bytes, starting `{}`)",
                bytes.len(),
                preview_bytes(bytes)
            ),
        });
    }
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|err| QrError::NotPng {
            reason: err.to_string(),
        })?
        .to_luma8();
    let (width, height) = image.dimensions();
    match decode_luma(&image)? {
        Some(payload) => Ok(payload),
        // rqrr needs a light margin around the code; an image cropped to the code (no quiet
        // zone) is common, so retry once on a copy with a white border.
        None => decode_luma(&with_margin(&image))?.ok_or(QrError::NoQrCode { width, height }),
    }
}

fn decode_luma(image: &image::GrayImage) -> Result<Option<String>, QrError> {
    let mut prepared = rqrr::PreparedImage::prepare(image.clone());
    let grids = prepared.detect_grids();
    let mut last_error = None;
    for grid in grids {
        match grid.decode() {
            Ok((_meta, payload)) => return Ok(Some(payload)),
            Err(err) => last_error = Some(err),
        }
    }
    match last_error {
        Some(err) => Err(QrError::Undecodable {
            reason: err.to_string(),
        }),
        None => Ok(None),
    }
}

fn with_margin(image: &image::GrayImage) -> image::GrayImage {
    let (width, height) = image.dimensions();
    let margin = (width.max(height) / 8).max(8);
    let mut framed =
        image::GrayImage::from_pixel(width + 2 * margin, height + 2 * margin, image::Luma([255]));
    image::imageops::overlay(&mut framed, image, i64::from(margin), i64::from(margin));
    framed
}

/// The first bytes, printable ASCII as is and the rest as `\xNN`, for an error message.
fn preview_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Returns an explanation when any of `needles` (the visitor's name, their email) can be read
/// from `payload`: as is, URL-encoded, or inside any segment (split on `:` `.` `/` `?` `&` `=`)
/// or part (a run of base64 characters, so standard base64 keeps its `/` and `=`) that
/// decodes as base64, base64url (padded or not) or hex, optionally zlib- or gzip-compressed
/// (`django.core.signing.dumps(..., compress=True)` writes `.` + base64url of zlib data),
/// looking up to three layers deep. Matching ignores case. Needles shorter than
/// [`MIN_NEEDLE_LEN`] are skipped.
pub fn reveals_personal_data(payload: &str, needles: &[&str]) -> Option<String> {
    let needles: Vec<(String, &str)> = needles
        .iter()
        .map(|needle| needle.trim())
        .filter(|needle| needle.chars().count() >= MIN_NEEDLE_LEN)
        .map(|needle| (needle.to_lowercase(), needle))
        .collect();
    if needles.is_empty() {
        return None;
    }
    let hit = scan(payload, &needles, MAX_DEPTH)?;
    Some(hit.explain())
}

/// One layer of a finding: where in the text it was (a segment, or the whole text) and what
/// had to be undone there.
#[derive(Debug)]
struct Layer {
    place: Option<String>,
    undone: Vec<&'static str>,
}

#[derive(Debug)]
struct Hit {
    needle: String,
    /// Outermost first.
    layers: Vec<Layer>,
}

impl Hit {
    fn explain(&self) -> String {
        let what = if self.needle.contains('@') {
            "the email"
        } else {
            "the value"
        };
        let mut parts = Vec::new();
        for layer in &self.layers {
            let how = if layer.undone.is_empty() {
                "as is".to_owned()
            } else {
                layer.undone.join(" and ")
            };
            parts.push(match &layer.place {
                Some(place) => format!("{how} in {place}"),
                None => format!("{how} in the payload"),
            });
        }
        // The innermost layer is "as is in the payload" of the decoded text: say it only
        // when it is the whole story.
        if parts.len() > 1 && self.layers.last().is_some_and(|l| l.undone.is_empty()) {
            parts.pop();
        }
        format!(
            "{what} `{}` appears {}",
            self.needle,
            parts.join(", and within that, ")
        )
    }
}

fn find_needle(text: &str, needles: &[(String, &str)]) -> Option<String> {
    let lower = text.to_lowercase();
    needles
        .iter()
        .find(|(lowered, _)| lower.contains(lowered.as_str()))
        .map(|(_, original)| (*original).to_owned())
}

fn scan(text: &str, needles: &[(String, &str)], depth: u8) -> Option<Hit> {
    if let Some(needle) = find_needle(text, needles) {
        return Some(Hit {
            needle,
            layers: vec![Layer {
                place: None,
                undone: Vec::new(),
            }],
        });
    }
    let url_decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned();
    let form_decoded = percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned();
    for decoded in [&url_decoded, &form_decoded] {
        if decoded != text
            && let Some(needle) = find_needle(decoded, needles)
        {
            return Some(Hit {
                needle,
                layers: vec![Layer {
                    place: None,
                    undone: vec!["URL-encoded"],
                }],
            });
        }
    }
    if depth == 0 {
        return None;
    }
    let mut texts = vec![text];
    if url_decoded != text {
        texts.push(&url_decoded);
    }
    for text in texts {
        let splits: [Split; 2] = [
            ("segment", is_segment_separator),
            ("part", is_part_separator),
        ];
        for (kind, is_separator) in splits {
            let tokens = text.split(is_separator).filter(|token| !token.is_empty());
            for (index, token) in tokens.enumerate() {
                if let Some(mut hit) = scan_token(token, needles, depth) {
                    if let Some(first) = hit.layers.first_mut() {
                        first.place = Some(format!("{kind} {} (`{}`)", index + 1, preview(token)));
                    }
                    return Some(hit);
                }
            }
        }
    }
    None
}

/// A way to cut a text into tokens: its name in explanations, and what separates tokens.
type Split = (&'static str, fn(char) -> bool);

/// The separators the contract's opaque codes and Django's signing use.
fn is_segment_separator(c: char) -> bool {
    matches!(c, ':' | '.' | '/' | '?' | '&' | '=')
}

/// Anything outside base64 / base64url / hex: keeps standard base64 whole (its `/` and `=`),
/// and frees a value from JSON quotes in a decoded layer.
fn is_part_separator(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-' | '='))
}

/// Tries every decoding of one token, then looks inside each decoded text.
fn scan_token(token: &str, needles: &[(String, &str)], depth: u8) -> Option<Hit> {
    if token.len() < 6 {
        return None;
    }
    for (encoding, bytes) in decodings(token) {
        for (compression, data) in decompressions(&bytes) {
            let text = String::from_utf8_lossy(&data);
            if let Some(mut hit) = scan(&text, needles, depth - 1) {
                let mut undone = Vec::new();
                if let Some(compression) = compression {
                    undone.push(compression);
                }
                undone.push(encoding);
                // When the needle sits in the decoded text as a whole (as is, or URL-encoded),
                // that is the same layer; when it sits in a segment of it, that is a layer of
                // its own.
                let mut layers = Vec::new();
                if hit
                    .layers
                    .first()
                    .is_some_and(|inner| inner.place.is_none())
                {
                    let inner = hit.layers.remove(0);
                    undone.extend(inner.undone);
                }
                layers.push(Layer {
                    place: None,
                    undone,
                });
                layers.extend(hit.layers);
                hit.layers = layers;
                return Some(hit);
            }
        }
    }
    None
}

const fn lenient() -> GeneralPurposeConfig {
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true)
}
const BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, lenient());
const BASE64URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, lenient());

fn decodings(token: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let url_safe = token.contains(['-', '_']);
    let engines: [(&'static str, &GeneralPurpose); 2] = if url_safe {
        [
            ("base64url-encoded", &BASE64URL),
            ("base64-encoded", &BASE64),
        ]
    } else {
        [
            ("base64-encoded", &BASE64),
            ("base64url-encoded", &BASE64URL),
        ]
    };
    for (label, engine) in engines {
        if let Ok(bytes) = engine.decode(token) {
            out.push((label, bytes));
            // Both alphabets agree on a token without `+/-_`: one decoding is enough.
            break;
        }
    }
    if token.len().is_multiple_of(2)
        && token.len() >= 8
        && token.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let bytes: Option<Vec<u8>> = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
            .collect();
        if let Some(bytes) = bytes {
            out.push(("hex-encoded", bytes));
        }
    }
    out
}

/// The bytes as they are, and inflated when they are zlib or gzip data.
fn decompressions(bytes: &[u8]) -> Vec<(Option<&'static str>, Vec<u8>)> {
    let mut out = vec![(None, bytes.to_vec())];
    let mut inflated = Vec::new();
    if flate2::read::ZlibDecoder::new(bytes)
        .take(MAX_INFLATED)
        .read_to_end(&mut inflated)
        .is_ok()
        && !inflated.is_empty()
    {
        out.push((Some("zlib-compressed"), inflated));
    }
    let mut gunzipped = Vec::new();
    if flate2::read::GzDecoder::new(bytes)
        .take(MAX_INFLATED)
        .read_to_end(&mut gunzipped)
        .is_ok()
        && !gunzipped.is_empty()
    {
        out.push((Some("gzip-compressed"), gunzipped));
    }
    out
}

fn preview(token: &str) -> String {
    const SHOWN: usize = 12;
    if token.chars().count() <= SHOWN {
        token.to_owned()
    } else {
        format!("{}…", token.chars().take(SHOWN).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::io::Write as _;

    const EMAIL: &str = "visitor.smoke@example.org";
    const NAME: &str = "Smoke Visitor";

    fn b64url(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = encoder.write_all(bytes);
        encoder.finish().unwrap_or_default()
    }

    /// What `django.core.signing.dumps(obj, compress=True)` returns, built the way Django
    /// builds it: compact JSON, zlib, base64url without padding behind a `.`, then
    /// `:timestamp:signature` from `TimestampSigner`.
    fn signing_dumps_compressed(json: &str) -> String {
        format!(
            ".{}:1vMk2x:Xq3Cjb6LZ4sN0aR9vW1eT8yU2iO5pA7sD3fG6hJ9kLm",
            b64url(&zlib(json.as_bytes()))
        )
    }

    /// Made with Python's standard library following Django 5.2's `signing.dumps` source
    /// (`compress=True`, key `smoke`, salt `checkin`), for a booking dict that carries the
    /// email and name: an independent check of the decoder.
    const PYTHON_SIGNING_DUMPS: &str = ".eJxFyksOgjAQBuCrkFlbIuWhsPIOJO6nZYoNlCGUqInx7g4hwd3_-D5gmAc_9dDAxeW2xoqUNkWnCpuRqt0ZVd5lpqTKXVFbOAEF9KPwp49-5SWNgQe60RvDPFLKSy9mwkBC2u1K7juUORKuERot6cGvA7RSkn-E7w8D7zC1:1vMkPQ:wKaF-FB8b20J7TrDZZ0lMIYgl2tqgCdBS8OV_LHmFDk";

    /// The same for `{"b": "<uuid>"}`, what the contract asks for: too short to compress,
    /// so Django leaves it uncompressed.
    const PYTHON_OPAQUE_CODE: &str = "eyJiIjoiN2YzYzlhNmUtMmI0ZC00YzFlLTlmMGEtM2QxYjVlNmY4YTJjIn0:1vMkPQ:9q9SMg0On8ejl5FC0sireyMJUtIiAsKWzy78U8B8Rfg";

    #[rstest]
    #[case::raw(
        "BOOKING:visitor.smoke@example.org:abc",
        "the email `visitor.smoke@example.org` appears as is in the payload"
    )]
    #[case::other_case(
        "booking:VISITOR.SMOKE@EXAMPLE.ORG",
        "the email `visitor.smoke@example.org` appears as is in the payload"
    )]
    #[case::url_encoded(
        "https://x.example/c/?e=visitor.smoke%40example.org",
        "the email `visitor.smoke@example.org` appears URL-encoded in the payload"
    )]
    #[case::name_form_encoded(
        "c?n=Smoke+Visitor",
        "the value `Smoke Visitor` appears URL-encoded in the payload"
    )]
    fn readable_data_is_found(#[case] payload: &str, #[case] expected: &str) {
        assert_eq!(
            reveals_personal_data(payload, &[EMAIL, NAME]).as_deref(),
            Some(expected)
        );
    }

    #[test]
    fn base64_standard_padded_with_slashes_is_found() {
        // `0f f0 00` encodes to `D/AA`: a `/` off the 4-character grid, so only the whole
        // run decodes to the email, not the pieces the segment split leaves.
        let mut bytes = vec![0x0f, 0xf0, 0x00];
        bytes.extend_from_slice(EMAIL.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(encoded.contains('/') && encoded.ends_with('='), "{encoded}");
        let payload = format!("v1:{encoded}");
        let found = reveals_personal_data(&payload, &[EMAIL]);
        assert!(
            found.as_deref().is_some_and(|f| f.starts_with(
                "the email `visitor.smoke@example.org` appears base64-encoded in part 2"
            )),
            "{found:?}"
        );
    }

    #[test]
    fn base64url_unpadded_json_like_signing_dumps_is_found() {
        // `signing.dumps({"e": EMAIL})`, uncompressed: the JSON is too short to be worth it.
        let payload = format!(
            "{}:1vMk2x:Xq3Cjb6LZ4sN0aR9vW1eT8yU2iO5pA7sD3fG6hJ9kLm",
            b64url(format!("{{\"e\":\"{EMAIL}\"}}").as_bytes())
        );
        assert!(!payload.contains('='));
        assert_eq!(
            reveals_personal_data(&payload, &[NAME, EMAIL]).as_deref(),
            Some(
                "the email `visitor.smoke@example.org` appears base64-encoded in segment 1 \
                 (`eyJlIjoidmlz…`)"
            )
        );
    }

    #[test]
    fn base64url_with_its_own_alphabet_unpadded_is_found() {
        // `fb ef be` encodes to `----` in base64url (`++++` in standard base64).
        let mut bytes = vec![0xfb, 0xef, 0xbe];
        bytes.extend_from_slice(EMAIL.as_bytes());
        let encoded = b64url(&bytes);
        assert!(
            encoded.starts_with("----") && !encoded.ends_with('='),
            "{encoded}"
        );
        assert_eq!(
            reveals_personal_data(&format!("v2:{encoded}:sig"), &[EMAIL]).as_deref(),
            Some(
                "the email `visitor.smoke@example.org` appears base64url-encoded in segment 2 \
                 (`----dmlzaXRv…`)"
            )
        );
    }

    #[test]
    fn signing_dumps_compressed_payloads_are_inflated() {
        let json = format!(
            "{{\"booking\":\"b3f1c2aa-0000-4000-8000-000000000000\",\"email\":\"{EMAIL}\",\
             \"name\":\"{NAME}\",\"note\":\"{NAME} {NAME} {NAME}\"}}"
        );
        let payload = signing_dumps_compressed(&json);
        assert!(payload.starts_with(".eJ"), "{payload}");
        let found = reveals_personal_data(&payload, &[EMAIL]);
        assert!(
            found.as_deref().is_some_and(|f| f.starts_with(
                "the email `visitor.smoke@example.org` appears zlib-compressed and \
                 base64url-encoded in segment 1 (`eJ"
            ) || f.starts_with(
                "the email `visitor.smoke@example.org` appears zlib-compressed and \
                 base64-encoded in segment 1 (`eJ"
            )),
            "{found:?}"
        );
    }

    #[test]
    fn a_payload_made_by_python_like_django_is_inflated() {
        let found = reveals_personal_data(PYTHON_SIGNING_DUMPS, &["Smoke Visitor", EMAIL]);
        assert!(
            found
                .as_deref()
                .is_some_and(|f| f.contains("zlib-compressed and base64url-encoded in segment 1")),
            "{found:?}"
        );
    }

    #[test]
    fn a_nested_encoding_is_explained_layer_by_layer() {
        let inner = base64::engine::general_purpose::STANDARD.encode(EMAIL);
        let payload = b64url(format!("{{\"id\":7,\"who\":\"{inner}\"}}").as_bytes());
        let found = reveals_personal_data(&payload, &[EMAIL]);
        assert_eq!(
            found.as_deref(),
            Some(
                "the email `visitor.smoke@example.org` appears base64-encoded in segment 1 \
                 (`eyJpZCI6Nywi…`), and within that, base64-encoded in part 4 (`dmlzaXRvci5z…`)"
            ),
        );
    }

    #[test]
    fn hex_encoded_data_is_found() {
        let hex: String = EMAIL.bytes().map(|b| format!("{b:02x}")).collect();
        let found = reveals_personal_data(&format!("t:{hex}"), &[EMAIL]);
        assert!(
            found
                .as_deref()
                .is_some_and(|f| f.contains("hex-encoded in segment 2")),
            "{found:?}"
        );
    }

    #[rstest]
    // What the reference backend signs: a random per-booking identifier only.
    #[case::opaque_signed_code(PYTHON_OPAQUE_CODE)]
    #[case::compressed_about_another_person(PYTHON_SIGNING_DUMPS)]
    #[case::plain_reference("AZL-AB12CD-7f3c9a6e")]
    #[case::url("https://azionelab.example/checkin/?code=AB12CD")]
    #[case::empty("")]
    fn clean_payloads_reveal_nothing(#[case] payload: &str) {
        // `compressed_about_another_person` does carry personal data, not these people's.
        assert_eq!(
            reveals_personal_data(payload, &["someone.else@example.org", "Giulia Bianchi"]),
            None
        );
    }

    #[test]
    fn short_needles_are_ignored() {
        assert_eq!(reveals_personal_data("al:bo", &["al", "", "  "]), None);
    }

    fn qr_png(payload: &str, margin: bool) -> Vec<u8> {
        let code = match qrcode::QrCode::new(payload.as_bytes()) {
            Ok(code) => code,
            Err(err) => panic!("failed to encode the test QR: {err}"),
        };
        let image = code
            .render::<image::Luma<u8>>()
            .quiet_zone(margin)
            .module_dimensions(4, 4)
            .build();
        let mut png = Vec::new();
        if let Err(err) = image::DynamicImage::ImageLuma8(image)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        {
            panic!("failed to write the test PNG: {err}");
        }
        png
    }

    #[rstest]
    #[case::with_quiet_zone(true)]
    #[case::cropped_without_quiet_zone(false)]
    fn a_generated_qr_png_round_trips(#[case] margin: bool) {
        let payload = "eyJiIjoiN2YzYzlhNmUifQ:1vMk2x:q7Zk0P3nR2sT5uV8wX1yA4bC6dE9fG2hJ5kL8mN0pQ";
        let decoded = decode_png(&qr_png(payload, margin));
        assert_eq!(decoded.ok().as_deref(), Some(payload));
    }

    #[test]
    fn a_qr_hiding_the_email_under_signing_dumps_is_caught_end_to_end() {
        let payload = signing_dumps_compressed(&format!(
            "{{\"email\":\"{EMAIL}\",\"padding\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}"
        ));
        let decoded = decode_png(&qr_png(&payload, true));
        let Ok(decoded) = decoded else {
            panic!("{decoded:?}");
        };
        assert!(reveals_personal_data(&decoded, &[NAME, EMAIL]).is_some());
    }

    #[test]
    fn garbage_is_not_a_png() {
        let err = decode_png(b"<html>502 Bad Gateway</html>")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "failed to read the image as a PNG: it does not start with the PNG signature \
                 (28 bytes, starting `<html>502 Bad Ga`)"
            )
        );
    }

    #[test]
    fn a_truncated_png_is_not_a_png() {
        let png = qr_png("x", true);
        let err = decode_png(&png[..png.len() / 2]);
        assert!(matches!(err, Err(QrError::NotPng { .. })), "{err:?}");
    }

    #[test]
    fn a_png_without_a_qr_code_says_so() {
        let blank = image::GrayImage::from_pixel(64, 48, image::Luma([255]));
        let mut png = Vec::new();
        if let Err(err) = image::DynamicImage::ImageLuma8(blank)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        {
            panic!("failed to write the test PNG: {err}");
        }
        let err = decode_png(&png).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("no QR code found in the 64x48 PNG")),
            "{err:?}"
        );
    }
}
