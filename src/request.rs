//! Request -> hook parsing and authorization, free of hyper and I/O so that
//! it can be fuzzed and unit-tested on its own. `http.rs` feeds it.

use std::net::IpAddr;

use crate::config::{Route, Source};
use crate::core::names::valid_name;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Status,
    /// Index into the routes.
    Hook(usize),
    /// `POST /api/heartbeat` (issue 11).
    Heartbeat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    NotFound,
    MethodNotAllowed(&'static str),
    BadRequest(String),
    UnsupportedMediaType,
    /// No or unknown token while sources are configured.
    Unauthorized,
    /// A valid token for a source that may not post to this route.
    Forbidden(String),
}

impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            RequestError::NotFound => 404,
            RequestError::MethodNotAllowed(_) => 405,
            RequestError::BadRequest(_) => 400,
            RequestError::UnsupportedMediaType => 415,
            RequestError::Unauthorized => 401,
            RequestError::Forbidden(_) => 403,
        }
    }

    pub fn message(&self) -> String {
        match self {
            RequestError::NotFound => "no such route".into(),
            RequestError::MethodNotAllowed(allow) => format!("method not allowed; use {allow}"),
            RequestError::BadRequest(m) => m.clone(),
            RequestError::UnsupportedMediaType => {
                "send the body as application/x-www-form-urlencoded (curl -d does)".into()
            }
            RequestError::Unauthorized => {
                "a token is required: send Authorization: Bearer TOKEN (or ?token=TOKEN)".into()
            }
            RequestError::Forbidden(source) => {
                format!("source \"{source}\" may not post to this route")
            }
        }
    }
}

/// Finds what a method and path address.
pub fn parse_target(method: &str, path: &str, routes: &[Route]) -> Result<Target, RequestError> {
    if path == "/api/status" {
        return match method {
            "GET" | "HEAD" => Ok(Target::Status),
            _ => Err(RequestError::MethodNotAllowed("GET")),
        };
    }
    if path == "/api/heartbeat" {
        return match method {
            "POST" => Ok(Target::Heartbeat),
            _ => Err(RequestError::MethodNotAllowed("POST")),
        };
    }
    let name = path.strip_prefix('/').unwrap_or("");
    let index = if name.contains('/') {
        None
    } else {
        routes.iter().position(|r| r.name == name)
    };
    let index = index.ok_or(RequestError::NotFound)?;
    match method {
        "GET" | "POST" => Ok(Target::Hook(index)),
        _ => Err(RequestError::MethodNotAllowed("GET, POST")),
    }
}

/// The hook parameters from a query string and/or form body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookParams {
    pub jail: Option<String>,
    pub ip: Option<String>,
    pub source: Option<String>,
    pub failures: Option<u32>,
    /// When the ban happened (unix seconds), for bans delivered late from a
    /// server's spool; see [`event_time_ms`].
    pub time: Option<u64>,
    pub token: Option<String>,
    /// The sender's event id (issue 12): the same id over HTTP and MQTT,
    /// or replayed, counts once.
    pub id: Option<String>,
}

fn shown(v: &str, max: usize) -> String {
    v.chars().take(max).flat_map(char::escape_default).collect()
}

/// Parses `jail`, `ip`, `source`, `failures`, `time` and `token`; other keys are ignored.
pub fn parse_params(input: &[u8], into: &mut HookParams) -> Result<(), RequestError> {
    let bad = |m: String| RequestError::BadRequest(m);
    for (k, v) in form_urlencoded::parse(input) {
        let v = v.trim();
        match k.as_ref() {
            "jail" | "source" => {
                if !valid_name(v) {
                    return Err(bad(format!(
                        "invalid {k} \"{}\": use 1-64 letters, digits or . _ - : @",
                        shown(v, 64)
                    )));
                }
                let slot = if k == "jail" {
                    &mut into.jail
                } else {
                    &mut into.source
                };
                *slot = Some(v.to_string());
            }
            "ip" => {
                let ip: IpAddr = v
                    .parse()
                    .map_err(|_| bad(format!("invalid ip \"{}\"", shown(v, 64))))?;
                // Canonical form, so dedupe sees ::1 and 0:0::1 as one address,
                // and ::ffff:a.b.c.d (an IPv4 client of a dual-stack server) as
                // the a.b.c.d it is.
                into.ip = Some(ip.to_canonical().to_string());
            }
            "failures" => {
                into.failures = Some(
                    v.parse()
                        .map_err(|_| bad(format!("invalid failures \"{}\"", shown(v, 20))))?,
                );
            }
            "time" => {
                // Whole unix seconds, as `date +%s` prints them.
                into.time = Some(
                    v.parse()
                        .ok()
                        .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            bad(format!(
                                "invalid time \"{}\": use unix seconds",
                                shown(v, 20)
                            ))
                        })?,
                );
            }
            "token" => into.token = Some(v.to_string()),
            "id" => {
                if !crate::core::mqtt::valid_event_id(v) {
                    return Err(bad(format!(
                        "invalid id \"{}\": use 1-128 printable characters without spaces",
                        shown(v, 64)
                    )));
                }
                into.id = Some(v.to_string());
            }
            _ => {}
        }
    }
    Ok(())
}

