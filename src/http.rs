//! The HTTP boundary: turns requests into hooks for the ledger and status
//! reads, and knows nothing about LEDs or SQL. Every input is bounded: URI,
//! headers, body, time to send headers and body, and concurrent connections.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;

use crate::auth::{is_known_token, token_of};
use crate::clock::wall_ms;
use crate::core::loglimit::{LogLimit, LogNow};
use crate::core::ratelimit::client_key;
use crate::reply::{error, json_response, Body};
use crate::request::{parse_hook, parse_target, HookInput, RequestError, Target};
use crate::state::State;
use std::sync::atomic::Ordering;

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

/// The HTTP boundary's own part: the daemon's state, the live page, and
/// what only connections need.
pub struct Server {
    pub state: Arc<State>,
    /// The live page at `/` (`None`: `[web] enabled = false`).
    pub web: Option<Arc<crate::web::Web>>,
    pub header_timeout: Duration,
    pub max_connections_per_client: usize,
    /// Open connections per client address, over every listener: one
    /// address gets `max_connections_per_client` in all, not per port.
    pub per_client: PerClient,
}

impl Server {
    /// A 429, counted.
    fn rate_limited(&self, why: &str) -> Response<Body> {
        self.state
            .requests
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
        error(StatusCode::TOO_MANY_REQUESTS, why)
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let ip = peer.ip();
        let allowed = self.state.allowed(ip);
        // A server with a valid token is never locked out by its own earlier
        // mistakes (a typo'd route, say): its real bans must still count.
        if !allowed && !self.carries_known_token(&req) {
            return self.rate_limited("too many failed requests; slow down");
        }
        let resp = self.respond(req, peer).await;
        if resp.status().is_client_error() {
            self.state.requests.refused.fetch_add(1, Ordering::Relaxed);
            if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
                self.state
                    .requests
                    .unauthorized
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.state.charge(ip);
        }
        resp
    }

    /// `GET /metrics`: read-only, no token, like `/api/status`; from
    /// memory, one rendering shared by everyone asking at once.
    async fn metrics(&self, method: &Method, accept: Option<&str>) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            return refusal(RequestError::MethodNotAllowed("GET"));
        }
        let state = &self.state;
        let text = state
            .reads
            .metrics
            .get(|| async {
                let sample = crate::metrics::Sample::of(state, state.heartbeats.samples());
                Ok::<_, Infallible>(Bytes::from(sample.render()))
            })
            .await
            .unwrap_or_else(|never| match never {});
        let (text, content_type) = if crate::metrics::wants_openmetrics(accept) {
            (text, crate::metrics::CONTENT_TYPE)
        } else {
            let text = crate::metrics::to_text_004(&String::from_utf8_lossy(&text));
            (Bytes::from(text), crate::metrics::TEXT_CONTENT_TYPE)
        };
        let mut resp = Response::new(Full::new(text).boxed_unsync());
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp
    }

    fn carries_known_token(&self, req: &Request<Incoming>) -> bool {
        let sources = &self.state.routing().sources;
        if sources.is_empty() {
            return false;
        }
        token_of(
            req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes),
            req.uri().query(),
        )
        .is_some_and(|t| is_known_token(&t, sources))
    }

    async fn respond(self: &Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
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
        if req.uri().path() == "/metrics" {
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            return self.metrics(req.method(), accept).await;
        }
        // The page's API: a per-address limit, so one address looping on
        // it gets 429 for almost nothing (issue 19, item 1).
        if self.web.is_some()
            && matches!(
                req.uri().path(),
                "/api/history" | "/api/recent" | "/api/stream"
            )
            && !self.state.reads.allow(peer.ip(), self.state.mono_ms())
        {
            return self
                .rate_limited("too many reads of the page's API from this address; slow down");
        }
        if let Some(resp) = crate::web::respond(&self.state, self.web.as_ref(), &req).await {
            return resp;
        }
        let routing = self.state.routing();
        let routes = &routing.routes;
        let target = match parse_target(req.method().as_str(), req.uri().path(), routes) {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(%peer, path = %req.uri().path().chars().take(80).collect::<String>(), "refused: {}", e.message());
                return refusal(e);
            }
        };
        let route = match target {
            Target::Status => {
                let state = &self.state;
                let body = state
                    .reads
                    .status
                    .get(|| async {
                        let v = crate::status::status_json(state);
                        Ok::<_, Infallible>(Bytes::from(v.to_string() + "\n"))
                    })
                    .await
                    .unwrap_or_else(|never| match never {});
                return crate::reply::json_bytes(StatusCode::OK, body);
            }
            Target::Hook(i) => routes[i].name.clone(),
            Target::Heartbeat => return self.heartbeat(req, peer).await,
        };
        let (parts, body) = req.into_parts();
        let body = if parts.method == Method::POST {
            match read_body(&parts.headers, body).await {
                Ok(b) => b,
                Err(resp) => return resp,
            }
        } else {
            Bytes::new()
        };
        let input = HookInput {
            query: parts.uri.query(),
            authorization: parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
            content_type: parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
            body: &body,
        };
        let params = match parse_hook(&input) {
            Ok(p) => p,
            Err(e) => return refusal(e),
        };
        let token_sent = params.token.is_some();
        let hook = match routing.admit(route.clone(), params) {
            Ok(hook) => hook,
            Err(e) => {
                let e = RequestError::from(e);
                // "a token is required" would mislead whoever reads the log
                // when a token was sent and did not match.
                let why = match e {
                    RequestError::Unauthorized if token_sent => "wrong token".to_string(),
                    _ => e.message(),
                };
                tracing::info!(%peer, route, "refused: {why}");
                return refusal(e);
            }
        };
        match self.state.ledger.hook(hook).await {
            Ok(outcome) => {
                let mut answer = json!({
                    "route": route,
                    "count": outcome.count,
                    "total": outcome.total,
                    "counted": outcome.counted,
                });
                if let Some(reason) = outcome.reason {
                    answer["reason"] = json!(reason);
                }
                json_response(StatusCode::OK, answer)
            }
            Err(e) => {
                // The detail (paths, SQLite errors) is for the log, not for clients.
                // A stuck store fails every hook: log the first, then a
                // summary every 30 s, not one line per hook.
                let now = wall_ms();
                let verdict = STORE_ERRORS
                    .lock()
                    .expect("log limit lock")
                    .get_or_insert_with(|| LogLimit::new(30_000))
                    .hit(now);
                if let LogNow::Log { suppressed } = verdict {
                    tracing::error!(
                        "hook on {route} not stored: {e} ({suppressed} more not stored since the last such line)"
                    );
                }
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the event could not be stored; try again",
                )
            }
        }
    }
}

