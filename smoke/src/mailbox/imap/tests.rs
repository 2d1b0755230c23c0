//! The IMAP client against a real Dovecot on loopback.
//!
//! Each test starts its own `dovecot -F` with a config, a passwd-file and a maildir in a
//! fresh temporary directory, on free loopback ports, and stops it when done. Messages are
//! delivered with IMAP `APPEND` from a second session, as an MTA would drop them in.
//! Without Dovecot (`bash ci/provision-test-tools.sh` installs it) the tests say so and pass,
//! unless `SMOKE_REQUIRE_DOVECOT=1` is set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::mailbox::mime::tests::{png_bytes, tickets_email};
use crate::mailbox::{ImapConfig, MailQuery, Mailbox, MailboxConfig, MailboxError};
use crate::secret::Secret;

const USER: &str = "smoke";
const PASSWORD: &str = "dovecot-test-password-7f3c";

/// A Dovecot serving one user on loopback; stopped and cleaned up on drop.
struct Dovecot {
    child: Child,
    dir: PathBuf,
    imap_port: u16,
    imaps_port: u16,
    /// The CA that signed the server certificate, when TLS is on.
    ca_pem: Option<Vec<u8>>,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its login and auth children; then reap it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("failed to find a free loopback port: {err}"))
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id")
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("failed to run `id {}`: {err}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|err| panic!("failed to run {command:?}: {err}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|err| panic!("failed to write `{}`: {err}", path.display()));
}

/// A CA and a server certificate for `localhost` / `127.0.0.1` signed by it, made with the
/// `openssl` command line. Returns (CA PEM path, certificate path, key path).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.pem");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("server.ext");
    write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    let p = |path: &Path| path.to_string_lossy().into_owned();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
        "-days",
        "2",
        "-subj",
        "/CN=smoke test CA",
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
        "-subj",
        "/CN=localhost",
    ]));
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-out",
        &p(&cert),
        "-days",
        "2",
        "-extfile",
        &p(&ext),
    ]));
    (ca, cert, key)
}

