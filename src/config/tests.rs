use super::*;
use crate::core::color::Rgb;
use crate::core::display::DisplayKind;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("test.toml"), text)
}

#[test]
fn empty_file_gives_the_prototype_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    let names: Vec<&str> = c.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["red", "blue", "purple", "green"]);
    let markers: Vec<usize> = c.routes.iter().map(|r| r.marker).collect();
    assert_eq!(markers, [0, 2, 4, 6]);
    assert_eq!(c.dedupe_window_ms, 600_000);
    assert_eq!(c.retention_days, 90);
    assert_eq!(c.shutdown_command, ["systemctl", "poweroff"]);
    assert_eq!(
        c,
        Config {
            source: Some("test.toml".into()),
            ..Config::defaults()
        }
    );
}

#[test]
fn example_file_parses_and_documents_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("banlight.example.toml");
    let example = Config::load(&path).unwrap();
    let defaults = Config::defaults();
    // The example spells out every default, except where it says otherwise.
    assert_eq!(example.panel, defaults.panel);
    assert_eq!(example.routes, defaults.routes);
    assert_eq!(example.dedupe_window_ms, defaults.dedupe_window_ms);
    assert_eq!(example.retention_days, defaults.retention_days);
    assert_eq!(example.max_events, defaults.max_events);
    assert_eq!(example.shutdown_command, defaults.shutdown_command);
    assert_eq!(example.max_connections, defaults.max_connections);
    assert_eq!(
        example.max_connections_per_client,
        defaults.max_connections_per_client
    );
    assert_eq!(example.header_timeout_ms, defaults.header_timeout_ms);
    assert_eq!(example.listen, defaults.listen);
    assert_eq!(example.rate_limit, defaults.rate_limit);
    assert_eq!(example.sources, defaults.sources);
    assert_eq!(example.ignore, defaults.ignore);
    assert_eq!(example.web, defaults.web);
    assert!(defaults.web.enabled, "the page is on unless switched off");
    assert!(!parse("[web]\nenabled = false\n").unwrap().web.enabled);
}

#[test]
fn quiet_hours_are_read() {
    use jiff::civil::time;
    let c = parse("[quiet]\nfrom = \"22:30\"\nto = \"7:00\"\ndim = true\nfri = { from = \"23:30\", to = \"09:00\" }\nsun = { off = true }\n").unwrap();
    let w = crate::core::quiet::Window {
        from: time(22, 30, 0, 0),
        to: time(7, 0, 0, 0),
    };
    assert_eq!(c.quiet.days[0], Some(w));
    assert_eq!(c.quiet.days[5], Some(w));
    assert_eq!(c.quiet.days[4].unwrap().from, time(23, 30, 0, 0));
    assert_eq!(c.quiet.days[6], None);
    assert!(c.quiet.dim);
    let c = parse("[quiet]\nsat = { from = \"01:00\", to = \"09:00\" }\n").unwrap();
    assert_eq!(
        c.quiet.days.iter().filter(|d| d.is_some()).count(),
        1,
        "only Saturday"
    );
    assert!(parse("").unwrap().quiet.is_empty());
    let c = parse("[tls]\nlisten = \"0.0.0.0:8443\"\n").unwrap();
    assert!(!c.plain_http, "[tls] alone: no plain HTTP");
    let tls = c.tls.unwrap();
    assert_eq!(tls.listen.port(), 8443);
    let both = parse("listen = \"127.0.0.1:8080\"\n[tls]\nlisten = \"0.0.0.0:8443\"\n").unwrap();
    assert!(both.plain_http, "plain HTTP kept because it is configured");
    assert!(parse("").unwrap().plain_http, "without [tls]: plain HTTP");
    assert_eq!(tls.overlap, Millis(7 * 86_400_000));
    assert!(parse("").unwrap().tls.is_none());
}

