//! The display tells the same story as the LEDs, checked on the frames the
//! real daemon draws (in-memory panel): while a route's sweep plays the
//! display shows that route; and every state change that alters what the
//! display should show reaches it at once.

mod common;

use banlight::config::Config;
use banlight::control::ControlRequest;
use banlight::core::color::Rgb;
use banlight::core::scene::Frame;
use common::{eventually, test_config, TestDaemon};

const RED: Rgb = Rgb::new(255, 0, 0);
const BLUE: Rgb = Rgb::new(0, 0, 255);
const GREEN: Rgb = Rgb::new(0, 255, 0);

/// Three routes of distinct hue; no marker pixel (level 0), so every lit
/// frame is a sweep frame; one queued sweep, so bursts get coalesced.
const CONFIG: &str = r##"
[panel]
sweep_time = "400ms"
sweep_passes = 1
label_time = "150ms"
event_display = "500ms"
marker_level = 0
max_queued_sweeps = 1
[[route]]
name = "red"
color = "#ff0000"
label = "rEd"
[[route]]
name = "blue"
color = "#0000ff"
label = "bLUE"
[[route]]
name = "green"
color = "#00ff00"
label = "Grn"
"##;

static HOOKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The route whose sweep this frame shows, by the hue of its lit LEDs.
fn sweeping(frame: &Frame) -> Option<&'static str> {
    let lit: Vec<&Rgb> = frame.leds.iter().filter(|c| !c.is_black()).collect();
    let first = lit.first()?;
    let route = match (first.r > 0, first.g > 0, first.b > 0) {
        (true, false, false) => "red",
        (false, false, true) => "blue",
        (false, true, false) => "green",
        other => panic!("a sweep colour of no route: {other:?} in {frame:?}"),
    };
    let same_hue =
        |c: &&Rgb| (c.r > 0, c.g > 0, c.b > 0) == (first.r > 0, first.g > 0, first.b > 0);
    assert!(
        lit.iter().all(same_hue),
        "two routes' colours in one frame: {frame:?}"
    );
    Some(route)
}

fn label(route: &str) -> &'static str {
    match route {
        "red" => "rEd ",
        "blue" => "bLUE",
        "green" => "Grn ",
        _ => unreachable!(),
    }
}

