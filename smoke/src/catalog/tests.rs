//! The checks file: what each table becomes, and what a mistake says.

use std::path::Path;

use super::*;
use crate::check::{Action, Auth, Expect, Placeholder, Step, Template};
use rstest::rstest;

fn parse_str(text: &str) -> Result<Suite, ChecksFileError> {
    parse(text, Path::new("checks.toml"))
}

#[test]
fn a_route_becomes_a_routing_check_with_its_expectations() {
    let suite = parse_str(
        r#"
        version = 1
        name = "s"
        backend_marker = { header = "X-Served-By", value = "app" }
        [[routes]]
        name = "old_blog_moved"
        path = "/blog/"
        redirect = "https://blog.example/"
        backend = false
        "#,
    )
    .unwrap();
    let step = &suite.checks[0];
    assert_eq!(step.name, "routing.old_blog_moved");
    let Action::Http(http) = &step.action else {
        panic!("not http")
    };
    assert!(!http.request.follow_redirects);
    assert_eq!(
        http.expects,
        vec![
            Expect::Status(vec![301]),
            Expect::HeaderAbsent("X-Served-By".into()),
            Expect::RedirectTo(Template::new("https://blog.example/")),
        ]
    );
    assert_eq!(suite.readiness.path, "/");
}

const HOSTS: &str = r#"
    version = 1
    name = "multienv"
    placeholder = { contains = "Deployment in progress" }
    [[hosts]]
    name = "staging"
    host = "Staging.Multienv.test"
    basic_auth = { user_env = "SMOKE_STAGING_USER", password_env = "SMOKE_STAGING_PASSWORD" }
    health = { path = "/api/v1/system/status/", json = { "/status" = "ok" } }
    [[hosts.pages]]
    name = "home"
    path = "/"
    [[hosts]]
    name = "prod"
    host = "prod.multienv.test"
    health = { path = "/api/v1/system/status/" }
    rate_limit = { path = "/api/ping/", burst = 30 }
    [[hosts.websockets]]
    name = "echo"
    path = "/ws/echo/"
    expect_contains = "ping"
"#;

#[test]
fn hosts_prefix_their_checks_and_carry_their_settings() {
    let suite = parse_str(HOSTS).unwrap();
    let names: Vec<&str> = suite.steps().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "staging.health.ok",
            "staging.auth.required",
            "staging.health.not_in_maintenance",
            "staging.pages.home",
            "prod.health.ok",
            "prod.health.not_in_maintenance",
            "prod.websocket.echo",
            "prod.rate_limit.normal_traffic_passes",
            "prod.rate_limit.enforced",
        ]
    );
    for step in suite.steps() {
        let host = step.name.split('.').next().unwrap();
        assert_eq!(step.host(), Some(host), "{}", step.name);
        assert_eq!(step.name.split('.').nth(1), Some(step.category.as_str()));
    }
    let staging = &suite.hosts[0];
    assert_eq!(staging.host, "staging.multienv.test");
    assert_eq!(
        staging.basic_auth.as_ref().unwrap().password_env,
        "SMOKE_STAGING_PASSWORD"
    );
    // Hosts inherit the top-level placeholder, with its default status.
    assert_eq!(
        suite.hosts[1].placeholder,
        Some(Placeholder {
            status: 503,
            contains: "Deployment in progress".into()
        })
    );
    // Readiness asks the first host without basic auth.
    assert_eq!(suite.readiness.host.as_deref(), Some("prod"));
    assert_eq!(suite.readiness.path, "/api/v1/system/status/");
}

#[test]
fn the_auth_check_sends_no_credentials_and_wants_a_basic_challenge() {
    let suite = parse_str(HOSTS).unwrap();
    let step = suite
        .steps()
        .find(|s| s.name == "staging.auth.required")
        .unwrap();
    assert!(!step.sends_credentials());
    let Action::Http(http) = &step.action else {
        panic!("not http")
    };
    assert_eq!(http.request.auth, Auth::Anonymous);
    assert!(http.expects.contains(&Expect::HeaderStartsWith {
        name: "WWW-Authenticate".into(),
        prefix: "Basic".into()
    }));
}