#[test]
fn ignore_list_is_read() {
    let c = parse("ignore = [\"203.0.113.0/24\", \"2001:db8:1::/48\", \"192.0.2.7\"]\n").unwrap();
    assert!(c.ignore.contains("203.0.113.9".parse().unwrap()));
    assert!(c.ignore.contains("::ffff:203.0.113.9".parse().unwrap()));
    assert!(c.ignore.contains("2001:db8:1::5".parse().unwrap()));
    assert!(c.ignore.contains("192.0.2.7".parse().unwrap()));
    assert!(!c.ignore.contains("192.0.2.8".parse().unwrap()));
}

#[test]
fn the_display_module_kind_is_read_and_checks_labels() {
    assert_eq!(parse("").unwrap().panel.display, DisplayKind::Colon);
    let c = parse("[panel]\ndisplay = \"points\"\n").unwrap();
    assert_eq!(c.panel.display, DisplayKind::Points);
    expect_error(
        "[panel]\ndisplay = \"decimal\"\n",
        2,
        "panel.display",
        "\"colon\"",
    );
    let dotted = "[[route]]\nname = \"x\"\ncolor = \"#ff0000\"\nlabel = \"r.1\"\n";
    let e = expect_error(dotted, 4, "route[0].label", "no decimal points");
    assert!(e.message.contains("display = \"points\""), "{e}");
    let c = parse(&format!("{dotted}[panel]\ndisplay = \"points\"\n")).unwrap();
    assert_eq!(c.routes[0].label.to_string(), "r.1  ");
}

#[test]
fn routes_and_panel_are_read() {
    let c = parse(
        r##"
listen = "0.0.0.0:9000"
dedupe_window = "30s"
[panel]
backend = "record"
record_path = "/tmp/frames.jsonl"
led_brightness = 31
[[route]]
name = "ssh"
color = "#ff8000"
[[route]]
name = "wp"
color = "#0000ff"
label = "UUP"
marker = 7
"##,
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.dedupe_window_ms, 30_000);
    assert_eq!(c.panel.backend, Backend::Record);
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[0].label.to_string(), "SSh ");
    assert_eq!(c.routes[0].marker, 0);
    assert_eq!(c.routes[1].marker, 7);
    assert_eq!(c.routes[1].color, Rgb::new(0, 0, 255));
}

fn err(text: &str) -> ConfigError {
    parse(text).unwrap_err()
}

/// `text` fails at `line` on `key` with a message containing `msg`.
fn expect_error(text: &str, line: usize, key: &str, msg: &str) -> ConfigError {
    let e = err(text);
    assert_eq!(e.line, Some(line), "{text}: {e}");
    assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
    assert!(e.message.contains(msg), "{text}: {e}");
    e
}

#[test]
fn a_control_socket_on_the_database_is_refused() {
    for name in [
        "banlight.db",
        "banlight.db-wal",
        "banlight.db-shm",
        "banlight.db/x.sock",
    ] {
        let text =
            format!("state_dir = \"/var/lib/bl\"\ncontrol_socket = \"/var/lib/bl/{name}\"\n");
        expect_error(&text, 2, "control_socket", "database");
    }
    let text =
        "state_dir = \"/var/lib/bl\"\ncontrol_socket = \"/var/lib/bl/../bl/./banlight.db\"\n";
    expect_error(text, 2, "control_socket", "database");
    Config::parse(
        Path::new("t.toml"),
        "state_dir = \"/var/lib/bl\"\ncontrol_socket = \"/var/lib/bl/control.sock\"\n",
    )
    .expect("a path of its own is fine");
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let e = err("listen = \"127.0.0.1:1\"\n\n[panel]\nbrightnes = 3\n");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.key.as_deref(), Some("panel.brightnes"));
    assert!(e.message.contains("unknown field"), "{e}");
    assert!(
        e.to_string()
            .starts_with("test.toml:4: key `panel.brightnes`:"),
        "{e}"
    );
}

