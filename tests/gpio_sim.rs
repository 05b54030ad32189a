//! The whole daemon over the Raspberry Pi panel on simulated pins
//! (`backend = "gpio-sim"`): what the pins carry, decoded back, is what the
//! `record` backend shows for the same frames; a power button held 3 s
//! through the interrupt path shuts down; a display that does not ACK is
//! `"missing"` in status until it answers again.

mod common;
use common::bin;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banlight::config::Config;
use banlight::core::scene::Frame;
use banlight::panel::gpio_sim::wires::SimGpio;
use banlight::panel::gpio_sim::{self, GpioSimPanel, PinReport};
use banlight::panel::record::RecordPanel;
use banlight::panel::{Clock, PanelError, PanelOutput};
use common::*;
use tokio::sync::mpsc;

/// Shows every frame on the record backend and on the gpio-sim panel.
struct Tee {
    record: RecordPanel,
    pins: GpioSimPanel,
}

impl PanelOutput for Tee {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        self.record.show(frame, t_ms)?;
        self.pins.show(frame, t_ms)
    }
    fn health(&self) -> Vec<(&'static str, String)> {
        self.pins.health()
    }
    fn name(&self) -> &'static str {
        self.pins.name()
    }
    fn wake_at(&self) -> Option<u64> {
        self.pins.wake_at()
    }
}

/// The daemon on a gpio-sim panel whose clock began a minute ago (so button
/// edges can be dated seconds back); the sim and the decoder's report.
async fn start_on_pins(config: &Config) -> (Running, SimGpio, Arc<Mutex<PinReport>>) {
    let clock = Clock::started_ago(Duration::from_secs(60));
    let (tx, rx) = mpsc::channel(64);
    let (panel, sim) = gpio_sim::open(config, clock, tx).unwrap();
    let report = panel.report();
    (
        Running::start(config, Box::new(panel), clock, rx).await,
        sim,
        report,
    )
}

