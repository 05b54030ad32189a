//! The read-only web page at `/`: its embedded assets, the JSON it reads
//! (`/api/history`, `/api/recent`) and its live event stream (`/api/stream`).
//!
//! The stream carries the frames the panel backend is given (a [`TapPanel`]
//! wraps it), so the page and the desk never disagree. The engine only ever
//! replaces the newest frame in a `watch` channel: it never waits for a
//! browser. Each client's forwarder reads the newest frame at most
//! [`FRAME_GAP`] after the last it sent, into a queue of [`CLIENT_QUEUE`]
//! messages: a slow client skips frames, one stuck for [`SLOW_CLIENT`] is
//! dropped.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame as BodyFrame, SizeHint};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::clock::wall_ms;
use crate::core::history::{bucketize, day_edges, ten_minute_edges, MONTH_DAYS};
use crate::core::scene::Frame;
use crate::ledger::LedgerError;
use crate::panel::{PanelError, PanelOutput};
use crate::reply::Body;
use crate::state::State;
use crate::store::StoredEvent;

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_CSS: &str = include_str!("web/app.css");
const APP_JS: &str = include_str!("web/app.js");

/// At most ~30 frames per second per client: the engine renders sweeps at
/// up to 60, which a browser over Wi-Fi need not follow.
pub const FRAME_GAP: Duration = Duration::from_millis(33);
/// Messages queued per client: a few frames, a status.
pub const CLIENT_QUEUE: usize = 8;
/// A client that takes no message for this long is dropped.
pub const SLOW_CLIENT: Duration = Duration::from_secs(10);
/// Counts and states go out at most this often per client (a flood of hooks
/// is summed, not streamed one by one).
pub const STATUS_GAP: Duration = Duration::from_millis(250);
/// A stream ends cleanly before the listener's 60 s connection lifetime;
/// the browser reconnects after `retry` and gets a fresh snapshot.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(50);
/// Recent events on the page.
pub const RECENT_EVENTS: usize = 25;

/// A panel frame as the page draws it: exactly what the hardware is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ShownFrame {
    frame: Frame,
    t_ms: u64,
}

/// What the page's streams share: the newest frame, a change counter for
/// counts and states, and the shutdown flag.
pub struct Web {
    frames: watch::Sender<Option<ShownFrame>>,
    changes: watch::Sender<u64>,
    closing: watch::Sender<bool>,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            frames: watch::Sender::new(None),
            changes: watch::Sender::new(0),
            closing: watch::Sender::new(false),
        }
    }
}

impl Web {
    pub fn new() -> Arc<Web> {
        Arc::new(Web::default())
    }

    /// Counts or states changed (an event was counted, a heartbeat state
    /// moved): streams send a fresh status soon.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Ends every stream (daemon shutdown): graceful shutdown waits for
    /// open responses, and a stream would otherwise never end.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn show(&self, frame: &Frame, t_ms: u64) {
        self.frames.send_replace(Some(ShownFrame {
            frame: frame.clone(),
            t_ms,
        }));
    }

    /// Open event streams.
    pub fn clients(&self) -> usize {
        self.closing.receiver_count()
    }
}

/// Wraps the panel backend: every frame it is given also goes to the page.
pub struct TapPanel {
    inner: Box<dyn PanelOutput>,
    web: Arc<Web>,
}

impl TapPanel {
    pub fn new(inner: Box<dyn PanelOutput>, web: Arc<Web>) -> Self {
        TapPanel { inner, web }
    }
}

impl PanelOutput for TapPanel {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        let shown = self.inner.show(frame, t_ms);
        self.web.show(frame, t_ms);
        shown
    }

    fn health(&self) -> Vec<(&'static str, String)> {
        self.inner.health()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn wake_at(&self) -> Option<u64> {
        self.inner.wake_at()
    }

    fn sweep_started(&mut self, route: &str, color: crate::core::color::Rgb, events: u64) {
        self.inner.sweep_started(route, color, events)
    }

    fn show_segments(&mut self, segments: [u8; 4], brightness: u8) -> Result<(), PanelError> {
        self.inner.show_segments(segments, brightness)
    }
}