/// How old a sent `time` may be: older bans (a spool kept through a month
/// of outage) are stored at their arrival time instead.
pub const TIME_AGE_MAX_MS: u64 = 30 * 24 * 3_600_000;

/// The time an event is stored with: the ban's own `time` (unix seconds) when
/// it is plausible against the appliance's clock (not in the future, at most
/// [`TIME_AGE_MAX_MS`] old), else the arrival time. An implausible time is
/// clamped, not refused: a Pi has no RTC and may run behind after a reboot
/// (exactly when servers deliver their spools), and a ban must not be lost
/// over a clock disagreement; clamping still keeps a wrong sender clock from
/// putting events in the future or far in the past.
pub fn event_time_ms(sent_s: Option<u64>, now_ms: u64) -> u64 {
    match sent_s.and_then(|s| s.checked_mul(1000)) {
        Some(t) if t <= now_ms && now_ms - t <= TIME_AGE_MAX_MS => t,
        _ => now_ms,
    }
}

/// Everything about a hook request that matters, gathered from the wire.
#[derive(Debug, Default, Clone)]
pub struct HookInput<'a> {
    pub query: Option<&'a str>,
    pub authorization: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub body: &'a [u8],
}

pub fn parse_hook(input: &HookInput) -> Result<HookParams, RequestError> {
    let mut params = HookParams::default();
    if let Some(q) = input.query {
        parse_params(q.as_bytes(), &mut params)?;
    }
    if !input.body.is_empty() {
        let is_form = input
            .content_type
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
            .is_some_and(|v| v.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(RequestError::UnsupportedMediaType);
        }
        parse_params(input.body, &mut params)?;
    }
    if let Some(auth) = input.authorization {
        let auth = std::str::from_utf8(auth)
            .map_err(|_| RequestError::Unauthorized)?
            .trim();
        let (scheme, token) = auth.split_once(' ').ok_or(RequestError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(RequestError::Unauthorized);
        }
        params.token = Some(token.trim().to_string());
    }
    Ok(params)
}

/// The token a request carries, from `Authorization: Bearer` or `?token=`,
/// without judging the rest of the request.
pub fn token_of(authorization: Option<&[u8]>, query: Option<&str>) -> Option<String> {
    if let Some(auth) = authorization.and_then(|a| std::str::from_utf8(a).ok()) {
        if let Some((scheme, token)) = auth.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim().to_string());
            }
        }
    }
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
}

/// Does `token` belong to a configured source? (Constant time per source.)
pub fn is_known_token(token: &str, sources: &[Source]) -> bool {
    sources.iter().fold(false, |found, s| {
        found | constant_time_eq(token.as_bytes(), s.token.as_bytes())
    })
}

/// Equal bytes, in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xFF);
        diff |= x ^ y;
    }
    // Keep the compiler from short-circuiting the loop.
    std::hint::black_box(diff) == 0
}

/// With no sources configured, everyone may post (as the prototype allowed)
/// and `source` comes from the request. Otherwise the token must match a
/// source allowed on the route, and names the event's source.
pub fn authorize(
    token: Option<&str>,
    sources: &[Source],
    route: &str,
) -> Result<Option<String>, RequestError> {
    if sources.is_empty() {
        return Ok(None);
    }
    let token = token.ok_or(RequestError::Unauthorized)?;
    // Compare against every source, so timing does not say which one matched.
    let mut found: Option<&Source> = None;
    for s in sources {
        if constant_time_eq(token.as_bytes(), s.token.as_bytes()) && found.is_none() {
            found = Some(s);
        }
    }
    let source = found.ok_or(RequestError::Unauthorized)?;
    match &source.routes {
        Some(allowed) if !allowed.iter().any(|r| r == route) => {
            Err(RequestError::Forbidden(source.name.clone()))
        }
        _ => Ok(Some(source.name.clone())),
    }
}

