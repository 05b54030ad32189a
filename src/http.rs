//! The HTTP boundary: turns requests into hooks for the ledger and status
//! reads, and knows nothing about LEDs or SQL. Every input is bounded: URI,
//! headers, body, time to send headers and body, and concurrent connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Route;
use crate::core::counters::Counters;
use crate::core::time::rfc3339_utc;
use crate::engine::PanelStatus;
use crate::ledger::{wall_ms, Hook, LedgerHandle};

pub const MAX_URI: usize = 8 * 1024;
/// Request line and headers together. hyper's read buffer (twice this) stops
/// a slow trickle; `handle` checks the parsed size, since one large read can
/// land whole in the buffer.
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 4 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this, whatever it does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(10);

/// What request handlers share.
pub struct App {
    pub routes: RwLock<Arc<Vec<Route>>>,
    pub ledger: LedgerHandle,
    pub counters: Arc<Mutex<Counters>>,
    pub panel: Arc<Mutex<PanelStatus>>,
    pub started: Instant,
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub commit_stats: Arc<crate::ledger::CommitStats>,
}

type Body = Full<Bytes>;

fn json_response(status: StatusCode, value: Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string() + "\n")));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json_response(status, json!({ "error": message.into() }))
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}"),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Jail and source names: what fail2ban allows in a jail name, bounded.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:@".contains(c))
}

/// The hook parameters from a query string or form body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HookParams {
    pub jail: Option<String>,
    pub ip: Option<String>,
    pub source: Option<String>,
    pub failures: Option<u32>,
}

/// Parses `jail`, `ip`, `source` and `failures`; other keys are ignored.
pub fn parse_params(input: &[u8], into: &mut HookParams) -> Result<(), String> {
    for (k, v) in form_urlencoded::parse(input) {
        let v = v.trim();
        match k.as_ref() {
            "jail" | "source" => {
                if !valid_name(v) {
                    return Err(format!(
                        "invalid {k} \"{}\": use 1-64 letters, digits or . _ - : @",
                        v.chars().take(64).collect::<String>()
                    ));
                }
                let slot = if k == "jail" {
                    &mut into.jail
                } else {
                    &mut into.source
                };
                *slot = Some(v.to_string());
            }
            "ip" => {
                let ip: IpAddr = v.parse().map_err(|_| {
                    format!("invalid ip \"{}\"", v.chars().take(64).collect::<String>())
                })?;
                // Canonical form, so dedupe sees ::1 and 0:0::1 as one address.
                into.ip = Some(ip.to_string());
            }
            "failures" => {
                into.failures = Some(v.parse().map_err(|_| {
                    format!(
                        "invalid failures \"{}\"",
                        v.chars().take(20).collect::<String>()
                    )
                })?);
            }
            _ => {}
        }
    }
    Ok(())
}

impl App {
    fn route(&self, name: &str) -> Option<Route> {
        self.routes
            .read()
            .expect("routes lock")
            .iter()
            .find(|r| r.name == name)
            .cloned()
    }

