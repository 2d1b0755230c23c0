//! Turning a raw RFC 822 message (what IMAP hands over) into an [`Email`].
//!
//! `mail-parser` does the MIME work (encoded words, transfer encodings, nested multiparts);
//! this module only picks what the smoke checks read: the bare addresses, the first real
//! `text/plain` and `text/html` bodies, and every attachment with its bytes.

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};

use super::{Attachment, Email, SeenMessage};

/// Parses a whole message. `None` when the bytes are not a message at all.
pub(crate) fn parse_email(id: String, raw: &[u8]) -> Option<Email> {
    let message = MessageParser::default().parse(raw)?;
    let text = message
        .text_bodies()
        // When an email has only HTML, mail-parser lists the HTML part as its text body too;
        // the checks must see that there is no text part, not a converted one.
        .find_map(|part| match &part.body {
            PartType::Text(text) => Some(text.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    let html = message.html_bodies().find_map(|part| match &part.body {
        PartType::Html(html) => Some(html.to_string()),
        _ => None,
    });
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| Attachment {
            filename: part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("attachment-{}", index + 1)),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned())
                .to_ascii_lowercase(),
            bytes: part.contents().to_vec(),
        })
        .collect();
    Some(Email {
        id,
        from: message
            .from()
            .and_then(|from| from.first())
            .and_then(|addr| addr.address())
            .unwrap_or_default()
            .to_owned(),
        to: addresses(message.to()),
        subject: message.subject().unwrap_or_default().to_owned(),
        text,
        html,
        attachments,
    })
}

/// The recipients (`To`, `Cc`) and subject from a message's header block.
pub(crate) fn parse_summary(header: &[u8]) -> SeenMessage {
    let parser = MessageParser::default();
    match parser.parse_headers(header) {
        Some(message) => summary(&message),
        None => SeenMessage {
            to: Vec::new(),
            subject: String::new(),
        },
    }
}

fn summary(message: &Message<'_>) -> SeenMessage {
    let mut to = addresses(message.to());
    to.extend(addresses(message.cc()));
    SeenMessage {
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
    }
}

fn addresses(list: Option<&Address<'_>>) -> Vec<String> {
    list.map(|list| {
        list.iter()
            .filter_map(|addr| addr.address())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 1x1 PNG, base64, as Django's `EmailMessage.attach` would send it.
    pub(crate) const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    /// A tickets email shaped like Django's: multipart/mixed holding multipart/alternative
    /// (text and HTML, quoted-printable) and a base64 PNG attachment, with an encoded-word
    /// subject.
    pub(crate) fn tickets_email(to: &str, reference: &str) -> String {
        format!(
            "Content-Type: multipart/mixed; boundary=\"===============outer==\"\r\n\
             MIME-Version: 1.0\r\n\
             Subject: =?utf-8?q?Your_tickets_for_Caf=C3=A9_Concert_=28{reference}=29?=\r\n\
             From: AzioneLab <noreply@azionelab.example>\r\n\
             To: {to}\r\n\
             Date: Sat, 22 Nov 2025 10:00:00 -0000\r\n\
             Message-ID: <1@azionelab.example>\r\n\
             \r\n\
             --===============outer==\r\n\
             Content-Type: multipart/alternative; boundary=\"===============inner==\"\r\n\
             MIME-Version: 1.0\r\n\
             \r\n\
             --===============inner==\r\n\
             Content-Type: text/plain; charset=\"utf-8\"\r\n\
             MIME-Version: 1.0\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             \r\n\
             Your QR code: https://azionelab.example/api/bookings/qr/?token=3Dabc_-12\r\n\
             Caf=C3=A9 Concert\r\n\
             --===============inner==\r\n\
             Content-Type: text/html; charset=\"utf-8\"\r\n\
             MIME-Version: 1.0\r\n\
             Content-Transfer-Encoding: 7bit\r\n\
             \r\n\
             <p>Your tickets</p>\r\n\
             --===============inner==--\r\n\
             \r\n\
             --===============outer==\r\n\
             Content-Type: image/png\r\n\
             MIME-Version: 1.0\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"ticket-{reference}.png\"\r\n\
             \r\n\
             {PNG_BASE64}\r\n\
             --===============outer==--\r\n"
        )
    }

    pub(crate) fn png_bytes() -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(PNG_BASE64)
            .unwrap_or_default()
    }

    #[test]
    fn a_django_style_tickets_email_is_parsed_with_its_png() {
        let raw = tickets_email("Visitor <visitor@example.org>", "AB12CD");
        let Some(email) = parse_email("42".to_owned(), raw.as_bytes()) else {
            panic!("the sample did not parse");
        };
        assert_eq!(email.id, "42");
        assert_eq!(email.from, "noreply@azionelab.example");
        assert_eq!(email.to, vec!["visitor@example.org".to_owned()]);
        assert_eq!(email.subject, "Your tickets for Café Concert (AB12CD)");
        assert!(
            email
                .text
                .contains("https://azionelab.example/api/bookings/qr/?token=abc_-12"),
            "{}",
            email.text
        );
        assert!(email.text.contains("Café Concert"));
        assert_eq!(
            email.html.as_deref().map(str::trim),
            Some("<p>Your tickets</p>")
        );
        assert_eq!(email.attachments.len(), 1);
        let png = &email.attachments[0];
        assert_eq!(png.filename, "ticket-AB12CD.png");
        assert_eq!(png.content_type, "image/png");
        assert_eq!(png.bytes, png_bytes());
        assert!(png.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    }

    #[test]
    fn an_html_only_email_has_no_text() {
        let raw = "To: a@b.c\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n";
        let Some(email) = parse_email("1".to_owned(), raw.as_bytes()) else {
            panic!("the sample did not parse");
        };
        assert_eq!(email.text, "");
        assert_eq!(email.html.as_deref().map(str::trim), Some("<p>hi</p>"));
        assert!(email.attachments.is_empty());
    }

    #[test]
    fn a_summary_decodes_the_subject_and_lists_to_and_cc() {
        let seen = parse_summary(
            b"To: A <a@example.org>, b@example.org\r\nCc: c@example.org\r\n\
              Subject: =?utf-8?b?Q29uZmlybSB5b3VyIGJvb2tpbmcg4pyT?=\r\n\r\n",
        );
        assert_eq!(
            seen.to,
            vec!["a@example.org", "b@example.org", "c@example.org"]
        );
        assert_eq!(seen.subject, "Confirm your booking ✓");
    }
}