/// One fuzz case: `data` is split on 0xFF bytes into method, path, query,
/// Authorization, Content-Type and body. Panics only if an invariant breaks.
/// Shared by the cargo-fuzz target and the regression test over kept inputs.
pub fn fuzz_one(data: &[u8]) {
    use std::sync::OnceLock;
    static FIXTURE: OnceLock<(Vec<Route>, Vec<Source>)> = OnceLock::new();
    let (routes, sources) = FIXTURE.get_or_init(|| {
        let config = crate::config::Config::defaults();
        let sources = vec![
            Source {
                name: "web-1".into(),
                token: "web1-token-0123456789".into(),
                routes: Some(vec!["blue".into()]),
                heartbeat: None,
            },
            Source {
                name: "ssh-1".into(),
                token: "ssh1-token-0123456789".into(),
                routes: None,
                heartbeat: None,
            },
        ];
        (config.routes, sources)
    });
    let mut parts = data.split(|b| *b == 0xFF);
    let mut next = || parts.next().unwrap_or(&[]);
    let (method, path, query, auth, ctype, body) = (next(), next(), next(), next(), next(), next());
    let method = String::from_utf8_lossy(method);
    let path = String::from_utf8_lossy(path);
    let query = std::str::from_utf8(query).ok().filter(|q| !q.is_empty());
    let target = parse_target(&method, &path, routes);
    if let Ok(Target::Hook(i)) = target {
        assert!(i < routes.len());
        assert!(method == "GET" || method == "POST");
        assert_eq!(path, format!("/{}", routes[i].name));
    }
    let input = HookInput {
        query,
        authorization: (!auth.is_empty()).then_some(auth),
        content_type: (!ctype.is_empty()).then_some(ctype),
        body,
    };
    match parse_hook(&input) {
        Ok(params) => {
            if let Some(ip) = &params.ip {
                let parsed: IpAddr = ip.parse().expect("ip is canonical");
                assert_eq!(&parsed.to_string(), ip);
            }
            for name in [&params.jail, &params.source].into_iter().flatten() {
                assert!(valid_name(name), "{name:?}");
            }
            for route in routes {
                let r = authorize(params.token.as_deref(), sources, &route.name);
                if let Ok(who) = &r {
                    assert!(who.is_some(), "with sources configured, success names one");
                }
            }
        }
        Err(e) => {
            assert!((400..500).contains(&e.status()));
            assert!(!e.message().is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn routes() -> Vec<Route> {
        Config::defaults().routes
    }

    fn source(name: &str, token: &str, routes: Option<&[&str]>) -> Source {
        Source {
            name: name.into(),
            token: token.into(),
            routes: routes.map(|r| r.iter().map(|s| s.to_string()).collect()),
            heartbeat: None,
        }
    }

    #[test]
    fn targets() {
        let r = routes();
        assert_eq!(parse_target("GET", "/red", &r), Ok(Target::Hook(0)));
        assert_eq!(parse_target("POST", "/green", &r), Ok(Target::Hook(3)));
        assert_eq!(parse_target("GET", "/api/status", &r), Ok(Target::Status));
        assert_eq!(
            parse_target("POST", "/api/status", &r),
            Err(RequestError::MethodNotAllowed("GET"))
        );
        assert_eq!(
            parse_target("PUT", "/red", &r),
            Err(RequestError::MethodNotAllowed("GET, POST"))
        );
        for p in [
            "/",
            "",
            "/red/",
            "/red/x",
            "/api",
            "/favicon.ico",
            "red",
            "/RED",
        ] {
            assert_eq!(
                parse_target("GET", p, &r),
                Err(RequestError::NotFound),
                "{p}"
            );
        }
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_address() {
        for (given, stored) in [
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("::FFFF:cb00:7109", "203.0.113.9"),
            ("0:0:0:0:0:ffff:203.0.113.9", "203.0.113.9"),
            ("203.0.113.9", "203.0.113.9"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            let query = format!("ip={given}");
            let p = parse_hook(&HookInput {
                query: Some(&query),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(p.ip.as_deref(), Some(stored), "{given}");
        }
    }

    #[test]
    fn params_from_query_and_form() {
        let p = parse_hook(&HookInput {
            query: Some("jail=sshd&ip=2001:db8:0::1&failures=0&unknown=1"),
            content_type: Some(b"application/x-www-form-urlencoded; charset=utf-8"),
            body: b"source=web-1&ip=203.0.113.9",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.jail.as_deref(), Some("sshd"));
        assert_eq!(p.ip.as_deref(), Some("203.0.113.9"), "the body wins");
        assert_eq!(p.source.as_deref(), Some("web-1"));
        assert_eq!(p.failures, Some(0));
    }

    #[test]
    fn time_is_unix_seconds() {
        let p = parse_hook(&HookInput {
            query: Some("ip=203.0.113.9&time=1763800000"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.time, Some(1_763_800_000));
        for bad in [
            "",
            "-5",
            "%2B5",
            "1.5",
            "1e9",
            "0x10",
            "99999999999999999999",
        ] {
            match parse_hook(&HookInput {
                query: Some(&format!("time={bad}")),
                ..Default::default()
            }) {
                Err(RequestError::BadRequest(m)) => assert!(m.contains("time"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn event_time_is_the_sent_time_only_when_plausible() {
        let now = 1_763_800_000_000;
        assert_eq!(event_time_ms(None, now), now);
        assert_eq!(event_time_ms(Some(1_763_799_400), now), now - 600_000);
        assert_eq!(event_time_ms(Some(1_763_800_000), now), now);
        let oldest = now - TIME_AGE_MAX_MS;
        assert_eq!(event_time_ms(Some(oldest / 1000), now), oldest);
        // too old, in the future (by a second or by years), or absurd: arrival time
        assert_eq!(event_time_ms(Some(oldest / 1000 - 1), now), now);
        assert_eq!(event_time_ms(Some(1_763_800_001), now), now);
        assert_eq!(event_time_ms(Some(4_000_000_000), now), now);
        assert_eq!(event_time_ms(Some(0), now), now);
        assert_eq!(event_time_ms(Some(u64::MAX), now), now);
    }

    #[test]
    fn bad_params_are_400_with_the_name() {
        for (q, what) in [
            ("ip=1.2.3", "ip"),
            ("jail=a b", "jail"),
            ("failures=x", "failures"),
            ("source=", "source"),
        ] {
            match parse_hook(&HookInput {
                query: Some(q),
                ..Default::default()
            }) {
                Err(RequestError::BadRequest(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        let e = parse_hook(&HookInput {
            body: b"{}",
            content_type: Some(b"application/json"),
            ..Default::default()
        });
        assert_eq!(e, Err(RequestError::UnsupportedMediaType));
    }

    #[test]
    fn bearer_token_is_read() {
        let p = parse_hook(&HookInput {
            authorization: Some(b"Bearer abc123"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.token.as_deref(), Some("abc123"));
        let p = parse_hook(&HookInput {
            query: Some("token=q"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.token.as_deref(), Some("q"));
        for bad in [&b"Basic abc"[..], b"Bearer", b"\xff\xfe"] {
            assert_eq!(
                parse_hook(&HookInput {
                    authorization: Some(bad),
                    ..Default::default()
                }),
                Err(RequestError::Unauthorized)
            );
        }
    }

    #[test]
    fn authorization_rules() {
        assert_eq!(
            authorize(None, &[], "red"),
            Ok(None),
            "open when no sources"
        );
        let s = vec![
            source("web-1", "token-web-1-0123456789", Some(&["blue"])),
            source("ssh-1", "token-ssh-1-0123456789", None),
        ];
        assert_eq!(authorize(None, &s, "red"), Err(RequestError::Unauthorized));
        assert_eq!(
            authorize(Some("nope"), &s, "red"),
            Err(RequestError::Unauthorized)
        );
        assert_eq!(
            authorize(Some("token-ssh-1-0123456789"), &s, "red"),
            Ok(Some("ssh-1".into()))
        );
        assert_eq!(
            authorize(Some("token-web-1-0123456789"), &s, "blue"),
            Ok(Some("web-1".into()))
        );
        assert_eq!(
            authorize(Some("token-web-1-0123456789"), &s, "red"),
            Err(RequestError::Forbidden("web-1".into()))
        );
        assert_eq!(
            authorize(Some("token-web-1-012345678"), &s, "blue"),
            Err(RequestError::Unauthorized)
        );
    }

    #[test]
    fn tokens_are_found_without_parsing_the_rest() {
        assert_eq!(
            token_of(Some(b"Bearer abc"), Some("ip=bad")),
            Some("abc".into())
        );
        assert_eq!(token_of(None, Some("jail=x&token=q%20")), Some("q".into()));
        assert_eq!(token_of(Some(b"Basic abc"), None), None);
        assert_eq!(token_of(None, None), None);
        let s = vec![source("a", "token-a-0123456789", None)];
        assert!(is_known_token("token-a-0123456789", &s));
        assert!(!is_known_token("token-a-012345678", &s));
        assert!(!is_known_token("x", &[]));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
    }
}