#[rstest]
#[case(r#"Basic realm="staging""#, true)]
#[case("basic realm=x", true)]
#[case("Bearer", false)]
fn basic_challenge_expectation(#[case] value: &str, #[case] ok: bool) {
    let expect = Expect::HeaderStartsWith {
        name: "WWW-Authenticate".into(),
        prefix: "Basic".into(),
    };
    let response = crate::check::Response::for_test(401, &[("WWW-Authenticate", value)], b"");
    assert_eq!(expect.check(&response, &Default::default()).is_ok(), ok);
}

#[rstest]
#[case(503, "<h1>Deployment in progress</h1>", true)]
#[case(503, "upstream down", false)]
#[case(200, "Deployment in progress", false)]
fn placeholder_matches_status_and_text(
    #[case] status: u16,
    #[case] body: &str,
    #[case] matches: bool,
) {
    let placeholder = Placeholder {
        status: 503,
        contains: "Deployment in progress".into(),
    };
    let response = crate::check::Response::for_test(status, &[], body.as_bytes());
    assert_eq!(placeholder.matches(&response), matches);
}

#[rstest]
#[case(
    "version = 1\nname = \"s\"\n[[pages]]\nname = \"home\"\npath = \"/\"\ncolour = \"red\"",
    "unknown field `colour`"
)]
#[case("version = 2\nname = \"s\"", "unsupported `version = 2`")]
#[case(
    "version = 1\nname = \"s\"\n[[pages]]\nname = \"Home\"\npath = \"/\"",
    "must be lowercase"
)]
#[case(
    "version = 1\nname = \"s\"\n[[routes]]\nname = \"x\"\npath = \"x\"",
    "must start with `/`"
)]
#[case(
    "version = 1\nname = \"s\"\n[[routes]]\nname = \"x\"\npath = \"/\"\nbackend = true",
    "needs a `[backend_marker]`"
)]
#[case(
    "version = 1\nname = \"s\"\n[[routes]]\nname = \"x\"\npath = \"/\"\n[[routes]]\nname = \"x\"\npath = \"/a\"",
    "used twice"
)]
#[case("version = [", "failed to parse")]
#[case(
    "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"https://a.test/\"",
    "must be a host name"
)]
#[case(
    "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"a.test\"\n[[hosts]]\nname = \"a\"\nhost = \"b.test\"",
    "`[[hosts]]` #2 (`a`): the name is used twice"
)]
#[case(
    "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"a.test\"\nbasic_auth = { user_env = \"u\", password_env = \"P\" }",
    "`[[hosts]]` `a`: `[basic_auth]`: the variable name `u` must be uppercase"
)]
#[case(
    "version = 1\nname = \"s\"\n[rate_limit]\npath = \"/p/\"\nburst = 1",
    "`burst = 1` must be between 2 and 1000"
)]
#[case(
    "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"a.test\"\n[hosts.rate_limit]\npath = \"/p/\"\nburst = 5\nrate = 3",
    "unknown field `rate`"
)]
#[case(
    "version = 1\nname = \"s\"\n[[websockets]]\nname = \"e\"\npath = \"/ws/\"\nexpect_contains = \"\"",
    "`expect_contains` is empty"
)]
#[case(
    "version = 1\nname = \"s\"\n[placeholder]\nstatus = 503",
    "missing field `contains`"
)]
fn invalid_files_say_what_is_wrong(#[case] text: &str, #[case] expected: &str) {
    let error = parse_str(text).unwrap_err().to_string();
    assert!(error.contains(expected), "{error}");
    assert!(error.contains("`checks.toml`"), "{error}");
}

const FLOW: &str = r#"
version = 1
name = "signup"

[values]
email = "smoke+{{run_id}}@example.test"

[credentials.editor]
basic = { user = "{{env.EDITOR_USER}}", password = "{{secret.EDITOR_PASSWORD}}" }

[[checks]]
name = "accounts.unknown_404"
request = { path = "/api/accounts/smoke-{{run_id}}/" }
expect = { status = 404, content_type = "application/json" }

[[scenarios]]
name = "signup"

[[scenarios.steps]]
name = "accounts.form"
proves = "the sign-up form is served with a CSRF token"
request = { path = "/accounts/signup/" }
expect = { contains = ["<form"] }
capture = { csrf = { regex = 'name="csrfmiddlewaretoken" value="([^"]+)"' }, cookie = { cookie = "csrftoken" } }

[[scenarios.steps]]
name = "accounts.signup"
request = { path = "/accounts/signup/", form = { csrfmiddlewaretoken = "{{csrf}}", email = "{{email}}" } }
expect = { status = [302, 303] }
undo = { method = "DELETE", path = "/api/accounts/{{email}}/", auth = "staff" }

