//! Request -> hook parsing and authorization, free of hyper and I/O so that
//! it can be fuzzed and unit-tested on its own. `http.rs` feeds it.

use std::net::IpAddr;

use crate::auth::{authorize, bearer, AuthError};
use crate::config::{Route, Source};
use crate::core::hook::HookParams;
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

impl From<AuthError> for RequestError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => RequestError::Unauthorized,
            AuthError::Forbidden(source) => RequestError::Forbidden(source),
        }
    }
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

/// Reads every `key=value` of a query string or form body into `into`
/// (each value checked by [`HookParams::set`]; other keys are ignored).
pub fn parse_params(input: &[u8], into: &mut HookParams) -> Result<(), RequestError> {
    for (k, v) in form_urlencoded::parse(input) {
        into.set(&k, v.trim()).map_err(RequestError::BadRequest)?;
    }
    Ok(())
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
        params.token = Some(bearer(auth).ok_or(RequestError::Unauthorized)?);
    }
    Ok(params)
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
            // Folded too (issue 19, item 6), so dedupe sees one client.
            ("::203.0.113.9", "203.0.113.9"),
            ("64:ff9b::cb00:7109", "203.0.113.9"),
            ("2002:cb00:7109:5::1", "203.0.113.9"),
            ("::1", "::1"),
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
}