/// The page's answer for `req`, or `None` when the path is not the page's
/// (or the page is off): the caller goes on with hooks and status.
pub async fn respond<B>(
    app: &Arc<State>,
    web: Option<&Arc<Web>>,
    req: &Request<B>,
) -> Option<Response<Body>> {
    let web = web?;
    let path = req.uri().path();
    let known = matches!(
        path,
        "/" | "/index.html"
            | "/app.css"
            | "/app.js"
            | "/api/stream"
            | "/api/history"
            | "/api/recent"
    );
    if !known {
        return None;
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        let mut resp = json_error(StatusCode::METHOD_NOT_ALLOWED, "the page is read-only");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return Some(resp);
    }
    Some(match path {
        "/" | "/index.html" => asset(INDEX_HTML, "text/html; charset=utf-8"),
        "/app.css" => asset(APP_CSS, "text/css; charset=utf-8"),
        "/app.js" => asset(APP_JS, "text/javascript; charset=utf-8"),
        // From memory and the read-only connection, one computation
        // shared by everyone asking at once: never through the ledger.
        "/api/history" => match app
            .reads
            .history
            .get(|| async { Ok::<_, LedgerError>(json_bytes(&history(app))) })
            .await
        {
            Ok(b) => json_body(b),
            Err(e) => store_error(e),
        },
        "/api/recent" => match app
            .reads
            .recent
            .get(|| async { recent(app).await.map(|v| json_bytes(&v)) })
            .await
        {
            Ok(b) => json_body(b),
            Err(e) => store_error(e),
        },
        _ => stream(app.clone(), web.clone()),
    })
}

fn with_headers(mut resp: Response<Body>, content_type: &'static str) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Nothing but our own files: no CDN, no inline script, no framing.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    resp
}

fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    with_headers(Response::new(full(text)), content_type)
}

fn json_ok(value: Value) -> Response<Body> {
    json_body(json_bytes(&value))
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string() + "\n")
}

fn json_body(bytes: Bytes) -> Response<Body> {
    with_headers(Response::new(full(bytes)), "application/json")
}

fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = json_ok(json!({ "error": message }));
    *resp.status_mut() = status;
    resp
}

fn store_error(e: LedgerError) -> Response<Body> {
    tracing::warn!("web page: reading the store failed: {e}");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store did not answer; try again",
    )
}

/// Events per route: the last 24 h per 10 minutes, the last 30 days per
/// day in the appliance's time zone.
pub fn history(app: &State) -> Value {
    let now = wall_ms();
    let zone = jiff::tz::TimeZone::system();
    let day = ten_minute_edges(now);
    let month = day_edges(now, &zone);
    let since = day[0].min(month[0]);
    let slots = app
        .reads
        .activity
        .lock()
        .expect("activity lock")
        .since(since);
    let routes = app.routing().routes.clone();
    let names: Vec<String> = routes.iter().map(|r| r.name.clone()).collect();
    let day_counts = bucketize(&slots, &names, &day);
    let month_counts = bucketize(&slots, &names, &month);
    let labels: Vec<String> = month[..MONTH_DAYS]
        .iter()
        .map(|&ms| {
            jiff::Timestamp::from_millisecond(ms as i64)
                .map(|t| t.to_zoned(zone.clone()).strftime("%a %-d %b").to_string())
                .unwrap_or_default()
        })
        .collect();
    json!({
        "now_ms": now,
        "time_zone": zone.iana_name().unwrap_or("local"),
        "routes": routes.iter().map(|r| json!({
            "name": r.name,
            "color": r.color.to_string(),
            "label": r.label.to_string().trim_end(),
        })).collect::<Vec<_>>(),
        "day": { "edges": day, "counts": day_counts },
        "month": { "edges": month, "labels": labels, "counts": month_counts },
    })
}

/// The newest events, read on the read-only connection (a blocking
/// thread), beside the ledger thread and never queued behind it.
async fn recent(app: &State) -> Result<Value, LedgerError> {
    let Some(store) = app.reads.store.clone() else {
        return Err(LedgerError::Store("no read-only connection".into()));
    };
    let events = tokio::task::spawn_blocking(move || {
        store
            .lock()
            .expect("reader lock")
            .events(0, None, RECENT_EVENTS)
    })
    .await
    .map_err(|e| LedgerError::Store(format!("reader: {e}")))??;
    let list: Vec<Value> = events.iter().map(StoredEvent::to_json).collect();
    Ok(json!({ "events": list }))
}