/// `n` hooks at once, each from its own address (no dedupe).
async fn hooks(d: &TestDaemon, route: &str, n: usize) {
    let mut tasks = Vec::new();
    let first = HOOKS.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    for i in first..first + n {
        let addr = d.addr;
        let path = format!("/{route}?ip=198.18.{}.{}&jail=j", i / 250, i % 250);
        tasks.push(tokio::spawn(async move {
            let r = common::request(
                addr,
                &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn every_frame_during_a_sweep_shows_the_sweeping_route() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), CONFIG)).await;
    // two in quick succession (the case of the issue: blue arrives while
    // red sweeps), then a burst across routes
    hooks(&d, "red", 1).await;
    hooks(&d, "blue", 1).await;
    tokio::join!(
        hooks(&d, "green", 20),
        hooks(&d, "red", 5),
        hooks(&d, "blue", 2)
    );
    let panel = d.panel.clone();
    eventually(
        20,
        "all sweeps played and the display back on the total",
        || {
            panel.last().is_some_and(|f| {
                f.leds.iter().all(|c| c.is_black()) && f.display.to_string() == "  29"
            })
        },
    )
    .await;
    let frames = d.panel.frames();
    let finals = [("red", 6u64), ("blue", 3), ("green", 20)];
    let mut previous: (Option<&str>, u64) = (None, 0);
    let (mut sweep_frames, mut beginnings) = (0, 0);
    for (t, frame) in &frames {
        let Some(route) = sweeping(frame) else {
            previous = (None, *t);
            continue;
        };
        sweep_frames += 1;
        let text = frame.display.to_string();
        // A new route's sweep began after the previous frame: if that was
        // less than label_time ago, its label must be up (a loaded machine
        // may draw the first frame late; then there is nothing to check).
        if previous.0 != Some(route) && t - previous.1 < 150 {
            beginnings += 1;
            assert_eq!(
                text,
                label(route),
                "t={t}: {route}'s sweep begins with its label"
            );
        }
        previous = (Some(route), *t);
        if text == label(route) {
            continue;
        }
        // otherwise a number: this route's count, or its burst's size
        let n: u64 = text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("t={t}: {route} sweeps but the display says {text:?}"));
        let total = finals.iter().find(|(r, _)| *r == route).unwrap().1;
        assert!(
            (1..=total).contains(&n),
            "t={t}: {route} sweeps but the display says {text:?}"
        );
    }
    assert!(sweep_frames >= 20, "{sweep_frames} sweep frames");
    assert!(beginnings >= 2, "{beginnings} sweep beginnings checked");
    // the panel was told each sweep and what it stands for: red and blue
    // first; the burst coalesced per route behind one queued sweep
    let sweeps = d.panel.sweeps();
    assert_eq!(sweeps[0], ("red".to_string(), RED, 1), "{sweeps:?}");
    assert_eq!(sweeps[1], ("blue".to_string(), BLUE, 1), "{sweeps:?}");
    for (route, colour, total) in [("red", RED, 6), ("blue", BLUE, 3), ("green", GREEN, 20)] {
        let events: u64 = sweeps
            .iter()
            .filter(|(r, c, _)| r == route && *c == colour)
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(
            events, total,
            "{route}: every event is in some sweep: {sweeps:?}"
        );
    }
    assert!(
        sweeps.len() < 28,
        "the burst was coalesced: {} sweeps for 29 events",
        sweeps.len()
    );
    d.shutdown().await;
}

async fn control(d: &TestDaemon, req: ControlRequest) {
    let answer = d.daemon.as_ref().unwrap().control.handle(req).await;
    assert_eq!(answer["ok"], true, "{answer}");
}

/// A frame drawn from now on matches `want`. Nothing animates while these
/// run, so only the state change itself can draw it (before the fix a reset
/// showed the old total until the next event or mode change: never, here).
async fn shows(d: &TestDaemon, from: usize, what: &str, want: impl Fn(&Frame) -> bool) {
    let panel = d.panel.clone();
    eventually(10, what, || {
        panel.frames()[from..].iter().any(|(_, f)| want(f))
    })
    .await;
}

fn drawn(d: &TestDaemon) -> usize {
    d.panel.frames().len()
}

#[tokio::test]
async fn reset_reload_brightness_and_mode_refresh_the_display_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("banlight.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n{CONFIG}",
        dir.path().join("state").display()
    );
    std::fs::write(&path, &text).unwrap();
    let d = TestDaemon::start(&Config::load(&path).unwrap()).await;
    hooks(&d, "red", 6).await;
    hooks(&d, "blue", 3).await;
    shows(&d, 0, "the total, all sweeps done", |f| {
        f.display.to_string() == "   9" && f.leds.iter().all(|c| c.is_black())
    })
    .await;

    // reset: the total drops at once, with no event to redraw it
    let from = drawn(&d);
    control(
        &d,
        ControlRequest::Reset {
            route: Some("red".into()),
        },
    )
    .await;
    shows(&d, from, "the total after resetting red", |f| {
        f.display.to_string() == "   3"
    })
    .await;

    // brightness
    let from = drawn(&d);
    control(
        &d,
        ControlRequest::Brightness {
            leds: 20,
            display: 6,
        },
    )
    .await;
    shows(&d, from, "the new brightness", |f| {
        f.display_brightness == 6 && f.led_brightness == 20
    })
    .await;

    // mode: the label, then the route's count
    let from = drawn(&d);
    control(
        &d,
        ControlRequest::Mode {
            mode: "blue".into(),
        },
    )
    .await;
    shows(&d, from, "blue's label", |f| {
        f.display.to_string() == "bLUE"
    })
    .await;
    shows(&d, from, "blue's count", |f| {
        f.display.to_string() == "   3"
    })
    .await;

    // reload: a new label for blue shows at once in mode blue
    let from = drawn(&d);
    std::fs::write(&path, text.replace("label = \"bLUE\"", "label = \"b2\"")).unwrap();
    control(&d, ControlRequest::Reload).await;
    control(
        &d,
        ControlRequest::Mode {
            mode: "blue".into(),
        },
    )
    .await;
    shows(&d, from, "blue's new label", |f| {
        f.display.to_string() == "b2  "
    })
    .await;
    // and a reloaded display brightness
    let from = drawn(&d);
    std::fs::write(
        &path,
        text.replace("[panel]\n", "[panel]\ndisplay_brightness = 1\n"),
    )
    .unwrap();
    control(&d, ControlRequest::Reload).await;
    shows(&d, from, "brightness 1 from the reloaded file", |f| {
        f.display_brightness == 1
    })
    .await;
    d.shutdown().await;
}