    pub fn status_json(&self) -> Value {
        let now = wall_ms();
        let routes = self.routes.read().expect("routes lock").clone();
        let c = self.counters.lock().expect("counters lock");
        let mut per_route = serde_json::Map::new();
        for r in routes.iter() {
            let rc = c.get(&r.name);
            per_route.insert(
                r.name.clone(),
                json!({
                    "count": rc.map_or(0, |x| x.count),
                    "last_24h": c.last_24h(&r.name, now),
                    "last_seen": rc.and_then(|x| x.last_seen_ms).map(rfc3339_utc),
                    "color": r.color.to_string(),
                    "label": r.label.to_string().trim_end(),
                }),
            );
        }
        let total = c.total();
        let last_24h = c.total_last_24h(now);
        drop(c);
        let p = self.panel.lock().expect("panel lock").clone();
        let mut panel = serde_json::Map::new();
        panel.insert("backend".into(), json!(p.backend));
        panel.insert("dark".into(), json!(p.dark));
        panel.insert("display_text".into(), json!(p.display));
        panel.insert("led_brightness".into(), json!(p.led_brightness));
        panel.insert("display_brightness".into(), json!(p.display_brightness));
        for (k, v) in &p.health {
            panel.insert((*k).into(), json!(v));
        }
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs(),
            "time": rfc3339_utc(now),
            "total": total,
            "last_24h": last_24h,
            "mode": p.mode,
            "display": p.health.iter().find(|(k, _)| *k == "display").map_or("ok".to_string(), |(_, v)| v.clone()),
            "shutting_down": p.shutting_down,
            "panel": panel,
            "routes": per_route,
            "store": {
                "commits": self.commit_stats.commits.load(std::sync::atomic::Ordering::Relaxed),
                "events": self.commit_stats.events.load(std::sync::atomic::Ordering::Relaxed),
            },
        })
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if req.uri().to_string().len() > MAX_URI {
            return error(
                StatusCode::URI_TOO_LONG,
                format!("URI longer than {MAX_URI} bytes"),
            );
        }
        let head_len: usize = req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if head_len > MAX_HEAD {
            return error(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("headers larger than {MAX_HEAD} bytes"),
            );
        }
        let path = req.uri().path().to_string();
        if path == "/api/status" {
            return match *req.method() {
                Method::GET | Method::HEAD => json_response(StatusCode::OK, self.status_json()),
                _ => method_not_allowed("GET"),
            };
        }
        let name = path.strip_prefix('/').unwrap_or("");
        let Some(route) = (!name.contains('/')).then(|| self.route(name)).flatten() else {
            tracing::debug!(%peer, path = %path.chars().take(80).collect::<String>(), "not a route");
            return error(StatusCode::NOT_FOUND, "no such route");
        };
        if !matches!(*req.method(), Method::GET | Method::POST) {
            return method_not_allowed("GET, POST");
        }
        let mut params = HookParams::default();
        if let Some(q) = req.uri().query() {
            if let Err(e) = parse_params(q.as_bytes(), &mut params) {
                return error(StatusCode::BAD_REQUEST, e);
            }
        }
        if req.method() == Method::POST {
            match read_form(req).await {
                Ok(body) => {
                    if let Err(e) = parse_params(&body, &mut params) {
                        return error(StatusCode::BAD_REQUEST, e);
                    }
                }
                Err(resp) => return resp,
            }
        }
        let hook = Hook {
            route: route.name.clone(),
            jail: params.jail,
            ip: params.ip,
            source: params.source,
        };
        match self.ledger.hook(hook).await {
            Ok(outcome) => json_response(
                StatusCode::OK,
                json!({
                    "route": route.name,
                    "count": outcome.count,
                    "total": outcome.total,
                    "counted": outcome.counted,
                }),
            ),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }
}

/// Reads a small urlencoded body, or answers 413/415/408/400.
async fn read_form(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_BODY} bytes"),
        )
    };
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|l| l.parse::<u64>().ok()) {
            Some(n) if n > MAX_BODY as u64 => return Err(too_large()),
            Some(_) => {}
            None => return Err(error(StatusCode::BAD_REQUEST, "invalid Content-Length")),
        }
    }
    let form_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let body = Limited::new(req.into_body(), MAX_BODY);
    let collected = tokio::time::timeout(BODY_TIMEOUT, body.collect())
        .await
        .map_err(|_| error(StatusCode::REQUEST_TIMEOUT, "body not received in time"))?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(_) => return Err(error(StatusCode::BAD_REQUEST, "could not read the body")),
    };
    if !bytes.is_empty() && form_type != Some(true) {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/x-www-form-urlencoded (curl -d does)",
        ));
    }
    Ok(bytes)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests (up to 10 s).
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(app.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let header_timeout = app.header_timeout;
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(req, peer).await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(2 * MAX_HEAD)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                Ok(Err(e)) => tracing::debug!(%peer, "connection ended: {e}"),
                Err(_) => tracing::debug!(%peer, "connection closed after {CONNECTION_LIFETIME:?}"),
                Ok(Ok(())) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(GRACEFUL_TIMEOUT) => tracing::warn!("some connections did not finish in {GRACEFUL_TIMEOUT:?}"),
    }
}
