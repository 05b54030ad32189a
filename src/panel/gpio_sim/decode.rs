//! Protocol decoders over recorded pin edges: what an APA102 strip and a
//! TM1637 would make of them, and whether the timing stays inside the parts'
//! limits. Pure: edges in, frames/updates and violations out.
//!
//! Written here because no crate decodes bit-level edge logs for these parts
//! (logic-analyser decoders such as sigrok's are C/Python tools, not crates).

use super::wires::PinEdge;

/// A broken protocol rule, at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub t_ns: u64,
    pub what: String,
}

/// APA102 limits. The datasheet gives no setup/hold figures; 50 ns each is
/// a conservative reading of "data latched on the rising edge" at the
/// strip's 10+ MHz rating, and catches a driver that moves DATA and CLOCK
/// at the same instant.
#[derive(Clone, Copy, Debug)]
pub struct Apa102Limits {
    pub min_setup_ns: u64,
    pub min_hold_ns: u64,
}

impl Default for Apa102Limits {
    fn default() -> Self {
        Apa102Limits {
            min_setup_ns: 50,
            min_hold_ns: 50,
        }
    }
}

/// One LED as it latched: 5-bit global brightness and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Apa102Led {
    pub brightness: u8,
    pub rgb: [u8; 3],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Apa102Frame {
    pub leds: Vec<Apa102Led>,
    /// First clock edge of the start frame to the last of the end frame.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Zero bits clocked after the last LED (before a next start frame).
    pub end_bits: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Apa102Decode {
    pub frames: Vec<Apa102Frame>,
    pub violations: Vec<Violation>,
}

/// Bytes as clocked in, MSB first, each with the time of its first and last
/// clock edge.
fn apa102_bytes(
    edges: &[PinEdge],
    data: u8,
    clock: u8,
    limits: Apa102Limits,
    violations: &mut Vec<Violation>,
) -> Vec<(u8, u64, u64)> {
    let (mut data_level, mut clock_level) = (None::<bool>, None::<bool>);
    let mut last_data_change = 0u64;
    let mut last_rise: Option<u64> = None;
    let mut bits: Vec<(bool, u64)> = Vec::new();
    for e in edges {
        if e.bcm == data {
            let before = data_level.replace(e.high);
            if before.is_some_and(|b| b != e.high) {
                if let (Some(true), Some(rise)) = (clock_level, last_rise) {
                    if e.t_ns - rise < limits.min_hold_ns {
                        violations.push(Violation {
                            t_ns: e.t_ns,
                            what: format!(
                                "APA102: DATA changed {} ns after the rising clock (hold >= {} ns)",
                                e.t_ns - rise,
                                limits.min_hold_ns
                            ),
                        });
                    }
                }
                last_data_change = e.t_ns;
            }
        } else if e.bcm == clock {
            let before = clock_level.replace(e.high);
            if before == Some(false) && e.high {
                let setup = e.t_ns.saturating_sub(last_data_change);
                if setup < limits.min_setup_ns {
                    violations.push(Violation {
                        t_ns: e.t_ns,
                        what: format!(
                            "APA102: DATA set up {setup} ns before the rising clock (>= {} ns)",
                            limits.min_setup_ns
                        ),
                    });
                }
                last_rise = Some(e.t_ns);
                bits.push((data_level.unwrap_or(false), e.t_ns));
            }
        }
    }
    bits.chunks_exact(8)
        .map(|b| {
            let byte = b.iter().fold(0u8, |acc, &(bit, _)| acc << 1 | bit as u8);
            (byte, b[0].1, b[7].1)
        })
        .collect()
}

/// Decodes APA102 frames clocked on `data`/`clock`: a start frame of 32 zero
/// bits, per LED `0b111bbbbb` then B, G, R, then an end frame of zero bits
/// (at least one clock edge per two LEDs). A frame cut short, or one whose
/// end frame is too short for its LEDs to all latch, is a violation.
pub fn decode_apa102(edges: &[PinEdge], data: u8, clock: u8, limits: Apa102Limits) -> Apa102Decode {
    let mut out = Apa102Decode::default();
    let bytes = apa102_bytes(edges, data, clock, limits, &mut out.violations);
    let mut i = 0;
    while i < bytes.len() {
        // A start frame: four zero bytes, then an LED header.
        let zeros = bytes[i..].iter().take_while(|b| b.0 == 0).count();
        if zeros == 0 {
            out.violations.push(Violation {
                t_ns: bytes[i].1,
                what: format!(
                    "APA102: byte {:#04x} outside a frame (no start frame before it)",
                    bytes[i].0
                ),
            });
            i += 1;
            continue;
        }
        if i + zeros >= bytes.len() {
            break; // trailing zeros: an end frame already counted, or idle clocking
        }
        if zeros < 4 {
            out.violations.push(Violation {
                t_ns: bytes[i].1,
                what: format!("APA102: start frame of {} zero bits, needs 32", zeros * 8),
            });
        }
        let start_ns = bytes[i + zeros.saturating_sub(4)].1;
        i += zeros;
        let mut leds = Vec::new();
        while i < bytes.len() && bytes[i].0 & 0xE0 == 0xE0 {
            if i + 4 > bytes.len() {
                out.violations.push(Violation {
                    t_ns: bytes[i].1,
                    what: format!("APA102: LED {} cut short", leds.len()),
                });
                i = bytes.len();
                break;
            }
            leds.push(Apa102Led {
                brightness: bytes[i].0 & 0x1F,
                rgb: [bytes[i + 3].0, bytes[i + 2].0, bytes[i + 1].0],
            });
            i += 4;
        }
        if leds.is_empty() {
            if let Some(&(b, t_ns, _)) = bytes.get(i) {
                out.violations.push(Violation {
                    t_ns,
                    what: format!(
                        "APA102: start frame followed by {b:#04x}, not an LED (0b111xxxxx)"
                    ),
                });
                i += 1;
            }
            continue;
        }
        // End frame: the zero bytes up to the next frame's start frame.
        let trailing = bytes[i..].iter().take_while(|b| b.0 == 0).count();
        let next_frame = i + trailing < bytes.len();
        let end_bytes = if next_frame {
            trailing.saturating_sub(4)
        } else {
            trailing
        };
        let end_ns = if end_bytes > 0 {
            bytes[i + end_bytes - 1].2
        } else {
            bytes[i.saturating_sub(1)].2
        };
        let end_bits = end_bytes as u32 * 8;
        if (end_bits as usize) < leds.len().div_ceil(2) {
            out.violations.push(Violation {
                t_ns: end_ns,
                what: format!(
                    "APA102: end frame of {end_bits} clock edges; {} LEDs need {}",
                    leds.len(),
                    leds.len().div_ceil(2)
                ),
            });
        }
        out.frames.push(Apa102Frame {
            leds,
            start_ns,
            end_ns,
            end_bits,
        });
        i += end_bytes;
    }
    out
}

/// TM1637 limits: the chip takes a clock of at most 250 kHz, so each CLK
/// phase (high and low) inside a transfer lasts at least 2 µs; DIO must be
/// set up before the rising CLK (datasheet: 100 ns).
#[derive(Clone, Copy, Debug)]
pub struct Tm1637Limits {
    pub min_phase_ns: u64,
    pub min_setup_ns: u64,
}

impl Default for Tm1637Limits {
    fn default() -> Self {
        Tm1637Limits {
            min_phase_ns: 2_000,
            min_setup_ns: 100,
        }
    }
}

/// One start..stop transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tm1637Transfer {
    /// The bytes, LSB first on the wire.
    pub bytes: Vec<u8>,
    /// Whether the 9th clock of every byte saw DIO held low (the ACK).
    pub acked: bool,
    /// Ended by a stop condition (else aborted, e.g. after a missing ACK).
    pub stopped: bool,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A whole display update: data command, address + digits, display control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tm1637Update {
    pub segments: [u8; 4],
    pub on: bool,
    pub brightness: u8,
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tm1637Decode {
    pub transfers: Vec<Tm1637Transfer>,
    pub updates: Vec<Tm1637Update>,
    pub violations: Vec<Violation>,
}

#[derive(Default)]
struct Transfer {
    bytes: Vec<u8>,
    acked: bool,
    start_ns: u64,
    bits: u8,
    byte: u8,
    /// The 9th clock of the current byte is high.
    ack_clock: bool,
    nacked: bool,
}

/// Decodes TM1637 transfers on `clk`/`dio`: a start is DIO falling while
/// CLK is high, a stop DIO rising while CLK is high; bits are sampled on the
/// rising CLK, LSB first; the 9th clock of each byte is the ACK (DIO held low
/// by the chip). DIO moving while CLK is high anywhere else is a violation,
/// as are CLK phases shorter than the 250 kHz limit and DIO set up too late.
pub fn decode_tm1637(edges: &[PinEdge], clk: u8, dio: u8, limits: Tm1637Limits) -> Tm1637Decode {
    let mut out = Tm1637Decode::default();
    let violation = |out: &mut Tm1637Decode, t_ns: u64, what: String| {
        out.violations.push(Violation {
            t_ns,
            what: format!("TM1637: {what}"),
        })
    };
    let (mut clk_high, mut dio_high) = (true, true);
    let mut last_clk_edge = 0u64;
    let mut last_dio_change = 0u64;
    let mut cur: Option<Transfer> = None;
    let pins = [clk, dio];
    let mut seen = [false, false];
    for e in edges {
        let Some(i) = pins.iter().position(|p| *p == e.bcm) else {
            continue;
        };
        if !std::mem::replace(&mut seen[i], true) {
            if i == 0 {
                clk_high = e.high;
            } else {
                dio_high = e.high;
            }
            continue;
        }
        let t = e.t_ns;
        if i == 1 {
            if e.high == dio_high {
                continue;
            }
            dio_high = e.high;
            last_dio_change = t;
            if !clk_high {
                continue;
            }
            match (&mut cur, e.high) {
                // start
                (None, false) => {
                    cur = Some(Transfer {
                        acked: true,
                        start_ns: t,
                        ..Transfer::default()
                    })
                }
                (Some(tr), false) => {
                    violation(
                        &mut out,
                        t,
                        format!(
                            "DIO fell while CLK high inside a transfer (bit {} of byte {})",
                            tr.bits,
                            tr.bytes.len()
                        ),
                    );
                }
                // the host let go of DIO in the 9th clock and nobody held it low
                (Some(tr), true) if tr.ack_clock => {
                    tr.nacked = true;
                    tr.acked = false;
                }
                // stop: CLK rose with DIO low after a whole byte (that
                // clock samples a 0 that belongs to no byte), then DIO rises
                (Some(tr), true) if tr.bits == 1 && tr.byte == 0 && !tr.nacked => {
                    let tr = cur.take().expect("in a transfer");
                    out.transfers.push(Tm1637Transfer {
                        bytes: tr.bytes,
                        acked: tr.acked,
                        stopped: true,
                        start_ns: tr.start_ns,
                        end_ns: t,
                    });
                }
                (Some(tr), true) => {
                    violation(
                        &mut out,
                        t,
                        format!(
                            "DIO rose while CLK high in the middle of byte {} (bit {})",
                            tr.bytes.len(),
                            tr.bits
                        ),
                    );
                    cur = None;
                }
                (None, true) => {}
            }
            continue;
        }
        // CLK
        if e.high == clk_high {
            continue;
        }
        let phase = t - last_clk_edge;
        if let Some(tr) = &cur {
            // the first CLK fall after the start ends the start's hold, not a clock phase
            let first = tr.bits == 0 && tr.bytes.is_empty() && !e.high && !tr.ack_clock;
            if phase < limits.min_phase_ns && !first {
                violation(
                    &mut out,
                    t,
                    format!(
                        "CLK {} for {phase} ns (>= {} ns for 250 kHz)",
                        if e.high { "low" } else { "high" },
                        limits.min_phase_ns
                    ),
                );
            }
        }
        clk_high = e.high;
        last_clk_edge = t;
        let Some(tr) = &mut cur else { continue };
        if e.high {
            if tr.bits < 8 {
                let setup = t - last_dio_change;
                if setup < limits.min_setup_ns {
                    violation(
                        &mut out,
                        t,
                        format!(
                            "DIO set up {setup} ns before the rising CLK (>= {} ns)",
                            limits.min_setup_ns
                        ),
                    );
                }
                tr.byte |= (dio_high as u8) << tr.bits;
                tr.bits += 1;
            } else {
                tr.ack_clock = true;
                if dio_high {
                    tr.nacked = true;
                    tr.acked = false;
                }
            }
        } else if tr.ack_clock {
            tr.ack_clock = false;
            tr.bytes.push(tr.byte);
            tr.bits = 0;
            tr.byte = 0;
            if tr.nacked {
                // The driver gives up here without a stop: the transfer is over.
                let tr = cur.take().expect("in a transfer");
                out.transfers.push(Tm1637Transfer {
                    bytes: tr.bytes,
                    acked: false,
                    stopped: false,
                    start_ns: tr.start_ns,
                    end_ns: t,
                });
            }
        }
    }
    out.updates = updates(&out.transfers, &mut out.violations);
    out
}

/// Display updates from transfers: `0x40` (write data, auto-increment),
/// `0xC0 | addr` with the digits, then the display control `0x80 | 8*on | b`.
fn updates(transfers: &[Tm1637Transfer], violations: &mut Vec<Violation>) -> Vec<Tm1637Update> {
    let mut memory = [0u8; 6];
    let mut started: Option<u64> = None;
    let mut out = Vec::new();
    for tr in transfers.iter().filter(|t| t.acked && t.stopped) {
        let Some(&cmd) = tr.bytes.first() else {
            continue;
        };
        match cmd & 0xC0 {
            0x40 => {
                if cmd != 0x40 || tr.bytes.len() != 1 {
                    violations.push(Violation {
                        t_ns: tr.start_ns,
                        what: format!("TM1637: unexpected data command {:02x?}", tr.bytes),
                    });
                }
                started.get_or_insert(tr.start_ns);
            }
            0xC0 => {
                let addr = (cmd & 0x07) as usize;
                for (k, &b) in tr.bytes[1..].iter().enumerate() {
                    if let Some(m) = memory.get_mut(addr + k) {
                        *m = b;
                    }
                }
            }
            0x80 => {
                out.push(Tm1637Update {
                    segments: [memory[0], memory[1], memory[2], memory[3]],
                    on: cmd & 0x08 != 0,
                    brightness: cmd & 0x07,
                    start_ns: started.take().unwrap_or(tr.start_ns),
                    end_ns: tr.end_ns,
                });
            }
            _ => violations.push(Violation {
                t_ns: tr.start_ns,
                what: format!("TM1637: unknown command {cmd:#04x}"),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: u8 = 23;
    const CLOCK: u8 = 24;
    const CLK: u8 = 5;
    const DIO: u8 = 4;

    /// Hand-made edges: a timeline of (pin, level) steps `dt` ns apart.
    struct Wave {
        t: u64,
        edges: Vec<PinEdge>,
    }

    impl Wave {
        fn new(init: &[(u8, bool)]) -> Self {
            let edges = init
                .iter()
                .map(|&(bcm, high)| PinEdge { t_ns: 0, bcm, high })
                .collect();
            Wave { t: 0, edges }
        }
        fn set(&mut self, bcm: u8, high: bool) -> &mut Self {
            self.edges.push(PinEdge {
                t_ns: self.t,
                bcm,
                high,
            });
            self
        }
        fn wait(&mut self, ns: u64) -> &mut Self {
            self.t += ns;
            self
        }
    }

    /// APA102 bytes, MSB first: DATA set, `setup` ns, CLOCK up, `high` ns, CLOCK down.
    fn apa_bytes(w: &mut Wave, bytes: &[u8], setup: u64, high: u64) {
        for &b in bytes {
            for bit in (0..8).rev() {
                w.set(DATA, b >> bit & 1 == 1).wait(setup);
                w.set(CLOCK, true).wait(high);
                w.set(CLOCK, false);
            }
        }
    }

    fn apa_frame(leds: &[(u8, [u8; 3])]) -> Vec<u8> {
        let mut v = vec![0; 4];
        for (b, [r, g, bl]) in leds {
            v.extend([0xE0 | b, *bl, *g, *r]);
        }
        v.extend([0; 4]);
        v
    }

    #[test]
    fn apa102_good_frames_decode() {
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        apa_bytes(
            &mut w,
            &apa_frame(&[(7, [255, 128, 1]), (31, [0, 0, 9])]),
            500,
            500,
        );
        w.wait(16_000_000);
        apa_bytes(&mut w, &apa_frame(&[(3, [1, 2, 3])]), 500, 500);
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        assert_eq!(d.violations, []);
        assert_eq!(d.frames.len(), 2);
        assert_eq!(
            d.frames[0].leds,
            [
                Apa102Led {
                    brightness: 7,
                    rgb: [255, 128, 1]
                },
                Apa102Led {
                    brightness: 31,
                    rgb: [0, 0, 9]
                }
            ]
        );
        assert_eq!(d.frames[0].end_bits, 32);
        // 16 bytes * 8 bits * 1 µs, minus the last half period and the first setup
        assert_eq!(d.frames[0].end_ns - d.frames[0].start_ns, 128_000 - 1000);
        assert_eq!(d.frames[1].leds[0].rgb, [1, 2, 3]);
    }

    #[test]
    fn apa102_bad_timing_and_framing_are_caught() {
        // DATA changes at the same instant as the rising clock: no setup time.
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        apa_bytes(&mut w, &apa_frame(&[(7, [255, 0, 0])]), 0, 500);
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        assert!(
            d.violations.iter().any(|v| v.what.contains("set up 0 ns")),
            "{d:?}"
        );
        // DATA changes right after the rising edge, while the clock is high.
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        w.set(DATA, true).wait(500).set(CLOCK, true).wait(10);
        w.set(DATA, false).wait(490).set(CLOCK, false);
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        assert!(
            d.violations.iter().any(|v| v.what.contains("hold")),
            "{d:?}"
        );
        // A short start frame, then an LED cut short.
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        apa_bytes(&mut w, &[0, 0, 0xE7, 1, 2], 500, 500);
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        let what: Vec<&str> = d.violations.iter().map(|v| v.what.as_str()).collect();
        assert!(
            what.iter().any(|w| w.contains("start frame of 16")),
            "{what:?}"
        );
        assert!(what.iter().any(|w| w.contains("cut short")), "{what:?}");
        // No end frame at all: the last LEDs never see their data.
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        apa_bytes(
            &mut w,
            &[0, 0, 0, 0, 0xE1, 1, 1, 1, 0xE1, 2, 2, 2],
            500,
            500,
        );
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        assert!(
            d.violations
                .iter()
                .any(|v| v.what.contains("end frame of 0")),
            "{d:?}"
        );
        // A start frame, then something that is no LED.
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        apa_bytes(&mut w, &[0, 0, 0, 0, 0x12, 0, 0, 0, 0], 500, 500);
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        assert!(
            d.violations.iter().any(|v| v.what.contains("not an LED")),
            "{d:?}"
        );
        assert_eq!(d.frames, []);
        // Bytes with no start frame before them.
        let mut w = Wave::new(&[(DATA, false), (CLOCK, false)]);
        apa_bytes(&mut w, &[0xE1, 1, 1, 1], 500, 500);
        let d = decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default());
        assert!(
            d.violations
                .iter()
                .any(|v| v.what.contains("outside a frame")),
            "{d:?}"
        );
    }

    /// A TM1637 transfer as the chip wants it; `ack` = the chip holds DIO low
    /// in the 9th clock; `phase` = each CLK half period.
    fn tm_transfer(w: &mut Wave, bytes: &[u8], ack: bool, phase: u64) {
        // start: DIO falls while CLK is high
        w.set(DIO, true)
            .set(CLK, true)
            .wait(phase)
            .set(DIO, false)
            .wait(phase);
        for &b in bytes {
            for bit in 0..8 {
                w.set(CLK, false).set(DIO, b >> bit & 1 == 1).wait(phase);
                w.set(CLK, true).wait(phase);
            }
            w.set(CLK, false).set(DIO, false).wait(phase);
            w.set(CLK, true);
            if !ack {
                // released, nobody pulls: DIO rises while CLK is high
                w.set(DIO, true);
                w.wait(phase).set(CLK, false).set(DIO, false).wait(phase);
                return;
            }
            w.wait(phase).set(CLK, false).wait(phase);
        }
        // stop: DIO rises while CLK is high
        w.set(DIO, false)
            .set(CLK, true)
            .wait(phase)
            .set(DIO, true)
            .wait(phase);
    }

    fn tm_update(w: &mut Wave, segments: [u8; 4], control: u8, phase: u64) {
        tm_transfer(w, &[0x40], true, phase);
        let mut cmd = vec![0xC0];
        cmd.extend(segments);
        tm_transfer(w, &cmd, true, phase);
        tm_transfer(w, &[control], true, phase);
    }

    #[test]
    fn tm1637_good_updates_decode() {
        let mut w = Wave::new(&[(CLK, true), (DIO, true)]);
        tm_update(&mut w, [0x3F, 0x06, 0x5B, 0xCF], 0x8B, 20_000);
        w.wait(1_000_000);
        tm_update(&mut w, [0, 0, 0, 0x06], 0x80, 20_000);
        let d = decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default());
        assert_eq!(d.violations, []);
        assert_eq!(d.transfers.len(), 6);
        assert!(d.transfers.iter().all(|t| t.acked && t.stopped));
        assert_eq!(d.transfers[1].bytes, [0xC0, 0x3F, 0x06, 0x5B, 0xCF]);
        assert_eq!(d.updates.len(), 2);
        assert_eq!(d.updates[0].segments, [0x3F, 0x06, 0x5B, 0xCF]);
        assert_eq!((d.updates[0].on, d.updates[0].brightness), (true, 3));
        assert_eq!((d.updates[1].on, d.updates[1].segments[3]), (false, 0x06));
        assert!(d.updates[0].end_ns > d.updates[0].start_ns);
    }

    #[test]
    fn tm1637_missing_ack_is_an_aborted_transfer() {
        let mut w = Wave::new(&[(CLK, true), (DIO, true)]);
        tm_transfer(&mut w, &[0x40], false, 20_000);
        let d = decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default());
        assert_eq!(d.violations, []);
        assert_eq!(d.transfers.len(), 1);
        assert_eq!(d.transfers[0].bytes, [0x40]);
        assert!(!d.transfers[0].acked && !d.transfers[0].stopped);
        assert_eq!(d.updates, []);
    }

    #[test]
    fn tm1637_bad_timing_and_dio_moves_are_caught() {
        // A 500 kHz clock (1 µs phases) is too fast.
        let mut w = Wave::new(&[(CLK, true), (DIO, true)]);
        tm_update(&mut w, [1, 2, 3, 4], 0x88, 1_000);
        let d = decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default());
        assert!(
            d.violations.iter().any(|v| v.what.contains("for 1000 ns")),
            "{d:?}"
        );
        assert_eq!(d.updates.len(), 1, "the bytes still decode");
        // DIO moves while CLK is high in the middle of a byte.
        let mut w = Wave::new(&[(CLK, true), (DIO, true)]);
        w.set(CLK, true).wait(20_000).set(DIO, false).wait(20_000);
        for _ in 0..3 {
            w.set(CLK, false).set(DIO, false).wait(20_000);
            w.set(CLK, true).wait(20_000);
        }
        w.set(DIO, true).wait(20_000);
        let d = decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default());
        assert!(
            d.violations
                .iter()
                .any(|v| v.what.contains("middle of byte 0 (bit 3)")),
            "{d:?}"
        );
        // DIO changes at the same instant CLK rises: no setup time.
        let mut w = Wave::new(&[(CLK, true), (DIO, true)]);
        w.set(CLK, true).wait(20_000).set(DIO, false).wait(20_000);
        w.set(CLK, false)
            .wait(20_000)
            .set(DIO, true)
            .set(CLK, true)
            .wait(20_000);
        let d = decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default());
        assert!(
            d.violations.iter().any(|v| v.what.contains("set up 0 ns")),
            "{d:?}"
        );
        // A second start inside a transfer.
        let mut w = Wave::new(&[(CLK, true), (DIO, true)]);
        w.set(CLK, true).wait(20_000).set(DIO, false).wait(20_000);
        w.set(CLK, false)
            .set(DIO, true)
            .wait(20_000)
            .set(CLK, true)
            .wait(20_000);
        w.set(DIO, false).wait(20_000);
        let d = decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default());
        assert!(
            d.violations
                .iter()
                .any(|v| v.what.contains("DIO fell while CLK high")),
            "{d:?}"
        );
    }

    #[test]
    fn initial_levels_are_not_edges() {
        let w = Wave::new(&[(CLK, false), (DIO, false), (DATA, true), (CLOCK, true)]);
        assert_eq!(
            decode_tm1637(&w.edges, CLK, DIO, Tm1637Limits::default()),
            Tm1637Decode::default()
        );
        assert_eq!(
            decode_apa102(&w.edges, DATA, CLOCK, Apa102Limits::default()),
            Apa102Decode::default()
        );
    }
}