fn rgb(v: &serde_json::Value) -> [u8; 3] {
    let a: Vec<u8> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect();
    [a[0], a[1], a[2]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_pins_equal_the_record_backend_frame_by_frame() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), "");
    let record_path = dir.path().join("frames.jsonl");
    let clock = Clock::start();
    let (tx, rx) = mpsc::channel(64);
    let pins = GpioSimPanel::on(SimGpio::following_real_time(), &config, clock, tx).unwrap();
    let report = pins.report();
    let tee = Tee {
        record: RecordPanel::create(&record_path).unwrap(),
        pins,
    };
    let d = Running::start(&config, Box::new(tee), clock, rx).await;
    for path in ["/red", "/blue", "/red", "/green"] {
        assert_eq!(d.get(path).await.status, 200);
    }
    let lines = || -> Vec<serde_json::Value> {
        // The panel thread may be halfway through a line: read whole ones.
        let text = std::fs::read_to_string(&record_path).unwrap();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        whole
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // Every sweep played, the marker faded: the panel is dark and idle.
    eventually(30, "the sweeps end and the marker fades", || {
        let l = lines();
        l.len() > 20
            && l.last().unwrap()["leds"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| rgb(c) == [0, 0, 0])
    })
    .await;
    let status = d.status().await;
    assert_eq!(status["panel"]["backend"], "gpio-sim");
    assert_eq!(status["panel"]["pins"], "ok", "{status}");
    assert_eq!(status["display"], "ok");
    d.shutdown().await;
    let recorded = lines();
    let report = report.lock().unwrap().clone();
    assert_eq!(report.violations, [], "the drivers keep the parts' timing");
    assert_eq!(report.dropped_edges, 0);
    let decoded: Vec<_> = report.shows.iter().collect();
    assert_eq!(
        decoded.len(),
        recorded.len(),
        "one decoded state per frame shown"
    );
    let mut lit = 0;
    for (k, (r, p)) in recorded.iter().zip(&decoded).enumerate() {
        let leds: Vec<[u8; 3]> = r["leds"].as_array().unwrap().iter().map(rgb).collect();
        let pin_leds: Vec<[u8; 3]> = p.leds.iter().map(|l| l.rgb).collect();
        assert_eq!(pin_leds, leds, "frame {k}: LEDs");
        assert!(
            p.leds
                .iter()
                .all(|l| u64::from(l.brightness) == r["brightness"].as_u64().unwrap()),
            "frame {k}: brightness"
        );
        let display = p.display.as_ref().expect("the display answered");
        let segments: Vec<u8> = r["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(
            display.segments.to_vec(),
            segments,
            "frame {k}: digits {}",
            r["display"]
        );
        assert_eq!(
            display.on,
            r["display_on"].as_bool().unwrap(),
            "frame {k}: on"
        );
        if display.on {
            assert_eq!(
                u64::from(display.brightness),
                r["display_brightness"].as_u64().unwrap(),
                "frame {k}"
            );
        }
        lit += leds.iter().filter(|c| **c != [0, 0, 0]).count().min(1);
    }
    assert!(
        lit > 10,
        "the sweeps were seen on the pins ({lit} lit frames)"
    );
    assert!(
        decoded.iter().filter(|s| s.display_written).count() >= 4,
        "labels and counts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_button_held_3_s_through_the_interrupt_path_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("powered-off");
    let script = dir.path().join("poweroff.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/powered-off\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = test_config(
        dir.path(),
        &format!("shutdown_command = \"{} --now\"", script.display()),
    );
    let power = config.panel.power_button_pin as u8;
    let (d, sim, _report) = start_on_pins(&config).await;
    // A press of 2.5 s, with bounce at both ends, that ended 0.1 s ago:
    // the panel goes dark, nothing shuts down. (It began 2.6 s ago: one that
    // began 3 s ago would rightly shut down if the engine saw its press edge
    // before its release edge; the 3 s boundary itself is unit-tested in
    // core::buttons.)
    sim.press(
        power,
        Duration::from_millis(2600),
        Duration::from_millis(2500),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !d.status().await["panel"]["dark"].as_bool().unwrap() {
        assert!(
            Instant::now() < deadline,
            "a short power press darkens the panel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!flag.exists(), "2.5 s is not a shutdown");
    // Held since 3.2 s ago and still down.
    sim.press_and_hold(power, Duration::from_millis(3200));
    // the script's `echo > file` creates the file before it writes: wait for the words
    eventually(20, "the shutdown command ran with --now", || {
        std::fs::read_to_string(&flag).is_ok_and(|s| s.trim() == "--now")
    })
    .await;
    assert!(d.status().await["shutting_down"].as_bool().unwrap());
    d.shutdown().await;
}

/// Records which thread draws each frame.
struct ThreadSpy(Arc<Mutex<Vec<String>>>);

impl PanelOutput for ThreadSpy {
    fn show(&mut self, _frame: &Frame, _t_ms: u64) -> Result<(), PanelError> {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        self.0.lock().unwrap().push(name);
        Ok(())
    }
    fn name(&self) -> &'static str {
        "spy"
    }
}

/// Issue 20, item 8: the panel's busy waits (bit-banging) run on a thread
/// of their own, never on a worker of the runtime that serves requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_drawn_on_the_panel_thread() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), "");
    let names = Arc::new(Mutex::new(Vec::new()));
    let (_tx, rx) = mpsc::channel(64);
    let clock = Clock::start();
    let d = Running::start(&config, Box::new(ThreadSpy(names.clone())), clock, rx).await;
    assert_eq!(d.get("/red").await.status, 200);
    eventually(20, "frames are drawn", || names.lock().unwrap().len() > 3).await;
    let names = names.lock().unwrap().clone();
    assert!(names.iter().all(|n| n == "banlight-panel"), "{names:?}");
    d.shutdown().await;
}

/// Issue 20, item 7: a long press whose power-off is refused (polkit, an
/// inhibitor, no polkitd) must not be invisible: the display says `Err`,
/// and status says why under `power`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_shutdown_shows_err_on_the_display_and_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("refuse.sh");
    std::fs::write(&script, "#!/bin/sh\necho 'Access denied' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = test_config(
        dir.path(),
        &format!("shutdown_command = \"{}\"", script.display()),
    );
    let power = config.panel.power_button_pin as u8;
    let (d, sim, _report) = start_on_pins(&config).await;
    sim.press_and_hold(power, Duration::from_millis(3200));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.status().await;
        if s["panel"]["display_text"].as_str().unwrap_or("").trim() == "Err" {
            let p = s["panel"]["power"].as_str().unwrap_or("");
            assert!(p.starts_with("error:"), "{s}");
            assert!(p.contains("exit status: 1"), "{p}");
            break;
        }
        assert!(Instant::now() < deadline, "no Err on the display: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!d.status().await["shutting_down"].as_bool().unwrap());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_without_ack_is_missing_until_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), "");
    let clock = Clock::started_ago(Duration::from_secs(60));
    let (tx, rx) = mpsc::channel(64);
    let (panel, sim) = gpio_sim::open(&config, clock, tx).unwrap();
    sim.set_display_acks(false);
    let report = panel.report();
    let d = Running::start(&config, Box::new(panel), clock, rx).await;
    assert_eq!(d.get("/red").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.status().await;
        if s["display"] == "missing" {
            assert_eq!(s["panel"]["display"], "missing");
            assert_eq!(s["panel"]["leds"], "ok", "the LEDs go on working");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "display never reported missing: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(report.lock().unwrap().unacked_transfers >= 1);
    assert!(report
        .lock()
        .unwrap()
        .shows
        .iter()
        .all(|s| s.display.is_none()));
    // Plugged in: at the next retry (every 5 s) it shows the count.
    sim.set_display_acks(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.status().await["display"] != "ok" {
        assert!(Instant::now() < deadline, "the display never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(10, "the display holds an update again", || {
        report
            .lock()
            .unwrap()
            .shows
            .back()
            .is_some_and(|s| s.display.is_some())
    })
    .await;
    assert_eq!(report.lock().unwrap().violations, []);
    d.shutdown().await;
}

/// `banlight` with `backend = "gpio-sim"` in its config: a hook lights the
/// LEDs on the pins, and the decoded states land in `record_path`.
#[test]
fn the_binary_runs_on_gpio_sim_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("pins.jsonl");
    let config = dir.path().join("banlight.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\n[panel]\nbackend = \"gpio-sim\"\nrecord_path = \"{}\"\nsweep_time = \"200ms\"\nsweep_passes = 1\nmarker_hold = \"300ms\"\nmarker_fade = \"100ms\"\n",
            dir.path().join("state").display(),
            dir.path().join("ctl.sock").display(),
            record.display()
        ),
    )
    .unwrap();
    let (mut child, addr) = bin::spawn_listening(&config);
    let get = |path: &str| -> String {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    };
    assert!(get("/red").contains("\"counted\":true"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let red_on_pins = |l: &serde_json::Value| {
        l["leds"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c[0].as_u64() > Some(0)))
            && l["segments"].is_array()
            && l["violations"] == 0
    };
    loop {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        let decoded: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if decoded.iter().any(red_on_pins) {
            let l = decoded
                .iter()
                .find(|l| l["led_frame_us"].is_number())
                .unwrap();
            assert!(l["led_frame_us"].as_f64().unwrap() > 300.0, "{l}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no red sweep decoded from the pins:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = get("/api/status");
    assert!(status.contains("\"backend\":\"gpio-sim\""), "{status}");
    assert!(status.contains("\"pins\":\"ok\""), "{status}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

fn selftest_with_report(
    dir: &std::path::Path,
    panel: &str,
    args: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let config = dir.join("selftest.toml");
    std::fs::write(&config, format!("[panel]\n{panel}\n")).unwrap();
    let report = dir.join("report.json");
    let out = bin::command()
        .arg("--config")
        .arg(&config)
        .args(["selftest", "--step", "0ms", "--report"])
        .arg(&report)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    (out, json)
}

#[test]
fn selftest_report_on_gpio_sim_is_json_with_the_expected_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = selftest_with_report(dir.path(), "backend = \"gpio-sim\"", &["--no-buttons"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("report written to"), "{stdout}");
    for key in [
        "banlight_version",
        "time",
        "config",
        "machine",
        "backend",
        "wiring",
        "buttons_tested",
        "ok",
        "problems",
        "health",
        "transcript",
        "doctor",
    ] {
        assert!(r.get(key).is_some(), "{key} missing in {r:#}");
    }
    assert_eq!(r["backend"], "gpio-sim");
    assert_eq!(r["ok"], true);
    assert_eq!(r["problems"], serde_json::json!([]));
    assert_eq!(r["buttons_tested"], false);
    assert_eq!(r["health"]["display"], "ok");
    assert_eq!(
        r["health"]["pins"], "ok",
        "the selftest's own writes keep the timing"
    );
    assert_eq!(r["wiring"]["display"]["clk"], "BCM 5 (pin 29)");
    assert_eq!(r["wiring"]["leds"]["data"], "BCM 23 (pin 16)");
    assert!(r["machine"]["arch"].is_string());
    let transcript: Vec<&str> = r["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("LED 8/8: red green blue white")),
        "{transcript:?}"
    );
    assert!(
        transcript.iter().any(|l| l.contains("no errors")),
        "{transcript:?}"
    );
    // `banlight doctor`'s lines: the board check first, the count last.
    let doctor: Vec<&str> = r["doctor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(doctor[0].contains("board:"), "{doctor:?}");
    assert!(
        doctor.last().unwrap().ends_with("problems") || doctor.last().unwrap().ends_with("problem"),
        "{doctor:?}"
    );
}

#[test]
fn a_failed_selftest_reports_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let record = format!(
        "backend = \"record\"\nrecord_path = \"{}\"",
        dir.path().join("f.jsonl").display()
    );
    let (out, r) = selftest_with_report(dir.path(), &record, &["--button-timeout", "100ms"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["ok"], false);
    assert_eq!(r["buttons_tested"], true);
    let problems = r["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{r:#}");
    assert!(
        problems[0].as_str().unwrap().contains("MODE button"),
        "{r:#}"
    );
}

/// The same hooks on two daemons, one per backend as the config selects
/// it: the display tells the same story (every distinct state, in order),
/// as the pins carry it and as `record` writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_runs_on_record_and_gpio_sim_show_the_same_digits() {
    let mut stories = Vec::new();
    for backend in ["record", "gpio-sim"] {
        let dir = tempfile::tempdir().unwrap();
        let lines_path = dir.path().join("lines.jsonl");
        let config = test_config(
            dir.path(),
            &format!(
                "[panel]\nbackend = \"{backend}\"\nrecord_path = \"{}\"\nsweep_time = \"200ms\"\nsweep_passes = 1\nlabel_time = \"100ms\"\nevent_display = \"300ms\"\nmarker_hold = \"300ms\"\nmarker_fade = \"100ms\"\n",
                lines_path.display()
            ),
        );
        let clock = Clock::start();
        let (tx, rx) = mpsc::channel(64);
        let panel = banlight::panel::open(&config, clock, tx).unwrap();
        assert_eq!(panel.name(), backend);
        let d = Running::start(&config, panel, clock, rx).await;
        let lines = || -> Vec<serde_json::Value> {
            // The panel thread may be halfway through a line: read whole ones.
            let text = std::fs::read_to_string(&lines_path).unwrap_or_default();
            let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            whole
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let dark = |l: &serde_json::Value| {
            l["leds"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| rgb(c) == [0, 0, 0])
        };
        for route in ["/red", "/blue", "/red"] {
            let before = lines().len();
            assert_eq!(d.get(route).await.status, 200);
            // its sweep lights the LEDs, then the marker fades out
            eventually(20, "the sweep plays", || {
                lines().iter().skip(before).any(|l| !dark(l))
            })
            .await;
            eventually(20, "the panel settles", || {
                let l = lines();
                l.len() > before
                    && l.iter().skip(before).any(|l| !dark(l))
                    && dark(l.last().unwrap())
            })
            .await;
        }
        d.shutdown().await;
        let mut story: Vec<(Vec<u64>, bool)> = Vec::new();
        for l in lines() {
            let segments: Vec<u64> = l["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            let state = (segments, l["display_on"].as_bool().unwrap());
            if story.last() != Some(&state) {
                story.push(state);
            }
        }
        assert!(story.len() >= 6, "{backend}: labels and counts: {story:?}");
        stories.push(story);
    }
    assert_eq!(stories[0], stories[1], "record vs gpio-sim");
}
