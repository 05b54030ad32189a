//! `[[source]]`: the servers allowed to post hooks and heartbeats.

use std::fmt;

use super::error::Locator;
use super::raw::RawSource;
use super::routes::Route;

/// A server allowed to post hooks, by its bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub token: String,
    /// Routes it may post to; `None` = all.
    pub routes: Option<Vec<String>>,
    /// `heartbeat` and `grace`: the server is expected to send
    /// `POST /api/heartbeat` at least this often (`None`: not watched).
    pub heartbeat: Option<crate::core::heartbeat::Spec>,
}

impl fmt::Debug for Source {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("routes", &self.routes)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

pub const MIN_TOKEN_LEN: usize = 16;

/// Shortest heartbeat period: a server cannot usefully report more often.
pub const MIN_HEARTBEAT_MS: u64 = 1000;

/// Each `[[source]]` checked: a valid, unique name; a long, unique token;
/// routes that exist; a sound heartbeat.
pub(super) fn sources(
    raw: &[RawSource],
    routes: &[Route],
    loc: &Locator,
) -> Result<Vec<Source>, super::ConfigError> {
    let mut sources: Vec<Source> = Vec::new();
    for s in raw {
        let name = s.name.get_ref();
        if !crate::core::names::valid_name(name) {
            return Err(loc.at(
                s.name.span().start,
                format!("source name \"{name}\" must be 1-64 letters, digits or . _ - : @"),
            ));
        }
        if sources.iter().any(|x| x.name == *name) {
            return Err(loc.at(
                s.name.span().start,
                format!("source \"{name}\" is defined twice"),
            ));
        }
        let token = s.token.get_ref();
        if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(loc.at(
                s.token.span().start,
                format!("the token of source \"{name}\" must be at least {MIN_TOKEN_LEN} printable characters without spaces (e.g. from `openssl rand -hex 24`)"),
            ));
        }
        if sources.iter().any(|x| x.token == *token) {
            return Err(loc.at(
                s.token.span().start,
                format!("source \"{name}\" reuses another source's token"),
            ));
        }
        if let Some(rs) = &s.routes {
            if let Some(bad) = rs
                .get_ref()
                .iter()
                .find(|r| !routes.iter().any(|x| x.name == **r))
            {
                return Err(loc.at(
                    rs.span().start,
                    format!("source \"{name}\" names route \"{bad}\", which is not defined"),
                ));
            }
        }
        let heartbeat = source_heartbeat(s, name).map_err(|(at, m)| loc.at(at, m))?;
        sources.push(Source {
            name: name.clone(),
            token: token.clone(),
            routes: s.routes.as_ref().map(|r| r.get_ref().clone()),
            heartbeat,
        });
    }
    Ok(sources)
}

/// A source's `heartbeat` and `grace` (default: the period), or the offset
/// and message of what is wrong with them.
fn source_heartbeat(
    s: &RawSource,
    name: &str,
) -> Result<Option<crate::core::heartbeat::Spec>, (usize, String)> {
    let Some(period) = &s.heartbeat else {
        return match &s.grace {
            Some(g) => Err((
                g.span().start,
                format!("source \"{name}\" sets grace without heartbeat; add heartbeat = \"5m\" (the period) or remove grace"),
            )),
            None => Ok(None),
        };
    };
    let period_ms = period.get_ref().0;
    if period_ms < MIN_HEARTBEAT_MS {
        return Err((
            period.span().start,
            format!("the heartbeat of source \"{name}\" must be at least 1s (e.g. \"5m\")"),
        ));
    }
    let grace_ms = s.grace.as_ref().map_or(period_ms, |g| g.get_ref().0);
    Ok(Some(crate::core::heartbeat::Spec {
        period_ms,
        grace_ms,
    }))
}
