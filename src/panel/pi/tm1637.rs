//! The TM1637 4-digit display through `tm1637-embedded-hal`, generic over
//! embedded-hal pins and a delay, plus the open-drain DIO wrapper it needs on
//! a Pi. No rppal here: tested with embedded-hal-mock and a simulated chip.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin};
use tm1637_embedded_hal::{tokens::Blocking, Brightness, Error as TmError, TM1637};

/// Half a clock period on the TM1637 wires. The chip takes up to 250 kHz
/// (2 µs); modules add pull-ups and small capacitors, so stay well below.
/// One frame (three commands, 7 bytes) then takes about 3 ms, and a missing
/// display is noticed after 255 polls of DIO, about 5 ms.
pub const BIT_DELAY_US: u32 = 20;

/// Time for the pull-up to lift DIO after the host lets go, before reading.
pub const SETTLE_NS: u32 = 5_000;

/// How long a released DIO may take to read high before it counts as held
/// low, in µs (each poll waits 1 µs and reads the pin): ten times the
/// slowest module edge seen (100 µs), well short of anything a person sees.
pub const RISE_TIMEOUT_US: u32 = 1000;

/// A pin error, or DIO that never rose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError<E> {
    Pin(E),
    /// DIO read low for `RISE_TIMEOUT_US` after it was let go; says when.
    /// Nothing answers then: a chip only pulls DIO low for its ACK, so this
    /// is a short to GND, or a module without VCC sinking the line.
    HeldLow(&'static str),
}

impl<E: embedded_hal::digital::Error> embedded_hal::digital::Error for LineError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            LineError::Pin(e) => e.kind(),
            LineError::HeldLow(_) => ErrorKind::Other,
        }
    }
}

/// When DIO did not rise: released for START (or a 1 bit, or STOP).
pub const WHEN_RELEASED: &str = "when released (before START)";
/// When DIO did not rise: the ACK should have ended at the 9th clock.
pub const WHEN_AFTER_ACK: &str = "after the 9th clock";

/// CLK with the error type of `OpenDrain` (the TM1637 driver wants one
/// error type for both pins). CLK is push-pull: the Pi drives the module's
/// capacitor through a few tens of ohms, so its edges are fast (< 1 µs).
pub struct Clk<P>(pub P);

impl<P: OutputPin> ErrorType for Clk<P> {
    type Error = LineError<P::Error>;
}

impl<P: OutputPin> OutputPin for Clk<P> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0.set_low().map_err(LineError::Pin)
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.set_high().map_err(LineError::Pin)
    }
}

/// A line that is either pulled low by us or left to its pull-up.
pub trait OpenDrainLine {
    type Error: embedded_hal::digital::Error;
    /// Drive the line low.
    fn drive_low(&mut self) -> Result<(), Self::Error>;
    /// Stop driving (input with pull-up): the line is high unless the chip pulls it low.
    fn release(&mut self) -> Result<(), Self::Error>;
    /// The level on the wire.
    fn is_high(&mut self) -> Result<bool, Self::Error>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drive {
    Unknown,
    Low,
    Released,
}

/// DIO as an open-drain pin: `set_low` drives low, `set_high` releases the
/// line, and a read first releases it. The last rule matters:
/// `tm1637-embedded-hal` sets DIO low before the ninth (ACK) clock and then
/// reads it; with a push-pull pin it would read its own low and take every
/// write as acknowledged, so a missing display would never be noticed.
///
/// It also checks what it releases. DIO is let go to its pull-up (the chip
/// only ever pulls it low), so whenever it is released it must rise: before
/// START, for a 1 bit, for STOP, and after the 9th clock, when the chip ends
/// its ACK. A line that stays low is a short or an unpowered module, which
/// the ACK read alone takes for a chip (`LineError::HeldLow`).
///
/// And it waits for the rise. Datasheet reasoning: the TM1637 samples DIO
/// on the rising CLK edge and wants it settled before (data set-up), with
/// V_IH = 0.7 VDD. Modules put 1-10 nF on DIO against a 10 kΩ pull-up, so
/// a released DIO climbs the RC curve V = VDD (1 - e^(-t/RC)) for 10-100
/// µs, longer than the 20 µs bit delay: a fixed delay clocks a 1 out as a
/// 0, and the chip ACKs the byte it misread. So after each release DIO is
/// read back until it is high (1 µs polls, at most `RISE_TIMEOUT_US`), and
/// then the wait is held three times as long again: the Pi's input switches
/// somewhere in its TTL-style window (0.8-2.0 V at 3.3 V), and from 0.26
/// VDD (0.30 RC) four times the time reaches 0.7 VDD (1.20 RC), the chip's
/// threshold. An ideal wire reads high at the first poll and costs nothing.
pub struct OpenDrain<L, D> {
    line: L,
    delay: D,
    drive: Drive,
    /// The last read saw DIO low (an ACK): it must rise after the 9th clock.
    acked: bool,
}

impl<L: OpenDrainLine, D: DelayNs> OpenDrain<L, D> {
    pub fn new(line: L, delay: D) -> Self {
        OpenDrain {
            line,
            delay,
            drive: Drive::Unknown,
            acked: false,
        }
    }