#[test]
fn a_typo_in_a_key_gets_a_did_you_mean() {
    let e = err("dedup_window = \"5m\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("dedup_window")));
    assert!(e.message.contains("did you mean `dedupe_window`?"), "{e}");
    let e = err("[panel]\nbrightnes = 3\n");
    assert!(e.message.contains("did you mean `"), "{e}");
    // Nothing near: no guess.
    let e = err("zzzzzzzzzz = 1\n");
    assert!(!e.message.contains("did you mean"), "{e}");
}

#[test]
fn bad_values_name_file_line_and_key() {
    let cases = [
        ("[panel]\nled_brightness = 40\n", 2, "panel.led_brightness", "out of range"),
        ("dedupe_window = \"10\"\n", 1, "dedupe_window", "unit"),
        ("listen = \"localhost\"\n", 1, "listen", "address"),
        ("[[route]]\nname = \"a\"\ncolor = \"#ff\"\n", 3, "route[0].color", "#rrggbb"),
        (
            "[[route]]\nname = \"ssh\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"wp\"\ncolor = \"red\"\n",
            6,
            "route[1].color",
            "#rrggbb",
        ),
        ("[[route]]\nname = \"x\"\ncolor = \"#ff0000\"\nlabel = \"wow\"\n", 4, "route[0].label", "7-segment"),
        ("[[route]]\nname = \"Red Route\"\ncolor = \"#ff0000\"\n", 2, "route[0].name", "a-z"),
        ("[[route]]\nname = \"api\"\ncolor = \"#ff0000\"\n", 2, "route[0].name", "api"),
        ("[[route]]\nname = \"metrics\"\ncolor = \"#ff0000\"\nlabel = \"EtC\"\n", 2, "route[0].name", "metrics"),
        (
            "[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\n",
            5,
            "route[1].name",
            "twice",
        ),
        ("[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\nmarker = 8\n", 4, "route[0].marker", "0..7"),
        ("[[route]]\nname = \"wx\"\ncolor = \"#ff0000\"\n", 2, "route[0].name", "label"),
        ("shutdown_command = \"  \"\n", 1, "shutdown_command", "empty"),
        ("retention_days = -1\n", 1, "retention_days", ""),
        ("[panel]\nbackend = \"gpio\"\n", 2, "panel.backend", "variant"),
        ("\nignore = [\"10.0.0.0/8\", \"office\"]\n", 2, "ignore", "203.0.113.0/24"),
        ("dedupe_window = \"10 parsecs\"\n", 1, "dedupe_window", "minutes"),
        ("[quiet]\nfrom = \"22:30\"\nto = \"25:00\"\n", 3, "quiet.to", "22:30"),
        ("[quiet]\nfrom = \"22:30\"\n", 2, "quiet.from", "both"),
        ("[tls]\nlisten = \"8443\"\n", 2, "tls.listen", "address"),
        ("[quiet]\nfrom = \"22:30\"\nto = \"22:30\"\n", 3, "quiet.to", "same"),
        ("[quiet]\nfri = { from = \"23:00\" }\n", 2, "quiet.fri", "both"),
        ("[quiet]\nfrom = \"1\"\nto = \"2\"\n", 2, "quiet.from", "time of day"),
        ("[web]\nenabled = \"yes\"\n", 2, "web.enabled", "boolean"),
        ("[web]\nenable = true\n", 2, "web.enable", "expected `enabled`"),
    ];
    for (text, line, key, msg) in cases {
        expect_error(text, line, key, msg);
    }
}

#[test]
fn sources_are_read_and_checked() {
    let c = parse(
        "[[source]]\nname = \"web-1\"\ntoken = \"0123456789abcdef0123\"\nroutes = [\"blue\"]\n[[source]]\nname = \"ssh-1\"\ntoken = \"fedcba98765432100123\"\n",
    )
    .unwrap();
    assert_eq!(c.sources.len(), 2);
    assert_eq!(
        c.sources[0].routes.as_deref(),
        Some(&["blue".to_string()][..])
    );
    assert_eq!(c.sources[1].routes, None);
    assert!(
        !format!("{:?}", c.sources).contains("0123456789abcdef"),
        "Debug never shows tokens"
    );
    let cases = [
        ("[[source]]\nname = \"a\"\ntoken = \"short\"\n", 3, "source[0].token", "at least 16"),
        ("[[source]]\nname = \"a b\"\ntoken = \"0123456789abcdef0\"\n", 2, "source[0].name", "letters"),
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroutes = [\"nope\"]\n", 4, "source[0].routes", "nope"),
        (
            "[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\n[[source]]\nname = \"b\"\ntoken = \"0123456789abcdef0\"\n",
            6,
            "source[1].token",
            "reuses",
        ),
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroutes = \"red\"\n", 4, "source[0].routes", "sequence"),
    ];
    for (text, line, key, msg) in cases {
        let e = expect_error(text, line, key, msg);
        assert!(
            !e.to_string().contains("0123456789abcdef0"),
            "errors never show tokens: {e}"
        );
    }
}

