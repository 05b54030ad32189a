//! Simulated GPIO wires: pins with pull-ups, a TM1637 on CLK/DIO that
//! acknowledges each byte (or is missing: switchable at runtime), buttons
//! that bounce, and a log of every level change with its time.
//!
//! Time is simulated in nanoseconds: a delay advances it instead of
//! sleeping, so the recorded timestamps show exactly what the drivers' delays
//! (and `pin_write_ns` per pin write) add up to. With `follow_real_time` the
//! clock also never falls behind the monotonic clock, so edges of a running
//! daemon are spaced as in real life; the figures use the purely simulated one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::{mpsc as std_mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, OutputPin};

use crate::panel::pi::gpio::{
    Alive, EdgeHandler, InputEdge, InterruptPath, PanelGpio, WatchError, Watched,
};
use crate::panel::pi::pin_name;
use crate::panel::pi::tm1637::OpenDrainLine;

/// Where a real-time sim clock starts: like CLOCK_MONOTONIC, which counts
/// from boot, it is well past zero, so events can be dated seconds back.
const REAL_TIME_BASE_NS: u64 = 3600 * 1_000_000_000;

/// Edges kept when nobody takes them (a long run): the oldest go first.
const LOG_CAP: usize = 1 << 20;

/// One level change on a wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinEdge {
    /// Simulated time in nanoseconds.
    pub t_ns: u64,
    pub bcm: u8,
    pub high: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drive {
    /// Driven by the host.
    Output(bool),
    /// Input with pull-up: high unless something outside pulls it low.
    Released,
}

#[derive(Debug)]
struct Pin {
    drive: Drive,
    /// A button closed to ground, or the TM1637 acknowledging.
    pulled_low: bool,
    /// Held low from outside for good: a solder bridge to GND, or a module
    /// without VCC whose chip sinks the line through its input protection.
    stuck_low: bool,
    /// A released line rises through its pull-up against the module's
    /// capacitor (an RC curve): this long after it is let go it reads high.
    rise_ns: u64,
    /// When a released, unheld line reads high (`None`: something holds it).
    high_at: Option<u64>,
    /// The level last logged.
    level: bool,
}

impl Pin {
    fn free(&self) -> bool {
        self.drive == Drive::Released && !self.pulled_low && !self.stuck_low
    }

    /// After a change at `t`: when a freed line will read high. A line that
    /// was already high (driven high, then released) stays high.
    fn update_rise(&mut self, t: u64) {
        match (self.free(), self.high_at) {
            (false, _) => self.high_at = None,
            (true, None) => {
                self.high_at = Some(if self.level { t } else { t + self.rise_ns });
            }
            (true, Some(_)) => {}
        }
    }

    fn level_at(&self, t: u64) -> bool {
        match self.drive {
            Drive::Output(high) => high,
            Drive::Released => self.free() && self.high_at.is_some_and(|h| t >= h),
        }
    }
}

/// The TM1637's side of the bus, as far as acknowledging goes: it counts the
/// bits after a start and pulls DIO low from the 8th falling CLK edge to the
/// 9th. Decoding is left to `decode`, from the recorded edges.
#[derive(Debug)]
struct Chip {
    clk: u8,
    dio: u8,
    acks: bool,
    last: (bool, bool),
    receiving: bool,
    bits: u8,
    ack_clock: bool,
    pulling: bool,
}

impl Chip {
    fn observe(&mut self, clk: bool, dio: bool) {
        let (c0, d0) = self.last;
        self.last = (clk, dio);
        if c0 && clk && d0 && !dio {
            self.receiving = true;
            self.bits = 0;
            self.ack_clock = false;
        } else if c0 && clk && !d0 && dio {
            self.receiving = false;
            self.pulling = false;
        } else if !c0 && clk && self.receiving && !self.ack_clock {
            self.bits += 1;
        } else if c0 && !clk && self.receiving {
            if self.ack_clock {
                self.ack_clock = false;
                self.pulling = false;
                self.bits = 0;
            } else if self.bits == 8 {
                self.ack_clock = true;
                self.pulling = self.acks;
            }
        }
    }
}