/// One Server-Sent Event.
fn sse(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn frame_json(f: &ShownFrame) -> Value {
    let fr = &f.frame;
    json!({
        "t_ms": f.t_ms,
        "leds": fr.leds.iter().map(|c| [c.r, c.g, c.b]).collect::<Vec<_>>(),
        "brightness": fr.led_brightness,
        "segments": fr.display.segments(),
        "text": fr.display.to_string(),
        "display_on": fr.display_on,
        "display_brightness": fr.display_brightness,
    })
}

/// Status without the fields that change every second, to tell whether
/// anything worth sending changed.
fn status_core(mut status: Value) -> Value {
    if let Some(o) = status.as_object_mut() {
        o.remove("time");
        o.remove("uptime_s");
    }
    status
}

fn stream(app: Arc<State>, web: Arc<Web>) -> Response<Body> {
    if *web.closing.borrow() {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    tokio::spawn(forward(app, web, tx));
    let mut resp = with_headers(
        Response::new(ChannelBody(rx).boxed_unsync()),
        "text/event-stream",
    );
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // One stream per connection: it ends before the connection lifetime,
    // and the browser's reconnect opens a fresh connection.
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Feeds one client until it goes away, is too slow, the stream's lifetime
/// ends or the daemon stops.
async fn forward(app: Arc<State>, web: Arc<Web>, tx: mpsc::Sender<Bytes>) {
    let mut frames = web.frames.subscribe();
    let mut changes = web.changes.subscribe();
    let mut closing = web.closing.subscribe();
    if *closing.borrow_and_update() {
        return;
    }
    let end = Instant::now() + STREAM_LIFETIME;
    let send = |bytes: Bytes| {
        let tx = tx.clone();
        async move {
            matches!(
                tokio::time::timeout(SLOW_CLIENT, tx.send(bytes)).await,
                Ok(Ok(()))
            )
        }
    };
    let status = crate::status::status_json(&app);
    let first = format!(
        "retry: 1000\n\n{}",
        String::from_utf8_lossy(&sse("status", &status))
    );
    if !send(Bytes::from(first)).await {
        return;
    }
    let mut last_status = status_core(status);
    let current = frames.borrow_and_update().clone();
    if let Some(f) = current {
        if !send(sse("frame", &frame_json(&f))).await {
            return;
        }
    }
    let mut next_frame_at = Instant::now() + FRAME_GAP;
    let mut status_at: Option<Instant> = None;
    let mut next_status_at = Instant::now() + STATUS_GAP;
    loop {
        let status_sleep = async {
            match status_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = frames.changed() => {
                if r.is_err() {
                    return;
                }
                // The throttle: wait out the gap, then send the newest frame
                // (those in between are skipped, never queued).
                tokio::time::sleep_until(next_frame_at).await;
                let f = frames.borrow_and_update().clone();
                if let Some(f) = f {
                    if !send(sse("frame", &frame_json(&f))).await {
                        return;
                    }
                }
                next_frame_at = Instant::now() + FRAME_GAP;
                // Dark, mode and display health change with frames; the
                // engine publishes them right after the frame.
                status_at.get_or_insert(next_status_at.max(Instant::now() + STATUS_GAP));
            }
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                changes.borrow_and_update();
                status_at.get_or_insert(next_status_at.max(Instant::now() + Duration::from_millis(20)));
            }
            _ = status_sleep => {
                status_at = None;
                next_status_at = Instant::now() + STATUS_GAP;
                let status = crate::status::status_json(&app);
                let core = status_core(status.clone());
                if core != last_status {
                    if !send(sse("status", &status)).await {
                        return;
                    }
                    last_status = core;
                }
            }
            _ = closing.changed() => return, // only ever set to true
            _ = tokio::time::sleep_until(end) => return,
            _ = tx.closed() => return,
        }
    }
}

/// A response body fed by a bounded channel; ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|m| m.map(|bytes| Ok(BodyFrame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::color::Rgb;
    use crate::core::display::DisplayText;
    use crate::panel::memory::MemoryPanel;

    fn frame(red: u8, text: &str) -> Frame {
        Frame {
            leds: vec![Rgb::new(red, 0, 0), Rgb::BLACK],
            led_brightness: 7,
            display: DisplayText::parse_right(text).unwrap(),
            display_on: true,
            display_brightness: 3,
        }
    }

    #[test]
    fn the_tap_passes_every_frame_on_and_keeps_the_newest_for_the_page() {
        let web = Web::new();
        let memory = MemoryPanel::new();
        let mut tap = TapPanel::new(Box::new(memory.clone()), web.clone());
        assert_eq!(tap.name(), "memory", "the backend's name, for status");
        let mut page = web.frames.subscribe();
        assert!(page.borrow().is_none());
        tap.show(&frame(255, "rEd"), 10).unwrap();
        tap.show(&frame(48, "42"), 20).unwrap();
        assert_eq!(memory.frames().len(), 2, "the hardware gets every frame");
        assert!(page.has_changed().unwrap());
        // The page reads only the newest: nothing queues up behind it.
        let newest = page.borrow_and_update().clone().unwrap();
        assert_eq!(newest.frame, frame(48, "42"));
        assert_eq!(newest.t_ms, 20);
        let json = frame_json(&newest);
        assert_eq!(json["leds"], json!([[48, 0, 0], [0, 0, 0]]));
        assert_eq!(
            json["segments"],
            json!([0, 0, 0x66, 0x5B]),
            "the TM1637's bytes"
        );
        assert_eq!(json["brightness"], 7);
        assert_eq!(json["display_brightness"], 3);
    }

    #[test]
    fn status_changes_ignore_the_clock() {
        let a = json!({"total": 1, "time": "x", "uptime_s": 1});
        let b = json!({"total": 1, "time": "y", "uptime_s": 2});
        assert_eq!(status_core(a.clone()), status_core(b));
        assert_ne!(
            status_core(a),
            status_core(json!({"total": 2, "time": "x"}))
        );
    }
}