    fn release_for_reading(&mut self) -> Result<(), L::Error> {
        if self.drive != Drive::Released {
            self.line.release()?;
            self.drive = Drive::Released;
            self.delay.delay_ns(SETTLE_NS);
        }
        Ok(())
    }

    /// Reads the released line until it is high, then waits three times as
    /// long again (see the type's doc); `HeldLow(when)` if it never rises.
    fn wait_high(&mut self, when: &'static str) -> Result<(), LineError<L::Error>> {
        let mut waited_us = 0;
        while !self.line.is_high().map_err(LineError::Pin)? {
            if waited_us >= RISE_TIMEOUT_US {
                return Err(LineError::HeldLow(when));
            }
            self.delay.delay_us(1);
            waited_us += 1;
        }
        if waited_us > 0 {
            self.delay.delay_us(3 * waited_us);
        }
        Ok(())
    }
}

impl<L: OpenDrainLine, D> ErrorType for OpenDrain<L, D> {
    type Error = LineError<L::Error>;
}

impl<L: OpenDrainLine, D: DelayNs> OutputPin for OpenDrain<L, D> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        // The driver drives DIO low right after the 9th clock's falling
        // edge, where the chip has let go of its ACK: DIO must rise first.
        if std::mem::take(&mut self.acked) && self.drive == Drive::Released {
            self.wait_high(WHEN_AFTER_ACK)?;
        }
        if self.drive != Drive::Low {
            self.line.drive_low().map_err(LineError::Pin)?;
            self.drive = Drive::Low;
        }
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        if self.drive != Drive::Released {
            self.line.release().map_err(LineError::Pin)?;
            self.drive = Drive::Released;
        }
        // Also when it already was released (idle before START): a short
        // that appeared between frames shows here, at the cost of one read.
        self.wait_high(WHEN_RELEASED)
    }
}

impl<L: OpenDrainLine, D: DelayNs> InputPin for OpenDrain<L, D> {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        self.release_for_reading().map_err(LineError::Pin)?;
        let high = self.line.is_high().map_err(LineError::Pin)?;
        self.acked = !high;
        Ok(high)
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.is_high()?)
    }
}

/// Why a display write failed.
#[derive(Debug, PartialEq, Eq)]
pub enum DisplayError<E> {
    /// The chip did not acknowledge a byte: no display is connected (or
    /// CLK/DIO/VCC/GND is wrong).
    NoAck,
    Pin(E),
}

/// A 4-digit TM1637 module.
pub struct Tm1637Display<CLK, DIO, DELAY> {
    tm: TM1637<4, Blocking, CLK, DIO, DELAY>,
}

/// TM1637 display control for brightness 0..=7 (higher is capped).
pub fn brightness_level(b: u8) -> Brightness {
    match b {
        0 => Brightness::L0,
        1 => Brightness::L1,
        2 => Brightness::L2,
        3 => Brightness::L3,
        4 => Brightness::L4,
        5 => Brightness::L5,
        6 => Brightness::L6,
        _ => Brightness::L7,
    }
}