impl Server {
    /// `POST /api/heartbeat`: a server says it is alive, with its token and
    /// optionally what it knows of its fail2ban.
    async fn heartbeat(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let routing = self.state.routing();
        let sources = &routing.sources;
        if sources.is_empty() {
            return error(
                StatusCode::UNAUTHORIZED,
                "heartbeats need a [[source]] with a token and heartbeat = \"5m\" in the config",
            );
        }
        let token = token_of(
            parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
            parts.uri.query(),
        );
        let source = match crate::heartbeat::identify(token.as_deref(), sources) {
            Ok(s) => s.name.clone(),
            Err(e) => {
                let why = if token.is_some() {
                    "wrong token"
                } else {
                    "no token"
                };
                tracing::info!(%peer, "heartbeat refused: {why}");
                return refusal(e);
            }
        };
        let body = match read_body(&parts.headers, body).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let report = match crate::heartbeat::parse_report(
            parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
            &body,
        ) {
            Ok(r) => r,
            Err(e) => return refusal(e),
        };
        match self.state.heartbeats.beat(&source, report) {
            Ok(state) => json_response(
                StatusCode::OK,
                json!({ "source": source, "state": state.as_str() }),
            ),
            Err(crate::core::heartbeat::NotWatched) => json_response(
                StatusCode::OK,
                json!({
                    "source": source,
                    "state": null,
                    "note": "not watched: set heartbeat = \"5m\" in this source's [[source]] table to be told when it goes silent",
                }),
            ),
        }
    }
}

/// Rate-limits the "not stored" error line.
static STORE_ERRORS: Mutex<Option<LogLimit>> = Mutex::new(None);

fn refusal(e: RequestError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).expect("valid status");
    match e {
        RequestError::MethodNotAllowed(allow) => {
            let mut resp = error(status, e.message());
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            resp
        }
        RequestError::Unauthorized => {
            let mut resp = error(status, e.message());
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"banlight\""),
            );
            resp
        }
        _ => error(status, e.message()),
    }
}