#[test]
fn heartbeats_are_read_with_grace_defaulting_to_the_period() {
    use crate::core::heartbeat::Spec;
    let c = parse(
        "[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"5m\"\n[[source]]\nname = \"b\"\ntoken = \"0123456789abcdef1\"\nheartbeat = \"2s\"\ngrace = \"1500ms\"\n[[source]]\nname = \"c\"\ntoken = \"0123456789abcdef2\"\n",
    )
    .unwrap();
    let specs: Vec<Option<Spec>> = c.sources.iter().map(|s| s.heartbeat).collect();
    assert_eq!(
        specs,
        vec![
            Some(Spec {
                period_ms: 300_000,
                grace_ms: 300_000
            }),
            Some(Spec {
                period_ms: 2000,
                grace_ms: 1500
            }),
            None,
        ]
    );
    let cases = [
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"5\"\n", 4, "source[0].heartbeat", "unit"),
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"5m\"\ngrace = \"soon\"\n", 5, "source[0].grace", ""),
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = \"500ms\"\n", 4, "source[0].heartbeat", "at least 1s"),
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\ngrace = \"5m\"\n", 4, "source[0].grace", "without heartbeat"),
        ("[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nheartbeat = 300\n", 4, "source[0].heartbeat", "string"),
    ];
    for (text, line, key, msg) in cases {
        expect_error(text, line, key, msg);
    }
}

#[test]
fn clashing_pins_name_the_line() {
    let e = err("[panel]\nled_count = 8\nmode_button_pin = 5\n");
    assert_eq!(e.key.as_deref(), Some("panel.mode_button_pin"));
    assert_eq!(e.line, Some(3));
    assert!(
        e.message.contains("BCM 5") && e.message.contains("tm1637_clk_pin"),
        "{e}"
    );
}

#[test]
fn record_backend_needs_a_path() {
    let e = err("[panel]\nbackend = \"record\"\n");
    assert_eq!(e.key.as_deref(), Some("panel.record_path"));
    assert_eq!(e.line, Some(2), "the line that asks for recording");
}

#[test]
fn every_truncation_of_the_example_gives_a_result_not_a_panic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("banlight.example.toml");
    let text = std::fs::read_to_string(path).unwrap()
        + "[[source]]\nname = \"web-1\"\ntoken = \"0123456789abcdef0123\"\nroutes = [\"blue\", \"red\"]\n";
    for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
        if let Err(e) = parse(&text[..end]) {
            assert!(e.line.is_some(), "{end}: {e}");
        }
    }
}

#[test]
fn errors_at_the_end_of_the_file_do_not_panic() {
    for text in [
        "[[source]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroutes = [\"blue\",\n",
        "[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\nlabel = \"",
        "[panel]\nled_count = ",
        "[[route]]\n",
        "\n\n\n[",
    ] {
        let e = err(text);
        let last = text.lines().count().max(1);
        assert!(e.line.is_some_and(|l| l >= 1 && l <= last), "{text:?}: {e}");
    }
}

#[test]
fn syntax_errors_have_a_line() {
    let e = err("listen = \n");
    assert_eq!(e.line, Some(1));
    let e = Config::load(Path::new("/nonexistent/banlight.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/banlight.toml"));
    assert!(e.message.contains("cannot read"));
}