impl<CLK, DIO, DELAY, E> Tm1637Display<CLK, DIO, DELAY>
where
    CLK: OutputPin<Error = E>,
    DIO: OutputPin<Error = E> + InputPin<Error = E>,
    DELAY: DelayNs,
{
    pub fn new(clk: CLK, dio: DIO, delay: DELAY, bit_delay_us: u32) -> Self {
        Tm1637Display {
            tm: TM1637::new(clk, dio, delay, Brightness::L0, bit_delay_us),
        }
    }

    /// Writes the four segment bytes (bit 7 = the digit's point) and then the
    /// display control: `0x88 | brightness`, or `0x80` (off) when `on` is false.
    pub fn write(
        &mut self,
        segments: [u8; 4],
        on: bool,
        brightness: u8,
    ) -> Result<(), DisplayError<E>> {
        let control = if on {
            brightness_level(brightness)
        } else {
            Brightness::Off
        };
        self.tm
            .display_slice(0, &segments)
            .and_then(|()| self.tm.set_brightness(control))
            .map_err(|e| match e {
                TmError::Digital(e) => DisplayError::Pin(e),
                _ => DisplayError::NoAck,
            })
    }

    pub fn destroy(self) -> (CLK, DIO, DELAY) {
        self.tm.into_parts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as Pin};
    use std::cell::RefCell;
    use std::convert::Infallible;
    use std::rc::Rc;

    fn lsb_first(byte: u8) -> [bool; 8] {
        std::array::from_fn(|bit| byte >> bit & 1 == 1)
    }

    #[test]
    fn bits_go_out_least_significant_first() {
        let b = |v: [u8; 8]| v.map(|x| x == 1);
        assert_eq!(lsb_first(0x40), b([0, 0, 0, 0, 0, 0, 1, 0]));
        assert_eq!(lsb_first(0xC0), b([0, 0, 0, 0, 0, 0, 1, 1]));
        assert_eq!(lsb_first(0x8B), b([1, 1, 0, 1, 0, 0, 0, 1]));
    }

    /// Expected transactions on (CLK, DIO) for one command: start, bytes
    /// (LSB first, each followed by the ACK clock), stop.
    fn command(bytes: &[u8], clk: &mut Vec<Pin>, dio: &mut Vec<Pin>) {
        // start: DIO falls while CLK is high
        dio.push(Pin::set(State::High));
        clk.push(Pin::set(State::High));
        dio.push(Pin::set(State::Low));
        for &byte in bytes {
            for high in lsb_first(byte) {
                clk.push(Pin::set(State::Low));
                dio.push(Pin::set(if high { State::High } else { State::Low }));
                clk.push(Pin::set(State::High));
            }
            // ninth clock: the chip pulls DIO low to acknowledge
            clk.push(Pin::set(State::Low));
            dio.push(Pin::set(State::Low));
            clk.push(Pin::set(State::High));
            dio.push(Pin::get(State::Low));
            clk.push(Pin::set(State::Low));
            dio.push(Pin::set(State::Low));
        }
        // stop: DIO rises while CLK is high
        dio.push(Pin::set(State::Low));
        clk.push(Pin::set(State::High));
        dio.push(Pin::set(State::High));
    }

    #[test]
    fn a_frame_is_data_then_display_control_lsb_first() {
        let (mut clk_tx, mut dio_tx) = (Vec::new(), Vec::new());
        // "42." right-aligned: blank, blank, 4, 2 with its point
        let segments = [0x00, 0x00, 0x66, 0x5B | 0x80];
        command(&[0x40], &mut clk_tx, &mut dio_tx);
        command(&[0xC0, 0x00, 0x00, 0x66, 0xDB], &mut clk_tx, &mut dio_tx);
        command(&[0x8B], &mut clk_tx, &mut dio_tx);
        let mut clk = PinMock::new(&clk_tx);
        let mut dio = PinMock::new(&dio_tx);
        let mut display = Tm1637Display::new(clk.clone(), dio.clone(), NoopDelay::new(), 1);
        display.write(segments, true, 3).unwrap();
        clk.done();
        dio.done();
    }

    #[test]
    fn off_is_0x80_and_brightness_is_capped() {
        assert_eq!(brightness_level(9) as u8, 0x8F);
        assert_eq!(brightness_level(0) as u8, 0x88);
        let (mut clk_tx, mut dio_tx) = (Vec::new(), Vec::new());
        command(&[0x40], &mut clk_tx, &mut dio_tx);
        command(&[0xC0, 1, 2, 3, 4], &mut clk_tx, &mut dio_tx);
        command(&[0x80], &mut clk_tx, &mut dio_tx);
        let mut clk = PinMock::new(&clk_tx);
        let mut dio = PinMock::new(&dio_tx);
        let mut display = Tm1637Display::new(clk.clone(), dio.clone(), NoopDelay::new(), 1);
        display.write([1, 2, 3, 4], false, 7).unwrap();
        clk.done();
        dio.done();
    }

    #[test]
    fn no_ack_means_no_display() {
        // Start, the 8 bits of 0x40, the ninth clock: DIO stays high (nobody
        // pulls it down) for all 255 polls; the driver gives up.
        let (mut clk_tx, mut dio_tx) = (Vec::new(), Vec::new());
        dio_tx.push(Pin::set(State::High));
        clk_tx.push(Pin::set(State::High));
        dio_tx.push(Pin::set(State::Low));
        for high in lsb_first(0x40) {
            clk_tx.push(Pin::set(State::Low));
            dio_tx.push(Pin::set(if high { State::High } else { State::Low }));
            clk_tx.push(Pin::set(State::High));
        }
        clk_tx.push(Pin::set(State::Low));
        dio_tx.push(Pin::set(State::Low));
        clk_tx.push(Pin::set(State::High));
        dio_tx.extend(std::iter::repeat_n(Pin::get(State::High), 255));
        clk_tx.push(Pin::set(State::Low));
        dio_tx.push(Pin::set(State::Low));
        let mut clk = PinMock::new(&clk_tx);
        let mut dio = PinMock::new(&dio_tx);
        let mut display = Tm1637Display::new(clk.clone(), dio.clone(), NoopDelay::new(), 1);
        assert_eq!(display.write([0; 4], true, 3), Err(DisplayError::NoAck));
        clk.done();
        dio.done();
    }

    /// Two wires with pull-ups, a host that drives them through
    /// `OpenDrain`, and a simulated TM1637 that decodes what it sees and
    /// acknowledges each byte when `present`.
    #[derive(Default)]
    struct Wires {
        present: bool,
        clk: bool,
        host_dio_low: bool,
        chip_dio_low: bool,
        /// The chip's receive state.
        receiving: bool,
        bits: u8,
        byte: u8,
        ack_phase: bool,
        current: Vec<u8>,
        commands: Vec<Vec<u8>>,
        /// The host read DIO while it was driving it itself.
        read_own_drive: bool,
    }

    impl Wires {
        fn dio(&self) -> bool {
            !(self.host_dio_low || self.chip_dio_low)
        }

        /// Applies a change by the host and lets the chip react to edges.
        fn change(&mut self, f: impl FnOnce(&mut Wires)) {
            let (clk0, dio0) = (self.clk, self.dio());
            f(self);
            let (clk1, dio1) = (self.clk, self.dio());
            if clk0 && clk1 && dio0 && !dio1 {
                // start
                self.receiving = true;
                self.bits = 0;
                self.byte = 0;
                self.ack_phase = false;
                self.current.clear();
            } else if clk0 && clk1 && !dio0 && dio1 && self.receiving {
                // stop
                self.receiving = false;
                self.commands.push(std::mem::take(&mut self.current));
            } else if !clk0 && clk1 && self.receiving && !self.ack_phase {
                // rising edge: sample a data bit, LSB first
                self.byte |= (dio1 as u8) << self.bits;
                self.bits += 1;
            } else if clk0 && !clk1 && self.receiving {
                // falling edge
                if self.ack_phase {
                    self.chip_dio_low = false;
                    self.ack_phase = false;
                    self.current.push(self.byte);
                    self.bits = 0;
                    self.byte = 0;
                } else if self.bits == 8 {
                    self.ack_phase = true;
                    self.chip_dio_low = self.present;
                }
            }
        }
    }

    type Shared = Rc<RefCell<Wires>>;

    struct ClkWire(Shared);
    impl ErrorType for ClkWire {
        type Error = Infallible;
    }
    impl OutputPin for ClkWire {
        fn set_low(&mut self) -> Result<(), Infallible> {
            self.0.borrow_mut().change(|w| w.clk = false);
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Infallible> {
            self.0.borrow_mut().change(|w| w.clk = true);
            Ok(())
        }
    }

    struct Dio(Shared);
    impl OpenDrainLine for Dio {
        type Error = Infallible;
        fn drive_low(&mut self) -> Result<(), Infallible> {
            self.0.borrow_mut().change(|w| w.host_dio_low = true);
            Ok(())
        }
        fn release(&mut self) -> Result<(), Infallible> {
            self.0.borrow_mut().change(|w| w.host_dio_low = false);
            Ok(())
        }
        fn is_high(&mut self) -> Result<bool, Infallible> {
            let mut w = self.0.borrow_mut();
            if w.host_dio_low {
                w.read_own_drive = true;
            }
            Ok(w.dio())
        }
    }

    type WiredDisplay = Tm1637Display<Clk<ClkWire>, OpenDrain<Dio, NoopDelay>, NoopDelay>;

    fn wired(present: bool) -> (Shared, WiredDisplay) {
        let wires = Rc::new(RefCell::new(Wires {
            present,
            clk: true,
            ..Wires::default()
        }));
        let dio = OpenDrain::new(Dio(wires.clone()), NoopDelay::new());
        let display = Tm1637Display::new(Clk(ClkWire(wires.clone())), dio, NoopDelay::new(), 1);
        (wires, display)
    }

    #[test]
    fn the_chip_receives_the_frame_through_the_open_drain_wrapper() {
        let (wires, mut display) = wired(true);
        display.write([0x3F, 0x06, 0x5B, 0xCF], true, 5).unwrap();
        let w = wires.borrow();
        assert_eq!(
            w.commands,
            vec![vec![0x40], vec![0xC0, 0x3F, 0x06, 0x5B, 0xCF], vec![0x8D]]
        );
        assert!(!w.read_own_drive, "DIO must be released before it is read");
        assert!(w.clk && w.dio(), "both lines idle high after a stop");
    }

    #[test]
    fn an_absent_chip_is_noticed_through_the_open_drain_wrapper() {
        let (wires, mut display) = wired(false);
        assert_eq!(display.write([0; 4], true, 3), Err(DisplayError::NoAck));
        assert!(!wires.borrow().read_own_drive);
        // Plugged in later, the next write works.
        wires.borrow_mut().present = true;
        display.write([0; 4], true, 3).unwrap();
    }
}