struct State {
    t_ns: u64,
    real_epoch: Option<Instant>,
    pin_write_ns: u64,
    pins: BTreeMap<u8, Pin>,
    log: VecDeque<PinEdge>,
    dropped: u64,
    chip: Option<Chip>,
    /// The watched inputs (pin -> index in the watch) and the channel to
    /// their interrupt thread; each edge goes with the real instant it was
    /// played: see `watch_inputs`.
    watched: BTreeMap<u8, usize>,
    watch_tx: Option<std_mpsc::Sender<Interrupt>>,
    /// Reads of a line the host was driving low itself: it reads its own
    /// low, so a missing TM1637 would pass for an ACK on the wires.
    reads_of_own_drive: u64,
    /// Lines a kernel driver or another process has requested, with the
    /// consumer label the kernel shows for them (`gpioinfo`).
    held: BTreeMap<u8, String>,
    /// Why the interrupt path broke (an error on the next poll), if it did.
    interrupt_fault: Option<String>,
    /// Pins held low from outside (`short_to_ground`), claimed or not yet:
    /// a bridge is there before any program takes the pin.
    stuck: BTreeSet<u8>,
}

impl State {
    fn now(&mut self) -> u64 {
        if let Some(epoch) = self.real_epoch {
            let real = REAL_TIME_BASE_NS + epoch.elapsed().as_nanos() as u64;
            self.t_ns = self.t_ns.max(real);
        }
        self.t_ns
    }

    fn push(&mut self, edge: PinEdge) {
        if self.log.len() >= LOG_CAP {
            self.log.pop_front();
            self.dropped += 1;
        }
        self.log.push_back(edge);
    }

    /// Logs the slow rises that completed before `t`, each at the time it
    /// completed, and lets the chip see them then (nothing else changed
    /// meanwhile: every other change goes through `set_drive`).
    fn catch_up(&mut self, t: u64) {
        loop {
            let next = self
                .pins
                .iter()
                .filter(|(_, p)| !p.level && p.level_at(t))
                .filter_map(|(&bcm, p)| p.high_at.map(|h| (h, bcm)))
                .min();
            let Some((at, bcm)) = next else {
                return;
            };
            self.settle(at);
            if self.pins.get(&bcm).is_some_and(|p| !p.level) {
                return; // cannot happen; never loop for ever
            }
        }
    }