#[test]
fn durations_parse_with_units() {
    assert_eq!("500ms".parse(), Ok(Millis(500)));
    assert_eq!("30s".parse(), Ok(Millis(30_000)));
    assert_eq!("10m".parse(), Ok(Millis(600_000)));
    assert_eq!("2h".parse(), Ok(Millis(7_200_000)));
    assert_eq!("1d".parse(), Ok(Millis(86_400_000)));
    assert_eq!("0s".parse(), Ok(Millis(0)));
    assert_eq!("10 minutes".parse(), Ok(Millis(600_000)));
    assert_eq!("1h30m".parse(), Ok(Millis(5_400_000)));
    for bad in ["", "10", "s", "-1s", "10 parsecs", "99999999999999999999d"] {
        assert!(bad.parse::<Millis>().is_err(), "{bad}");
    }
}

#[test]
fn mqtt_is_read_and_checked() {
    assert!(parse("").unwrap().mqtt.is_none());
    let c = parse("[mqtt]\nurl = \"mqtts://broker.lan\"\nusername = \"desk\"\npassword_file = \"/etc/banlight/mqtt.pw\"\nsubscribe = true\n").unwrap();
    let m = c.mqtt.unwrap();
    assert!(m.broker.tls);
    assert_eq!(m.broker.port, 8883);
    assert_eq!(
        m.password,
        MqttPassword::File("/etc/banlight/mqtt.pw".into())
    );
    assert_eq!(m.keep_alive_ms, 30_000);
    assert_eq!(m.hooks_topic, DEFAULT_HOOKS_TOPIC);
    assert!(m.subscribe && !m.allow_commands && m.discovery);
    assert_eq!(m.topic_prefix, None, "banlight/<hostname> at start");
    let c = parse(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1884\"\nusername = \"u\"\npassword = \"secret-pw\"\n",
    )
    .unwrap();
    assert!(
        !format!("{c:?}").contains("secret-pw"),
        "Debug never shows the password"
    );
    let cases = [
        ("[mqtt]\nurl = \"tcp://b:1883\"\n", 2, "mqtt.url", "mqtt://"),
        ("[mqtt]\nsubscribe = true\n", 1, "mqtt", "url"),
        ("[mqtt]\nurl = \"mqtt://b\"\nca_file = \"/x.pem\"\n", 3, "mqtt.ca_file", "mqtts"),
        ("[mqtt]\nurl = \"mqtt://b\"\nusername = \"u\"\npassword = \"p\"\npassword_file = \"/p\"\n", 5, "mqtt.password_file", "not both"),
        ("[mqtt]\nurl = \"mqtt://b\"\npassword = \"p\"\n", 3, "mqtt.password", "username"),
        ("[mqtt]\nurl = \"mqtt://b\"\ntopic_prefix = \"a/#\"\n", 3, "mqtt.topic_prefix", "wildcards"),
        ("[mqtt]\nurl = \"mqtt://b\"\nhooks_topic = \"/x\"\n", 3, "mqtt.hooks_topic", "topic"),
        ("[mqtt]\nurl = \"mqtt://b\"\nkeep_alive = \"1s\"\n", 3, "mqtt.keep_alive", "5s"),
        ("[mqtt]\nurl = \"mqtt://b\"\nclient_id = \"a b\"\n", 3, "mqtt.client_id", "letters"),
        ("[mqtt]\nurl = \"mqtt://b\"\noutbox_max = 1\n", 3, "mqtt.outbox_max", "range"),
        ("[mqtt]\nurl = \"mqtt://b\"\nallow_reset = true\n", 3, "mqtt.allow_reset", "unknown"),
    ];
    for (text, line, key, msg) in cases {
        let e = expect_error(text, line, key, msg);
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}

#[test]
fn keys_are_named_from_the_documents_spans_however_they_are_written() {
    expect_error(
        "panel.led_brightness = 40\n",
        1,
        "panel.led_brightness",
        "out of range",
    );
    expect_error(
        "[ panel ] # the LEDs\n\"led_brightness\"=40\n",
        2,
        "panel.led_brightness",
        "out of range",
    );
    expect_error(
        "[[route]]\nname = \"a\"\ncolor = \"#ff0000\"\n\n[[route]]\nname = \"b\"\n  color = \"#ff\"\n",
        7,
        "route[1].color",
        "#rrggbb",
    );
}
