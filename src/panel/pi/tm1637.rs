//! The TM1637 4-digit display through `tm1637-embedded-hal`, generic over
//! embedded-hal pins and a delay, plus the open-drain DIO wrapper it needs on
//! a Pi. No rppal here: tested with embedded-hal-mock and a simulated chip.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use tm1637_embedded_hal::{tokens::Blocking, Brightness, Error as TmError, TM1637};

/// Half a clock period on the TM1637 wires. The chip takes up to 250 kHz
/// (2 µs); modules add pull-ups and small capacitors, so stay well below.
/// One frame (three commands, 7 bytes) then takes about 3 ms, and a missing
/// display is noticed after 255 polls of DIO, about 5 ms.
pub const BIT_DELAY_US: u32 = 20;

/// Time for the pull-up to lift DIO after the host lets go, before reading.
pub const SETTLE_NS: u32 = 5_000;

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
pub struct OpenDrain<L, D> {
    line: L,
    delay: D,
    drive: Drive,
}

impl<L: OpenDrainLine, D: DelayNs> OpenDrain<L, D> {
    pub fn new(line: L, delay: D) -> Self {
        OpenDrain {
            line,
            delay,
            drive: Drive::Unknown,
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
}

impl<L: OpenDrainLine, D> ErrorType for OpenDrain<L, D> {
    type Error = L::Error;
}

impl<L: OpenDrainLine, D: DelayNs> OutputPin for OpenDrain<L, D> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        if self.drive != Drive::Low {
            self.line.drive_low()?;
            self.drive = Drive::Low;
        }
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        if self.drive != Drive::Released {
            self.line.release()?;
            self.drive = Drive::Released;
        }
        Ok(())
    }
}

impl<L: OpenDrainLine, D: DelayNs> InputPin for OpenDrain<L, D> {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        self.release_for_reading()?;
        self.line.is_high()
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

    struct Clk(Shared);
    impl ErrorType for Clk {
        type Error = Infallible;
    }
    impl OutputPin for Clk {
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

    fn wired(
        present: bool,
    ) -> (
        Shared,
        Tm1637Display<Clk, OpenDrain<Dio, NoopDelay>, NoopDelay>,
    ) {
        let wires = Rc::new(RefCell::new(Wires {
            present,
            clk: true,
            ..Wires::default()
        }));
        let dio = OpenDrain::new(Dio(wires.clone()), NoopDelay::new());
        let display = Tm1637Display::new(Clk(wires.clone()), dio, NoopDelay::new(), 1);
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