    /// Logs the level changes since the last call at `t`, and lets the chip
    /// react (its ACK changes DIO, which is logged too).
    fn settle(&mut self, t: u64) {
        for _ in 0..4 {
            let mut changed = false;
            for p in self.pins.values_mut() {
                p.update_rise(t);
            }
            let edges: Vec<PinEdge> = self
                .pins
                .iter_mut()
                .filter(|(_, p)| p.level_at(t) != p.level)
                .map(|(&bcm, p)| {
                    p.level = p.level_at(t);
                    PinEdge {
                        t_ns: t,
                        bcm,
                        high: p.level,
                    }
                })
                .collect();
            for e in edges {
                self.push(e);
                changed = true;
            }
            if let Some(chip) = &mut self.chip {
                let level = |bcm: u8| self.pins.get(&bcm).is_none_or(|p| p.level);
                let (clk, dio) = (level(chip.clk), level(chip.dio));
                chip.observe(clk, dio);
                if let Some(p) = self.pins.get_mut(&chip.dio) {
                    p.pulled_low = chip.pulling;
                    p.update_rise(t);
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn set_drive(&mut self, bcm: u8, drive: Drive) {
        let t = self.now();
        self.catch_up(t);
        self.t_ns += self.pin_write_ns;
        if let Some(p) = self.pins.get_mut(&bcm) {
            p.drive = drive;
        }
        self.settle(t);
    }
}

/// Simulated GPIO wires; clones share them (the test keeps one to press
/// buttons and read the log while the panel drives the pins).
#[derive(Clone)]
pub struct SimGpio {
    state: Arc<Mutex<State>>,
}

impl SimGpio {
    /// Wires on a purely simulated clock starting at 0.
    pub fn new() -> Self {
        SimGpio {
            state: Arc::new(Mutex::new(State {
                t_ns: 0,
                real_epoch: None,
                pin_write_ns: 0,
                pins: BTreeMap::new(),
                log: VecDeque::new(),
                dropped: 0,
                chip: None,
                watched: BTreeMap::new(),
                watch_tx: None,
                reads_of_own_drive: 0,
                held: BTreeMap::new(),
                interrupt_fault: None,
                stuck: BTreeSet::new(),
            })),
        }
    }

    /// Wires whose clock also follows the monotonic clock (for a running daemon).
    pub fn following_real_time() -> Self {
        let sim = Self::new();
        {
            let mut s = sim.lock();
            s.real_epoch = Some(Instant::now());
            s.t_ns = REAL_TIME_BASE_NS;
        }
        sim
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("sim gpio lock")
    }

    /// What one pin write costs on the modelled hardware (default 0).
    pub fn set_pin_write_ns(&self, ns: u64) {
        self.lock().pin_write_ns = ns;
    }

    /// A TM1637 on these two pins, acknowledging when `acks` (else: missing).
    pub fn attach_tm1637(&self, clk: u8, dio: u8, acks: bool) {
        let mut s = self.lock();
        let level = |bcm: u8| s.pins.get(&bcm).is_none_or(|p| p.level);
        let last = (level(clk), level(dio));
        s.chip = Some(Chip {
            clk,
            dio,
            acks,
            last,
            receiving: false,
            bits: 0,
            ack_clock: false,
            pulling: false,
        });
    }

    /// Plug the display in (`true`) or pull it out, while running.
    pub fn set_display_acks(&self, acks: bool) {
        if let Some(chip) = &mut self.lock().chip {
            chip.acks = acks;
        }
    }

    /// A kernel driver or another process holds `bcm` under `consumer`
    /// (`dtoverlay=gpio-shutdown` shows as "shutdown"): requesting its
    /// interrupt fails with EBUSY, as the kernel's GPIO character device does.
    pub fn hold_line(&self, bcm: u8, consumer: &str) {
        self.lock().held.insert(bcm, consumer.to_string());
    }

    /// The interrupt path breaks: the next poll of the watched inputs fails
    /// with `why` (as a read error on the line's file descriptor would).
    pub fn fail_interrupts(&self, why: &str) {
        let mut s = self.lock();
        s.interrupt_fault = Some(why.to_string());
        if let Some(tx) = &s.watch_tx {
            let _ = tx.send(Interrupt::Failed(why.to_string()));
        }
    }

    /// Holds a claimed pin low for good (`true`): a solder bridge to the GND
    /// pin beside it (BCM 4 is pin 7, GND pin 9), until `false`.
    pub fn short_to_ground(&self, bcm: u8, stuck: bool) {
        let mut s = self.lock();
        let t = s.now();
        s.catch_up(t);
        if stuck {
            s.stuck.insert(bcm);
        } else {
            s.stuck.remove(&bcm);
        }
        if let Some(p) = s.pins.get_mut(&bcm) {
            p.stuck_low = stuck;
        }
        s.settle(t);
    }

    /// The display's VCC is open (`false`) or connected: an unpowered module
    /// does not acknowledge, and its chip sinks DIO through its input
    /// protection (CLK back-feeds it), so DIO sits low.
    pub fn power_display(&self, powered: bool) {
        let dio = {
            let mut s = self.lock();
            match &mut s.chip {
                Some(chip) => {
                    chip.acks = powered;
                    chip.dio
                }
                None => return,
            }
        };
        self.short_to_ground(dio, !powered);
    }

    /// Models the module's RC on a released line: after the host or the
    /// chip lets go it takes `ns` to read high (10 kΩ against 1-10 nF:
    /// 10-100 µs). 0, the default, is an ideal wire.
    pub fn set_rise_ns(&self, bcm: u8, ns: u64) {
        if let Some(p) = self.lock().pins.get_mut(&bcm) {
            p.rise_ns = ns;
        }
    }

    /// Simulated now, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.lock().now()
    }

    pub fn advance(&self, ns: u64) {
        let mut s = self.lock();
        let t = s.now();
        s.t_ns = t + ns;
    }

    /// Takes the edges logged so far (and how many were dropped for room).
    pub fn take_edges(&self) -> (Vec<PinEdge>, u64) {
        let mut s = self.lock();
        let t = s.now();
        s.catch_up(t);
        let dropped = std::mem::take(&mut s.dropped);
        (s.log.drain(..).collect(), dropped)
    }

    /// How often an open-drain line was read while the host drove it low.
    pub fn reads_of_own_drive(&self) -> u64 {
        self.lock().reads_of_own_drive
    }

    /// The level on a wire (`None`: nobody claimed the pin).
    pub fn level(&self, bcm: u8) -> Option<bool> {
        let mut s = self.lock();
        let t = s.now();
        s.catch_up(t);
        s.pins.get(&bcm).map(|p| p.level_at(t))
    }

    /// A button to ground on `bcm` changes level at the given offsets from
    /// `ago` before now (`true` = closed): the edges are logged with their
    /// times and handed to the pin's interrupt thread, as the kernel does
    /// with its queued, timestamped events.
    pub fn play_button(&self, bcm: u8, ago: Duration, steps: &[(Duration, bool)]) {
        let mut s = self.lock();
        let now = s.now();
        let played = Instant::now();
        let t0 = now.saturating_sub(ago.as_nanos() as u64);
        for &(offset, closed) in steps {
            let t = t0 + offset.as_nanos() as u64;
            let Some(p) = s.pins.get_mut(&bcm) else {
                return;
            };
            let before = p.level_at(t);
            p.pulled_low = closed;
            p.update_rise(t);
            let after = p.level_at(t);
            if before == after {
                continue;
            }
            p.level = after;
            s.push(PinEdge {
                t_ns: t,
                bcm,
                high: after,
            });
            if let (Some(&index), Some(tx)) = (s.watched.get(&bcm), &s.watch_tx) {
                let _ = tx.send(Interrupt::Edge(
                    index,
                    InputEdge {
                        falling: !after,
                        at: Duration::from_nanos(t),
                        // the clock when played; the interrupt thread adds
                        // the time the edge waited for delivery
                        now: Duration::from_nanos(now),
                    },
                    played,
                ));
            }
        }
    }

    /// A press with contact bounce that began `ago` and is held now.
    pub fn press_and_hold(&self, bcm: u8, ago: Duration) {
        self.play_button(bcm, ago, &bounce(Duration::ZERO, true));
    }

    /// A press with contact bounce held for `hold`, that began `ago`.
    pub fn press(&self, bcm: u8, ago: Duration, hold: Duration) {
        let mut steps = bounce(Duration::ZERO, true);
        steps.extend(bounce(hold, false));
        self.play_button(bcm, ago, &steps);
    }

    fn claim(&self, bcm: u64, what: &str, drive: Drive) -> anyhow::Result<u8> {
        let mut s = self.lock();
        let pin = u8::try_from(bcm).ok().filter(|b| *b <= 27);
        let Some(bcm8) = pin else {
            return Err(anyhow!("{what} on BCM {bcm}: no such GPIO"));
        };
        if s.pins.contains_key(&bcm8) {
            return Err(anyhow!(
                "{what} on {}: the pin is busy (claimed twice)",
                pin_name(bcm)
            ));
        }
        let stuck_low = s.stuck.contains(&bcm8);
        let level = (drive == Drive::Output(true) || drive == Drive::Released) && !stuck_low;
        let t = s.now();
        s.pins.insert(
            bcm8,
            Pin {
                drive,
                pulled_low: false,
                stuck_low,
                rise_ns: 0,
                high_at: level.then_some(t),
                level,
            },
        );
        s.push(PinEdge {
            t_ns: t,
            bcm: bcm8,
            high: level,
        });
        if let Some(chip) = &mut s.chip {
            if chip.clk == bcm8 || chip.dio == bcm8 {
                let (c, d) = chip.last;
                chip.last = if chip.clk == bcm8 {
                    (level, d)
                } else {
                    (c, level)
                };
            }
        }
        Ok(bcm8)
    }
}

impl Default for SimGpio {
    fn default() -> Self {
        Self::new()
    }
}

/// Contact bounce of a cheap tactile switch: the contact chatters for ~2 ms
/// before it settles at `closed`.
fn bounce(at: Duration, closed: bool) -> Vec<(Duration, bool)> {
    let us = |n: u64| at + Duration::from_micros(n);
    vec![
        (us(0), closed),
        (us(300), !closed),
        (us(700), closed),
        (us(1200), !closed),
        (us(2000), closed),
    ]
}

/// A simulated push-pull output.
pub struct SimOutput {
    sim: SimGpio,
    bcm: u8,
}

impl ErrorType for SimOutput {
    type Error = Infallible;
}

impl OutputPin for SimOutput {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.sim.lock().set_drive(self.bcm, Drive::Output(false));
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.sim.lock().set_drive(self.bcm, Drive::Output(true));
        Ok(())
    }
}

/// A simulated line driven low or released to its pull-up.
pub struct SimLine {
    sim: SimGpio,
    bcm: u8,
}

impl OpenDrainLine for SimLine {
    type Error = Infallible;

    fn drive_low(&mut self) -> Result<(), Infallible> {
        self.sim.lock().set_drive(self.bcm, Drive::Output(false));
        Ok(())
    }

    fn release(&mut self) -> Result<(), Infallible> {
        self.sim.lock().set_drive(self.bcm, Drive::Released);
        Ok(())
    }

    fn is_high(&mut self) -> Result<bool, Infallible> {
        let mut s = self.sim.lock();
        let t = s.now();
        s.catch_up(t);
        s.t_ns += s.pin_write_ns;
        let pin = s.pins.get(&self.bcm);
        let own = pin.is_some_and(|p| p.drive == Drive::Output(false));
        let high = pin.is_none_or(|p| p.level_at(t));
        if own {
            s.reads_of_own_drive += 1;
        }
        Ok(high)
    }
}

/// A delay that advances the simulated clock.
pub struct SimDelay(SimGpio);

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.advance(ns.into());
    }
}