/// Starts Dovecot, or returns `None` (after saying why) when it is not installed.
fn start_dovecot(test: &str, tls: bool) -> Option<Dovecot> {
    let installed = Command::new("dovecot")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        let why = "`dovecot` is not installed (run `bash ci/provision-test-tools.sh`)";
        if std::env::var_os("SMOKE_REQUIRE_DOVECOT").is_some_and(|v| v == "1") {
            panic!("`{test}` needs a real IMAP server: {why}; SMOKE_REQUIRE_DOVECOT=1 is set");
        }
        eprintln!("SKIPPED `{test}`: it needs a real IMAP server and {why}.");
        return None;
    }

    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "smoke-dovecot-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["mail", "home"] {
        std::fs::create_dir_all(dir.join(sub))
            .unwrap_or_else(|err| panic!("failed to create `{}`: {err}", dir.display()));
    }

    // Dovecot refuses to store mail as root: as root the mailbox belongs to `nobody` and the
    // login and auth processes use the package's own users; otherwise everything runs as the
    // current user.
    let root = id(&["-u"]) == "0";
    let (mail_user, login_user, internal_user) = if root {
        (
            "nobody".to_owned(),
            "dovenull".to_owned(),
            "dovecot".to_owned(),
        )
    } else {
        let me = id(&["-un"]);
        (me.clone(), me.clone(), me)
    };
    let uid = id(&["-u", &mail_user]);
    let gid = id(&["-g", &mail_user]);
    if root {
        for sub in ["mail", "home"] {
            let owner = (uid.parse().ok(), gid.parse().ok());
            std::os::unix::fs::chown(dir.join(sub), owner.0, owner.1)
                .unwrap_or_else(|err| panic!("failed to hand `{sub}` to `{mail_user}`: {err}"));
        }
    }

    let imap_port = free_port();
    let imaps_port = if tls { free_port() } else { 0 };
    let (ssl, ca_pem) = if tls {
        let (ca, cert, key) = make_certificates(&dir);
        let ca_pem =
            std::fs::read(&ca).unwrap_or_else(|err| panic!("failed to read the CA: {err}"));
        (
            format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                cert.display(),
                key.display()
            ),
            Some(ca_pem),
        )
    } else {
        ("ssl = no\n".to_owned(), None)
    };
    let d = dir.display();
    write(
        &dir.join("users"),
        &format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
    );
    let config = dir.join("dovecot.conf");
    write(
        &config,
        &format!(
            "protocols = imap\n\
             listen = 127.0.0.1\n\
             base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             {ssl}\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:{d}/mail/%u\n\
             first_valid_uid = 1\n\
             default_login_user = {login_user}\n\
             default_internal_user = {internal_user}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  chroot =\n\
               inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n\
               inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        ),
    );
    let child = Command::new("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("failed to start dovecot: {err}"));
    Some(Dovecot {
        child,
        dir,
        imap_port,
        imaps_port,
        ca_pem,
    })
}

impl Dovecot {
    fn log(&mut self) -> String {
        let mut log = std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default();
        if let Ok(Some(status)) = self.child.try_wait() {
            log.push_str(&format!("\n(dovecot exited: {status})"));
        }
        log
    }

    /// Waits until Dovecot greets on its IMAP port: readiness, not a fixed sleep.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut delay = Duration::from_millis(20);
        loop {
            if let Ok(mut stream) =
                tokio::net::TcpStream::connect(("127.0.0.1", self.imap_port)).await
            {
                let mut greeting = [0u8; 4];
                let read =
                    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut greeting))
                        .await;
                if matches!(read, Ok(Ok(_))) && &greeting == b"* OK" {
                    return;
                }
            }
            if Instant::now() >= deadline || matches!(self.child.try_wait(), Ok(Some(_))) {
                let log = self.log();
                panic!(
                    "dovecot did not greet on 127.0.0.1:{}; its log:\n{log}",
                    self.imap_port
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    fn config(&self, tls: bool, folder: &str) -> ImapConfig {
        ImapConfig {
            host: "127.0.0.1".to_owned(),
            port: if tls { self.imaps_port } else { self.imap_port },
            tls,
            username: USER.to_owned(),
            password: Secret::new(PASSWORD),
            folder: folder.to_owned(),
            ca_cert_pem: if tls { self.ca_pem.clone() } else { None },
        }
    }

    /// Drops a message into the user's INBOX, as delivery would.
    async fn deliver(&self, raw: &str) {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .unwrap_or_else(|err| panic!("failed to connect to deliver: {err}"));
        let mut client = async_imap::Client::new(tcp);
        let _ = client.read_response().await;
        let mut session = client
            .login(USER, PASSWORD)
            .await
            .unwrap_or_else(|(err, _)| panic!("failed to log in to deliver: {err}"));
        session
            .append(
                "INBOX",
                None,
                None,
                raw.replace("\r\n", "\n").replace('\n', "\r\n"),
            )
            .await
            .unwrap_or_else(|err| panic!("failed to APPEND: {err}"));
        let _ = session.logout().await;
    }
}

fn confirmation(to: &str, reference: &str) -> String {
    format!(
        "From: AzioneLab <noreply@azionelab.example>\r\nTo: {to}\r\n\
         Subject: Confirm your booking {reference}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\r\n\
         https://azionelab.example/confirm/?token=tok-{reference}\r\n"
    )
}

fn query(to: &str, subject: &str) -> MailQuery {
    MailQuery {
        to: to.to_owned(),
        subject_contains: subject.to_owned(),
    }
}

async fn open(config: ImapConfig) -> Mailbox {
    Mailbox::open(&MailboxConfig::Imap(config))
        .await
        .unwrap_or_else(|err| panic!("failed to open the IMAP mailbox: {err}"))
}

#[tokio::test]
async fn imap_wait_for_returns_the_email_with_its_png_as_soon_as_it_lands() {
    let Some(mut dovecot) = start_dovecot(
        "imap_wait_for_returns_the_email_with_its_png_as_soon_as_it_lands",
        false,
    ) else {
        return;
    };
    dovecot.ready().await;
    // Parsed from a URL, as the runner does.
    let url = format!("imap://{USER}@127.0.0.1:{}/INBOX", dovecot.imap_port);
    let config = MailboxConfig::parse(&url, Some(Secret::new(PASSWORD)))
        .unwrap_or_else(|err| panic!("{err}"));
    let mailbox = Mailbox::open(&config)
        .await
        .unwrap_or_else(|err| panic!("failed to open the IMAP mailbox: {err}"));

    dovecot
        .deliver(&confirmation("visitor@example.org", "AB12CD"))
        .await;
    // Same subject, an address that merely contains the wanted one: IMAP `TO` finds it, the
    // client-side check must not.
    dovecot
        .deliver(&tickets_email("xvisitor@example.org", "AB12CD"))
        .await;

    let arrives_after = Duration::from_millis(700);
    let started = Instant::now();
    let wanted = query("Visitor@Example.org", "your tickets for");
    let (email, ()) = tokio::join!(mailbox.wait_for(&wanted, Duration::from_secs(20)), async {
        tokio::time::sleep(arrives_after).await;
        dovecot
            .deliver(&tickets_email("Visitor <visitor@example.org>", "AB12CD"))
            .await;
    });
    let waited = started.elapsed();
    let email = email.unwrap_or_else(|err| panic!("the email was not found: {err}"));
    assert!(
        waited >= arrives_after,
        "returned before the email existed: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "took {waited:?} to notice the email"
    );

    assert_eq!(email.to, vec!["visitor@example.org".to_owned()]);
    assert_eq!(email.from, "noreply@azionelab.example");
    assert_eq!(email.subject, "Your tickets for Café Concert (AB12CD)");
    assert!(
        email.text.contains("/api/bookings/qr/?token=abc_-12"),
        "{}",
        email.text
    );
    assert_eq!(email.attachments.len(), 1);
    assert_eq!(email.attachments[0].filename, "ticket-AB12CD.png");
    assert_eq!(email.attachments[0].content_type, "image/png");
    assert_eq!(email.attachments[0].bytes, png_bytes());

    let tickets = query("visitor@example.org", "Your tickets");
    assert_eq!(mailbox.count(&tickets).await.ok(), Some(1));
    let confirm = query("visitor@example.org", "confirm your booking ab12cd");
    assert_eq!(mailbox.count(&confirm).await.ok(), Some(1));
    // Reading must not mark a person's mail as read (EXAMINE and BODY.PEEK).
    let seen_flags = unseen_count(&dovecot).await;
    assert_eq!(seen_flags, 3, "messages were marked as read");
}

/// How many messages in INBOX are still unread.
async fn unseen_count(dovecot: &Dovecot) -> usize {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", dovecot.imap_port))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let mut client = async_imap::Client::new(tcp);
    let _ = client.read_response().await;
    let mut session = client
        .login(USER, PASSWORD)
        .await
        .unwrap_or_else(|(err, _)| panic!("{err}"));
    let _ = session.examine("INBOX").await;
    let unseen = session
        .search("UNSEEN")
        .await
        .map(|ids| ids.len())
        .unwrap_or_default();
    let _ = session.logout().await;
    unseen
}

#[tokio::test]
async fn imap_never_arrived_lists_the_newest_messages() {
    let Some(mut dovecot) = start_dovecot("imap_never_arrived_lists_the_newest_messages", false)
    else {
        return;
    };
    dovecot.ready().await;
    let mailbox = open(dovecot.config(false, "INBOX")).await;
    for n in 1..=6 {
        dovecot
            .deliver(&confirmation("someone@example.org", &format!("REF{n}")))
            .await;
    }
    dovecot
        .deliver(&tickets_email("webmaster@localhost", "AB12CD"))
        .await;

    let started = Instant::now();
    let result = mailbox
        .wait_for(
            &query("visitor@example.org", "Your tickets"),
            Duration::from_millis(800),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "overran: {:?}",
        started.elapsed()
    );
    let err = match result {
        Err(err @ MailboxError::NeverArrived { .. }) => err,
        other => panic!("expected NeverArrived, got {other:?}"),
    };
    let text = err.to_string();
    assert!(
        text.contains("the mailbox holds 7 messages, the last 5:"),
        "{text}"
    );
    assert!(
        text.contains("- `Confirm your booking REF3` to `someone@example.org`"),
        "{text}"
    );
    assert!(!text.contains("REF2"), "{text}");
    assert!(
        text.contains("- `Your tickets for Café Concert (AB12CD)` to `webmaster@localhost`"),
        "{text}"
    );
    assert!(text.contains("went to another address"), "{text}");
}

#[tokio::test]
async fn imap_a_wrong_password_is_an_auth_error_that_never_shows_it() {
    let Some(mut dovecot) = start_dovecot(
        "imap_a_wrong_password_is_an_auth_error_that_never_shows_it",
        false,
    ) else {
        return;
    };
    dovecot.ready().await;
    let mut config = dovecot.config(false, "INBOX");
    config.password = Secret::new("wrong-password-9d2e");
    match Mailbox::open(&MailboxConfig::Imap(config)).await {
        Err(err @ MailboxError::Auth { .. }) => {
            let text = err.to_string();
            assert!(
                text.starts_with(&format!(
                    "failed to log in to `imap://smoke@127.0.0.1:{}/INBOX` as `smoke`",
                    dovecot.imap_port
                )),
                "{text}"
            );
            assert!(
                text.ends_with("(check the username and the password)"),
                "{text}"
            );
            assert!(!text.contains("wrong-password"), "{text}");
            assert!(!format!("{err:?}").contains("wrong-password"), "{err:?}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
}

#[tokio::test]
async fn imap_an_unknown_folder_is_named() {
    let Some(mut dovecot) = start_dovecot("imap_an_unknown_folder_is_named", false) else {
        return;
    };
    dovecot.ready().await;
    match Mailbox::open(&MailboxConfig::Imap(dovecot.config(false, "Smoke Runs"))).await {
        Err(err @ MailboxError::Protocol { .. }) => {
            assert!(
                err.to_string()
                    .contains("failed to open the folder `Smoke Runs`"),
                "{err}"
            );
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
}

#[tokio::test]
async fn imaps_trusts_the_given_ca_and_refuses_an_unknown_one() {
    let Some(mut dovecot) =
        start_dovecot("imaps_trusts_the_given_ca_and_refuses_an_unknown_one", true)
    else {
        return;
    };
    dovecot.ready().await;
    dovecot
        .deliver(&tickets_email("visitor@example.org", "TLS001"))
        .await;

    let mailbox = open(dovecot.config(true, "INBOX")).await;
    let email = mailbox
        .wait_for(
            &query("visitor@example.org", "TLS001"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        email.attachments.first().map(|a| a.bytes.clone()),
        Some(png_bytes())
    );

    let mut untrusted = dovecot.config(true, "INBOX");
    untrusted.ca_cert_pem = None;
    match Mailbox::open(&MailboxConfig::Imap(untrusted)).await {
        Err(err @ MailboxError::Tls { .. }) => {
            let text = err.to_string();
            assert!(text.contains("the TLS handshake failed"), "{text}");
            assert!(text.contains("UnknownIssuer"), "{text}");
        }
        other => panic!("expected Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn cleartext_imap_to_a_remote_host_is_refused_before_connecting() {
    let config = MailboxConfig::parse(
        "imap://smoke@mail.example.org/INBOX",
        Some(Secret::new(PASSWORD)),
    )
    .unwrap_or_else(|err| panic!("{err}"));
    match Mailbox::open(&config).await {
        Err(err @ MailboxError::Insecure { .. }) => assert_eq!(
            err.to_string(),
            "refusing to send the password for `imap://smoke@mail.example.org:143/INBOX` over \
             cleartext IMAP (use `imaps://`; `imap://` is only for a test server on a loopback \
             address)"
        ),
        other => panic!("expected Insecure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_imap_port_is_unreachable() {
    let port = free_port();
    let config = ImapConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: false,
        username: USER.to_owned(),
        password: Secret::new(PASSWORD),
        folder: "INBOX".to_owned(),
        ca_cert_pem: None,
    };
    match Mailbox::open(&MailboxConfig::Imap(config)).await {
        Err(err @ MailboxError::Unreachable { .. }) => assert!(
            err.to_string().starts_with(&format!(
                "failed to reach the mailbox at `imap://smoke@127.0.0.1:{port}/INBOX`"
            )),
            "{err}"
        ),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn imap_a_poll_cut_short_does_not_break_the_next_one() {
    let Some(mut dovecot) =
        start_dovecot("imap_a_poll_cut_short_does_not_break_the_next_one", false)
    else {
        return;
    };
    dovecot.ready().await;
    dovecot
        .deliver(&confirmation("visitor@example.org", "CUT001"))
        .await;
    let mailbox = open(dovecot.config(false, "INBOX")).await;
    let wanted = query("visitor@example.org", "CUT001");
    // Cancel polls at various points of their command exchange; each may leave a half-read
    // response on the connection, which must be dropped rather than reused.
    for micros in [1, 50, 200, 1_000, 3_000] {
        let _ = tokio::time::timeout(Duration::from_micros(micros), mailbox.count(&wanted)).await;
        assert_eq!(
            mailbox.count(&wanted).await.ok(),
            Some(1),
            "after a poll cut at {micros} µs"
        );
    }
}
