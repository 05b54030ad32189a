//! Quiet hours in the running daemon: a window around the current local
//! time (the system's zone, as on the appliance) keeps the panel dark while
//! counting goes on; a button press lights it; reload ends it.

mod common;

use banlight::core::buttons::Button;
use banlight::core::color::Rgb;
use common::*;

fn all_dark(f: &banlight::core::scene::Frame) -> bool {
    !f.display_on && f.leds.iter().all(|c| *c == Rgb::BLACK)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_darken_the_panel_and_counting_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), &quiet_window_around_now())).await;
    let r = d.get("/red?ip=198.51.100.1").await;
    assert_eq!(r.json()["counted"], true, "{}", r.body);
    let s = d
        .status_until(10, "the engine's first quiet frame", |s| {
            s["panel"]["quiet"] == true
        })
        .await;
    assert_eq!(s["routes"]["red"]["count"], 1);
    assert!(banlight::cmd::status::format_status(&s).contains("(quiet hours)"));
    // the sweep (200 ms here) and its marker never reach the panel
    let panel = d.panel.clone();
    // let the 200 ms sweep play out underneath (not a timing assertion)
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let frames = panel.frames();
    assert!(!frames.is_empty());
    assert!(
        frames.iter().all(|(_, f)| all_dark(f)),
        "every frame dark: {:?}",
        frames.iter().find(|(_, f)| !all_dark(f))
    );

    // a press lights the panel (the display shows the count) and changes no mode
    d.press(Button::Mode, 50).await;
    eventually(10, "the panel is lit", || {
        panel.last().is_some_and(|f| f.display_on)
    })
    .await;
    let s = d
        .status_until(10, "quiet false: lit by the press", |s| {
            s["panel"]["quiet"] == false
        })
        .await;
    assert_eq!(s["mode"], "total", "the waking press only wakes");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dim_quiet_hours_show_the_count_at_the_lowest_brightness() {
    let dir = tempfile::tempdir().unwrap();
    let extra = quiet_window_around_now() + "dim = true\n";
    let d = TestDaemon::start(&test_config(dir.path(), &extra)).await;
    for _ in 0..3 {
        d.get("/blue").await;
    }
    let panel = d.panel.clone();
    eventually(10, "the dim count", || {
        panel
            .last()
            .is_some_and(|f| f.display_on && f.display.to_string().trim() == "3")
    })
    .await;
    let frames = panel.frames();
    for (_, f) in &frames {
        assert_eq!((f.led_brightness, f.display_brightness), (1, 0), "{f:?}");
        let lit = f.leds.iter().filter(|c| **c != Rgb::BLACK).count();
        assert!(lit <= 1, "no sweep, at most the marker pixel: {f:?}");
        let shown = f.display.to_string();
        assert!(
            !f.display_on || shown.trim().parse::<u64>().is_ok_and(|n| n <= 3),
            "only the count, no label: {f:?}"
        );
    }
    d.shutdown().await;
}

/// `banlight reload` starts and ends quiet hours on a running desk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_and_ends_quiet_hours() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(dir.path());
    let (file, config) = config_file(dir.path(), "");
    let d = TestDaemon::start(&config).await;
    let panel = d.panel.clone();
    eventually(10, "the panel shows the count", || {
        panel.last().is_some_and(|f| f.display_on)
    })
    .await;
    assert_eq!(d.status().await["panel"]["quiet"], false);
    let reload = || async { d.daemon.as_ref().unwrap().control.reload().await.unwrap() };

    std::fs::write(&file, format!("{base}{}", quiet_window_around_now())).unwrap();
    reload().await;
    d.status_until(10, "quiet hours started by the reload", |s| {
        s["panel"]["quiet"] == true
    })
    .await;
    eventually(10, "the panel goes dark", || {
        panel.last().is_some_and(|f| all_dark(&f))
    })
    .await;

    std::fs::write(&file, &base).unwrap();
    reload().await;
    d.status_until(10, "quiet hours ended by the reload", |s| {
        s["panel"]["quiet"] == false
    })
    .await;
    eventually(10, "the panel is lit again", || {
        panel.last().is_some_and(|f| f.display_on)
    })
    .await;
    d.shutdown().await;
}