/// What the simulated kernel hands the interrupt thread.
enum Interrupt {
    Edge(usize, InputEdge, Instant),
    /// A poll failed: the thread reports it and ends.
    Failed(String),
}

/// Keeps the watched inputs' interrupt thread alive; dropping it ends the thread.
struct Watch {
    sim: SimGpio,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut s = self.sim.lock();
        s.watched.clear();
        s.watch_tx = None;
    }
}

impl PanelGpio for SimGpio {
    type Output = SimOutput;
    type Line = SimLine;
    type Delay = SimDelay;

    fn output(&mut self, bcm: u64, high: bool, what: &str) -> anyhow::Result<SimOutput> {
        let bcm = self.claim(bcm, what, Drive::Output(high))?;
        Ok(SimOutput {
            sim: self.clone(),
            bcm,
        })
    }

    fn open_drain(&mut self, bcm: u64, what: &str) -> anyhow::Result<SimLine> {
        let bcm = self.claim(bcm, what, Drive::Released)?;
        Ok(SimLine {
            sim: self.clone(),
            bcm,
        })
    }

    fn delay(&self) -> SimDelay {
        SimDelay(self.clone())
    }

    fn watch_inputs(
        &mut self,
        inputs: &[Watched<'_>],
        mut on_edge: EdgeHandler,
        path: InterruptPath,
    ) -> Result<(Box<dyn Send>, Vec<bool>), WatchError> {
        // As the kernel's GPIO character device: each line is requested here,
        // and one held by a driver or another process is refused (EBUSY).
        let mut low_at_start = Vec::new();
        let mut bcms = Vec::new();
        for (index, w) in inputs.iter().enumerate() {
            if self.line_holder(w.bcm).is_some() {
                return Err(WatchError {
                    index,
                    busy: true,
                    cause: "Device or resource busy (os error 16)".into(),
                });
            }
            let bcm = self
                .claim(w.bcm, w.what, Drive::Released)
                .map_err(|e| WatchError {
                    index,
                    busy: false,
                    cause: e.to_string(),
                })?;
            low_at_start.push(!self.level(bcm).unwrap_or(true));
            bcms.push(bcm);
        }
        let (tx, rx) = std_mpsc::channel::<Interrupt>();
        {
            let mut s = self.lock();
            for (index, bcm) in bcms.into_iter().enumerate() {
                s.watched.insert(bcm, index);
            }
            if let Some(why) = s.interrupt_fault.clone() {
                let _ = tx.send(Interrupt::Failed(why));
            }
            s.watch_tx = Some(tx);
        }
        std::thread::Builder::new()
            .name("gpio-sim-buttons".into())
            .spawn(move || {
                let _alive = Alive(path.clone());
                // Ends when the `Watch` drops the sender. As on a Pi, the
                // kernel's clock keeps running while an edge waits to be read:
                // "now" at delivery is the simulated time it was played plus
                // the real time since, so an edge's age, and the daemon-clock
                // time made from it, does not depend on how fast this thread
                // gets to it (the simulated clock stands still meanwhile).
                for msg in rx {
                    match msg {
                        Interrupt::Edge(index, mut edge, played) => {
                            edge.now += played.elapsed();
                            on_edge(index, edge);
                        }
                        Interrupt::Failed(why) => {
                            path.broke(format!("polling the interrupts failed: {why}"));
                            return;
                        }
                    }
                }
            })
            .map_err(|e| WatchError {
                index: 0,
                busy: false,
                cause: format!("cannot start the interrupt thread: {e}"),
            })?;
        Ok((Box::new(Watch { sim: self.clone() }), low_at_start))
    }

    fn line_holder(&self, bcm: u64) -> Option<String> {
        let bcm = u8::try_from(bcm).ok()?;
        self.lock().held.get(&bcm).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_pull_ups_and_the_log() {
        let mut sim = SimGpio::new();
        let mut out = sim.output(23, false, "data").unwrap();
        let mut line = sim.open_drain(4, "DIO").unwrap();
        assert!(sim
            .output(23, true, "again")
            .err()
            .unwrap()
            .to_string()
            .contains("busy"));
        assert!(sim.output(28, true, "x").is_err());
        assert_eq!((sim.level(23), sim.level(4)), (Some(false), Some(true)));
        sim.delay().delay_ns(250);
        out.set_high().unwrap();
        line.drive_low().unwrap();
        assert!(!line.is_high().unwrap());
        assert_eq!(sim.reads_of_own_drive(), 1, "read while driving low");
        line.release().unwrap();
        assert!(line.is_high().unwrap(), "the pull-up lifts a released line");
        assert_eq!(sim.reads_of_own_drive(), 1);
        let (edges, dropped) = sim.take_edges();
        assert_eq!(dropped, 0);
        let e = |t_ns, bcm, high| PinEdge { t_ns, bcm, high };
        assert_eq!(
            edges,
            [
                e(0, 23, false),
                e(0, 4, true),
                e(250, 23, true),
                e(250, 4, false),
                e(250, 4, true)
            ]
        );
        assert!(sim.take_edges().0.is_empty());
    }

    #[test]
    fn the_chip_acks_only_when_present() {
        let mut sim = SimGpio::new();
        sim.attach_tm1637(5, 4, false);
        let mut clk = sim.output(5, true, "CLK").unwrap();
        let mut dio = sim.open_drain(4, "DIO").unwrap();
        // start, 8 bits, then the 9th clock with DIO released
        let byte = |clk: &mut SimOutput, dio: &mut SimLine| {
            dio.drive_low().unwrap();
            for _ in 0..8 {
                clk.set_low().unwrap();
                clk.set_high().unwrap();
            }
            clk.set_low().unwrap();
            dio.release().unwrap();
            clk.set_high().unwrap();
            let acked = !dio.is_high().unwrap();
            clk.set_low().unwrap();
            acked
        };
        assert!(!byte(&mut clk, &mut dio), "missing: nobody pulls DIO low");
        dio.release().unwrap();
        clk.set_high().unwrap();
        sim.set_display_acks(true);
        assert!(byte(&mut clk, &mut dio), "present: the chip holds DIO low");
        assert!(dio.is_high().unwrap(), "and lets go after the 9th clock");
    }
}