[[scenarios.steps]]
name = "accounts.email"
email = { to = "{{email}}", subject_contains = "Verify", capture = { link = { text = '(https?://\S+/verify/\S+)' } } }

[[scenarios.steps]]
name = "accounts.link_on_site"
assert = { value = "{{link}}", starts_with = "{{site_url}}/verify/" }

[[scenarios.steps]]
name = "accounts.verify"
request = { url = "{{link}}", auth = "editor" }
expect = { status = "2xx" }
after = ["accounts.link_on_site"]

[[scenarios.steps]]
name = "accounts.cleanup"
cleanup = true
"#;

#[test]
fn a_scenario_becomes_ordered_steps_with_their_kinds() {
    let suite = parse_str(FLOW).unwrap();
    let names: Vec<&str> = suite.steps().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "accounts.unknown_404",
            "accounts.form",
            "accounts.signup",
            "accounts.email",
            "accounts.link_on_site",
            "accounts.verify",
            "accounts.cleanup"
        ]
    );
    assert_eq!(suite.categories(), ["accounts"]);
    let steps: Vec<&Step> = suite.scenarios[0].steps.iter().collect();
    let Action::Http(signup) = &steps[1].action else {
        panic!("not http")
    };
    assert_eq!(signup.request.method, "POST", "a body makes a POST");
    assert!(signup.undo.as_ref().unwrap().credential() == Some("staff"));
    assert_eq!(signup.expects[0], Expect::Status(vec![302, 303]));
    assert!(matches!(steps[2].action, Action::Email(_)));
    assert!(matches!(steps[3].action, Action::Assert(_)));
    let Action::Http(verify) = &steps[4].action else {
        panic!("not http")
    };
    assert!(verify.request.absolute);
    assert_eq!(verify.expects[0], Expect::Status((200..300).collect()));
    assert_eq!(
        verify.request.credential(),
        Some("editor"),
        "named credentials"
    );
    assert!(
        steps[4]
            .reads()
            .contains(&"secret.EDITOR_PASSWORD".to_owned()),
        "credentials' variables are read by the step, so a missing one skips it"
    );
    assert!(matches!(steps[5].action, Action::Cleanup));
    assert_eq!(suite.values[0].0, "email");
}

#[rstest]
#[case(
    FLOW.replace("{{link}}\", starts_with", "{{lnik}}\", starts_with"),
    "`accounts.link_on_site` reads `{{lnik}}`, which no earlier step captures and no value defines (did you mean `link`?)"
)]
#[case(
    FLOW.replace("auth = \"editor\"", "auth = \"editr\""),
    "`auth = \"editr\"` names no `[credentials.editr]` (did you mean `editor`?)"
)]
#[case(
    FLOW.replace("cleanup = true", "cleanup = true\nrequest = { path = \"/\" }"),
    "gives `request` and `cleanup`: a step does one thing"
)]
#[case(
    FLOW.replace("expect = { contains", "expect = { contain"),
    "did you mean `contains`?"
)]
#[case(
    FLOW.replace("after = [\"accounts.link_on_site\"]", "after = [\"accounts.cleanup\"]"),
    "`after` names `accounts.cleanup`, which is not an earlier step"
)]
#[case(
    FLOW.replace("name = \"accounts.verify\"", "name = \"verify\""),
    "line 41 (`verify`): the name `verify` must be `category.name`"
)]
#[case(
    FLOW.replace("form = { csrfmiddlewaretoken = \"{{csrf}}\", email = \"{{email}}\" }", "multipart = { avatar = { file = \"no-such.png\" } }"),
    "failed to read"
)]
#[case(
    FLOW.replace("status = \"2xx\"", "status = \"2xy\""),
    "is not a status class"
)]
fn scenario_mistakes_name_the_step_and_suggest(#[case] text: String, #[case] expected: &str) {
    let error = parse_str(&text).unwrap_err().to_string();
    assert!(error.contains(expected), "{error}");
}

#[test]
fn the_json_schema_describes_steps_and_rejects_unknown_keys() {
    let schema = json_schema();
    let text = schema.to_string();
    assert!(text.contains("\"scenarios\""), "{text}");
    assert!(text.contains("\"additionalProperties\":false"), "{text}");
    assert!(
        text.contains("undoes what this one created"),
        "doc comments become descriptions"
    );
}