/// Reads a small body, or answers 413/408/400.
async fn read_body(headers: &hyper::HeaderMap, body: Incoming) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_BODY} bytes"),
        )
    };
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|l| l.parse::<u64>().ok()) {
            Some(n) if n > MAX_BODY as u64 => return Err(too_large()),
            Some(_) => {}
            None => return Err(error(StatusCode::BAD_REQUEST, "invalid Content-Length")),
        }
    }
    let body = Limited::new(body, MAX_BODY);
    let collected = tokio::time::timeout(BODY_TIMEOUT, body.collect())
        .await
        .map_err(|_| error(StatusCode::REQUEST_TIMEOUT, "body not received in time"))?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(error(StatusCode::BAD_REQUEST, "could not read the body")),
    }
}

pub type PerClient = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One open connection of a client address; released on drop.
struct ClientSlot {
    table: PerClient,
    client: IpAddr,
}

impl ClientSlot {
    fn take(table: &PerClient, client: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut t = table.lock().expect("per-client lock");
        let n = t.entry(client).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: table.clone(),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().expect("per-client lock");
        if let Some(n) = t.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.client);
            }
        }
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests (up to 10 s).
pub async fn serve(listener: TcpListener, app: Arc<Server>, shutdown: impl Future<Output = ()>) {
    serve_on(listener, app, None, shutdown).await
}

/// The same over TLS: the handshake runs inside the connection's slot and
/// timeouts, then the decrypted stream goes to the same connection code.
pub async fn serve_tls(
    listener: TcpListener,
    app: Arc<Server>,
    tls: Arc<crate::tls::TlsState>,
    shutdown: impl Future<Output = ()>,
) {
    serve_on(listener, app, Some(tls), shutdown).await
}

async fn serve_on(
    listener: TcpListener,
    app: Arc<Server>,
    tls: Option<Arc<crate::tls::TlsState>>,
    shutdown: impl Future<Output = ()>,
) {
    let per_client = app.per_client.clone();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Accept never waits for a free slot: a full table is resolved by
        // evicting an idle or header-trickling connection (see slots.rs).
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
        let client = client_key(peer.ip());
        let Some(slot) = ClientSlot::take(&per_client, client, app.max_connections_per_client)
        else {
            // One address may not hold every slot (slowloris): close at once.
            app.state
                .requests
                .dropped_connections
                .fetch_add(1, Ordering::Relaxed);
            app.state.charge(peer.ip());
            drop(stream);
            continue;
        };
        let Some(conn_slot) = app.state.slots.take(Instant::now()) else {
            // Every slot is handling a request right now: they end soon.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let app = app.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor(wall_ms()));
        let marker = conn_slot.marker();
        tokio::spawn(async move {
            let work = async {
                match acceptor {
                    None => serve_connection(stream, peer, app.clone(), marker, watcher).await,
                    // The handshake must finish within the header timeout, like
                    // a plain request's headers; meanwhile the slot counts as
                    // idle, so a handshake trickler is evicted like a header one.
                    Some(acceptor) => {
                        match tokio::time::timeout(app.header_timeout, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls_stream)) => {
                                serve_connection(tls_stream, peer, app.clone(), marker, watcher)
                                    .await
                            }
                            Ok(Err(e)) => {
                                // Plain HTTP to the TLS port, a wrong pin on the
                                // client side, a scanner: closed, counted, charged.
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                false
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                false
                            }
                        }
                    }
                }
            };
            let answered = tokio::select! {
                answered = work => answered,
                _ = conn_slot.closed() => {
                    tracing::debug!(%peer, "connection evicted to make room");
                    true
                }
            };
            if !answered {
                app.state
                    .requests
                    .dropped_connections
                    .fetch_add(1, Ordering::Relaxed);
                app.state.charge(peer.ip());
            }
            drop(slot);
            drop(conn_slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(GRACEFUL_TIMEOUT) => tracing::warn!("some connections did not finish in {GRACEFUL_TIMEOUT:?}"),
    }
}

/// Serves HTTP/1 on one accepted stream, plain or TLS. Returns false when
/// the connection was closed unanswered (timed out).
async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Arc<Server>,
    marker: crate::slots::SlotMarker,
    watcher: hyper_util::server::graceful::Watcher,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = app.header_timeout;
    let service = service_fn(move |req| {
        let app = app.clone();
        let marker = marker.clone();
        async move {
            // Busy while a request is handled: never evicted mid-answer.
            marker.busy();
            let resp = app.handle(req, peer).await;
            marker.idle();
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(2 * MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    let conn = watcher.watch(conn);
    let unanswered = match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Err(e)) => {
            tracing::debug!(%peer, "connection ended: {e}");
            e.is_timeout()
        }
        Err(_) => {
            tracing::debug!(%peer, "connection closed after {CONNECTION_LIFETIME:?}");
            true
        }
        Ok(Ok(())) => false,
    };
    !unanswered
}
