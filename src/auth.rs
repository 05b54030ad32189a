//! The one authenticator: a server's token, from a `Bearer` header or
//! `?token=`, matched against the configured sources in constant time.
//! Hooks over HTTP and MQTT and heartbeats all come through here.

use subtle::ConstantTimeEq;

use crate::config::Source;

/// Why a token does not admit a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No or unknown token while sources are configured.
    Unauthorized,
    /// A valid token for a source that may not post to this route.
    Forbidden(String),
}

/// The token of an `Authorization: Bearer TOKEN` header; `None` for any
/// other scheme or a header that is not text.
pub fn bearer(authorization: &[u8]) -> Option<String> {
    let auth = std::str::from_utf8(authorization).ok()?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The token a request carries, from `Authorization: Bearer` or `?token=`,
/// without judging the rest of the request.
pub fn token_of(authorization: Option<&[u8]>, query: Option<&str>) -> Option<String> {
    if let Some(token) = authorization.and_then(bearer) {
        return Some(token);
    }
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
}

/// Equal tokens, in time that does not depend on where they differ
/// (`subtle`; only the lengths may show).
pub fn token_matches(given: &[u8], configured: &[u8]) -> bool {
    given.ct_eq(configured).into()
}

/// The source `token` belongs to. Every source is compared, so timing does
/// not say which one matched.
pub fn find_source<'a>(token: &str, sources: &'a [Source]) -> Option<&'a Source> {
    let mut found = None;
    for s in sources {
        if token_matches(token.as_bytes(), s.token.as_bytes()) && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// The source whose token signed `signed` with `sig_hex` (HMAC-SHA256, 64
/// hex digits), if any. Every source is tried, each with the `hmac` crate's
/// constant-time comparison, so the time taken says nothing about the
/// signature or which source came close.
pub fn source_by_signature<'a>(
    sources: &'a [Source],
    signed: &str,
    sig_hex: &str,
) -> Option<&'a Source> {
    use hmac::{Hmac, Mac};
    let sig = hex_bytes(sig_hex)?;
    let mut found = None;
    for s in sources {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(s.token.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(signed.as_bytes());
        if mac.verify_slice(&sig).is_ok() && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// 64 hex digits as 32 bytes (the `hex` crate for one call is not worth it).
fn hex_bytes(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Does `token` belong to a configured source?
pub fn is_known_token(token: &str, sources: &[Source]) -> bool {
    find_source(token, sources).is_some()
}

/// With no sources configured, everyone may post (as the prototype allowed)
/// and the source comes from the request. Otherwise the token must match a
/// source allowed on the route, and names the event's source.
pub fn authorize(
    token: Option<&str>,
    sources: &[Source],
    route: &str,
) -> Result<Option<String>, AuthError> {
    if sources.is_empty() {
        return Ok(None);
    }
    let token = token.ok_or(AuthError::Unauthorized)?;
    let source = find_source(token, sources).ok_or(AuthError::Unauthorized)?;
    match &source.routes {
        Some(allowed) if !allowed.iter().any(|r| r == route) => {
            Err(AuthError::Forbidden(source.name.clone()))
        }
        _ => Ok(Some(source.name.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, token: &str, routes: Option<&[&str]>) -> Source {
        Source {
            name: name.into(),
            token: token.into(),
            routes: routes.map(|r| r.iter().map(|s| s.to_string()).collect()),
            heartbeat: None,
        }
    }

    #[test]
    fn a_signature_names_the_source_whose_token_made_it() {
        // RFC 4231, test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
        let sig = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let data = "what do ya want for nothing?";
        let sources = [source("a", "not-jefe", None), source("b", "Jefe", None)];
        assert_eq!(
            source_by_signature(&sources, data, sig).map(|s| s.name.as_str()),
            Some("b")
        );
        assert_eq!(
            source_by_signature(&sources, data, &sig.to_uppercase()).map(|s| s.name.as_str()),
            Some("b")
        );
        assert!(source_by_signature(&sources, "what do ya want for nothing!", sig).is_none());
        assert!(source_by_signature(&sources[..1], data, sig).is_none());
        assert!(source_by_signature(&sources, data, &sig[..62]).is_none());
        assert!(source_by_signature(&sources, data, &format!("{}zz", &sig[..62])).is_none());
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc".into()));
        assert_eq!(bearer(b"  bearer   abc  "), Some("abc".into()));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(&[0xff, b' ', b'a']), None);
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
        assert_eq!(authorize(None, &s, "red"), Err(AuthError::Unauthorized));
        assert_eq!(
            authorize(Some("nope"), &s, "red"),
            Err(AuthError::Unauthorized)
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
            Err(AuthError::Forbidden("web-1".into()))
        );
        assert_eq!(
            authorize(Some("token-web-1-012345678"), &s, "blue"),
            Err(AuthError::Unauthorized)
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
    fn token_matches_is_eq() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(token_matches(b"", b""));
        assert!(!token_matches(b"abc", b"abd"));
        assert!(!token_matches(b"abc", b"ab"));
        assert!(!token_matches(b"ab", b"abc"));
        assert!(!token_matches(b"ab\0", b"ab"));
    }

    #[test]
    fn find_source_names_the_first_match() {
        let s = vec![
            source("a", "token-a-0123456789", None),
            source("b", "token-b-0123456789", None),
        ];
        assert_eq!(
            find_source("token-b-0123456789", &s).map(|s| s.name.as_str()),
            Some("b")
        );
        assert_eq!(find_source("token-b-012345678", &s), None);
    }
}
