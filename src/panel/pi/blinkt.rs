//! The Blinkt!'s APA102 LEDs: a write-only SPI bus bit-banged on two
//! embedded-hal output pins, and the LED frame written through `apa102-spi`
//! with the APA102's 5-bit global brightness. No rppal here: the Pi backend
//! hands in its pins (or its hardware SPI bus), tests hand in mocks.

use std::fmt::Debug;

use apa102_spi::{Apa102, PixelOrder};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::{ErrorKind, ErrorType, SpiBus};
use smart_leds_trait::{SmartLedsWrite, RGB8};

use crate::core::color::Rgb;

/// Errors of [`BitBangSpi`].
#[derive(Debug, PartialEq, Eq)]
pub enum BitBangError<E> {
    /// A pin could not be set.
    Pin(E),
    /// The bus has no input line: only `write` and `flush` work.
    WriteOnly,
}

impl<E: Debug> embedded_hal::spi::Error for BitBangError<E> {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// SPI mode 0, MSB first, write only, on two output pins: each bit is put on
/// DATA while CLOCK is low, and the LEDs latch it on the rising edge. The
/// clock idles low. `half_period_ns` is the time CLOCK spends high and low.
pub struct BitBangSpi<DATA, CLOCK, DELAY> {
    data: DATA,
    clock: CLOCK,
    delay: DELAY,
    half_period_ns: u32,
}

impl<DATA, CLOCK, DELAY, E> BitBangSpi<DATA, CLOCK, DELAY>
where
    DATA: OutputPin<Error = E>,
    CLOCK: OutputPin<Error = E>,
    DELAY: DelayNs,
{
    /// Takes the pins and drives both low (the idle state).
    pub fn new(
        mut data: DATA,
        mut clock: CLOCK,
        delay: DELAY,
        half_period_ns: u32,
    ) -> Result<Self, E> {
        clock.set_low()?;
        data.set_low()?;
        Ok(BitBangSpi {
            data,
            clock,
            delay,
            half_period_ns,
        })
    }

    /// Gives the pins back.
    pub fn destroy(self) -> (DATA, CLOCK, DELAY) {
        (self.data, self.clock, self.delay)
    }

    fn write_byte(&mut self, byte: u8) -> Result<(), E> {
        for bit in (0..8).rev() {
            if byte >> bit & 1 == 1 {
                self.data.set_high()?;
            } else {
                self.data.set_low()?;
            }
            self.delay.delay_ns(self.half_period_ns);
            self.clock.set_high()?;
            self.delay.delay_ns(self.half_period_ns);
            self.clock.set_low()?;
        }
        Ok(())
    }
}

impl<DATA, CLOCK, DELAY, E: Debug> ErrorType for BitBangSpi<DATA, CLOCK, DELAY>
where
    DATA: OutputPin<Error = E>,
    CLOCK: OutputPin<Error = E>,
{
    type Error = BitBangError<E>;
}

impl<DATA, CLOCK, DELAY, E: Debug> SpiBus for BitBangSpi<DATA, CLOCK, DELAY>
where
    DATA: OutputPin<Error = E>,
    CLOCK: OutputPin<Error = E>,
    DELAY: DelayNs,
{
    fn read(&mut self, _words: &mut [u8]) -> Result<(), Self::Error> {
        Err(BitBangError::WriteOnly)
    }

    fn write(&mut self, words: &[u8]) -> Result<(), Self::Error> {
        for &w in words {
            self.write_byte(w).map_err(BitBangError::Pin)?;
        }
        Ok(())
    }

    fn transfer(&mut self, _read: &mut [u8], _write: &[u8]) -> Result<(), Self::Error> {
        Err(BitBangError::WriteOnly)
    }

    fn transfer_in_place(&mut self, _words: &mut [u8]) -> Result<(), Self::Error> {
        Err(BitBangError::WriteOnly)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// `apa102-spi` 0.4 always sends `0xFF` (global brightness 31) as the first
/// byte of each LED. This bus wrapper counts the bytes of one frame (4-byte
/// start frame, then 4 bytes per LED) and replaces each LED's first byte by
/// `0xE0 | brightness`, so the LEDs dim by their 5-bit global brightness
/// instead of losing colour resolution. What that does depends on the part:
/// the SK9822 (a common APA102 clone) scales its constant-current regulator,
/// while a genuine APA102 applies it as a second, slow PWM (~580 Hz) on top
/// of the colour PWM, which can flicker on camera at low levels.
struct GlobalBrightness<'a, SPI> {
    spi: &'a mut SPI,
    header: u8,
    led_count: usize,
    /// Bytes of the current frame written so far.
    pos: usize,
}

impl<SPI: SpiBus> ErrorType for GlobalBrightness<'_, SPI> {
    type Error = SPI::Error;
}

impl<SPI: SpiBus> SpiBus for GlobalBrightness<'_, SPI> {
    fn read(&mut self, words: &mut [u8]) -> Result<(), Self::Error> {
        self.spi.read(words)
    }

    fn write(&mut self, words: &[u8]) -> Result<(), Self::Error> {
        let mut out = words.to_vec();
        for b in out.iter_mut() {
            let led_bytes = self.pos.checked_sub(4).filter(|p| *p < 4 * self.led_count);
            if led_bytes.is_some_and(|p| p % 4 == 0) {
                *b = self.header;
            }
            self.pos += 1;
        }
        self.spi.write(&out)
    }

    fn transfer(&mut self, read: &mut [u8], write: &[u8]) -> Result<(), Self::Error> {
        self.spi.transfer(read, write)
    }

    fn transfer_in_place(&mut self, words: &mut [u8]) -> Result<(), Self::Error> {
        self.spi.transfer_in_place(words)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.spi.flush()
    }
}

/// Bytes of zeros after the last LED: each LED delays the data by half a
/// clock, so n LEDs need n/2 more clock edges to see their data; at least 32
/// bits, which also latches SK9822 clones (and a zero end frame lights no LED
/// beyond `led_count` on a longer strip).
pub fn end_frame_len(led_count: usize) -> u8 {
    led_count.div_ceil(16).clamp(4, 255) as u8
}

/// An APA102 strip (the Blinkt!'s 8 LEDs) on any SPI bus.
pub struct Apa102Strip<SPI> {
    spi: SPI,
    led_count: usize,
}

impl<SPI: SpiBus> Apa102Strip<SPI> {
    pub fn new(spi: SPI, led_count: usize) -> Self {
        Apa102Strip { spi, led_count }
    }

    /// Writes one frame: start frame, then per LED `0xE0 | brightness`, B, G,
    /// R, then the end frame. `brightness` is 0..=31 (higher is capped).
    pub fn write(&mut self, leds: &[Rgb], brightness: u8) -> Result<(), SPI::Error> {
        let bus = GlobalBrightness {
            spi: &mut self.spi,
            header: 0xE0 | brightness.min(31),
            led_count: self.led_count,
            pos: 0,
        };
        let mut strip = Apa102::new_with_options(
            bus,
            end_frame_len(self.led_count),
            true, // "inverted" end frame = zeros
            PixelOrder::BGR,
        );
        let colors = (0..self.led_count).map(|i| {
            let c = leds.get(i).copied().unwrap_or_default();
            RGB8::new(c.r, c.g, c.b)
        });
        strip.write(colors)
    }

    pub fn destroy(self) -> SPI {
        self.spi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as Pin};
    use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as Spi};
    use std::cell::RefCell;
    use std::convert::Infallible;
    use std::rc::Rc;

    #[test]
    fn frame_bytes_are_start_brightness_bgr_end() {
        // Two LEDs, brightness 7: exactly what the LEDs must receive.
        let expected = [
            Spi::write_vec(vec![0x00, 0x00, 0x00, 0x00]),
            Spi::write_vec(vec![0xE7, 0x30, 0x20, 0x10]), // LED 0: B, G, R
            Spi::write_vec(vec![0xE7, 0x00, 0x00, 0xFF]), // LED 1: red
            Spi::write_vec(vec![0x00]),
            Spi::write_vec(vec![0x00]),
            Spi::write_vec(vec![0x00]),
            Spi::write_vec(vec![0x00]),
        ];
        let mut spi = SpiMock::new(&expected);
        let mut strip = Apa102Strip::new(spi.clone(), 2);
        strip
            .write(&[Rgb::new(0x10, 0x20, 0x30), Rgb::new(255, 0, 0)], 7)
            .unwrap();
        spi.done();
    }

    #[test]
    fn brightness_is_capped_and_missing_leds_are_dark() {
        let expected = [
            Spi::write_vec(vec![0; 4]),
            Spi::write_vec(vec![0xFF, 1, 2, 3]),
            Spi::write_vec(vec![0xFF, 0, 0, 0]),
            Spi::write_vec(vec![0xFF, 0, 0, 0]),
            Spi::write_vec(vec![0x00]),
            Spi::write_vec(vec![0x00]),
            Spi::write_vec(vec![0x00]),
            Spi::write_vec(vec![0x00]),
        ];
        let mut spi = SpiMock::new(&expected);
        let mut strip = Apa102Strip::new(spi.clone(), 3);
        strip.write(&[Rgb::new(3, 2, 1)], 200).unwrap();
        spi.done();
        let mut spi = SpiMock::new(&[
            Spi::write_vec(vec![0; 4]),
            Spi::write_vec(vec![0xE0, 9, 9, 9]),
            Spi::write_vec(vec![0; 1]),
            Spi::write_vec(vec![0; 1]),
            Spi::write_vec(vec![0; 1]),
            Spi::write_vec(vec![0; 1]),
        ]);
        Apa102Strip::new(spi.clone(), 1)
            .write(&[Rgb::new(9, 9, 9)], 0)
            .unwrap();
        spi.done();
    }

    #[test]
    fn end_frame_grows_with_long_strips() {
        assert_eq!(end_frame_len(8), 4);
        assert_eq!(end_frame_len(64), 4);
        assert_eq!(end_frame_len(65), 5);
        assert_eq!(end_frame_len(144), 9);
    }

    fn level(high: bool) -> State {
        if high {
            State::High
        } else {
            State::Low
        }
    }

    #[test]
    fn bit_bang_edges_are_msb_first_mode_0() {
        // 0xA5 = 1010_0101, most significant bit first: DATA is set, then
        // CLOCK rises (the LEDs latch) and falls, per bit.
        let mut data_tx = vec![Pin::set(State::Low)];
        let mut clock_tx = vec![Pin::set(State::Low)];
        for bit in [1, 0, 1, 0, 0, 1, 0, 1] {
            data_tx.push(Pin::set(level(bit == 1)));
            clock_tx.push(Pin::set(State::High));
            clock_tx.push(Pin::set(State::Low));
        }
        let mut data = PinMock::new(&data_tx);
        let mut clock = PinMock::new(&clock_tx);
        let mut bus = BitBangSpi::new(data.clone(), clock.clone(), NoopDelay::new(), 500).unwrap();
        bus.write(&[0xA5]).unwrap();
        assert_eq!(bus.read(&mut [0]), Err(BitBangError::WriteOnly));
        data.done();
        clock.done();
    }

    /// Both pins log into one list, so the order between them is checked too.
    #[derive(Clone)]
    struct Probe {
        name: &'static str,
        log: Rc<RefCell<Vec<(&'static str, bool)>>>,
    }

    impl embedded_hal::digital::ErrorType for Probe {
        type Error = Infallible;
    }

    impl OutputPin for Probe {
        fn set_low(&mut self) -> Result<(), Infallible> {
            self.log.borrow_mut().push((self.name, false));
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Infallible> {
            self.log.borrow_mut().push((self.name, true));
            Ok(())
        }
    }

    /// What an APA102 sees: DATA sampled at each rising CLOCK edge.
    fn decode(log: &[(&str, bool)]) -> Vec<u8> {
        let (mut data, mut clock) = (false, false);
        let mut bits = Vec::new();
        for &(pin, high) in log {
            match pin {
                "data" => {
                    assert!(!clock, "DATA must only change while CLOCK is low");
                    data = high;
                }
                _ => {
                    if high && !clock {
                        bits.push(data);
                    }
                    clock = high;
                }
            }
        }
        assert!(!clock, "CLOCK idles low");
        assert_eq!(bits.len() % 8, 0);
        bits.chunks(8)
            .map(|b| b.iter().fold(0u8, |acc, &bit| acc << 1 | bit as u8))
            .collect()
    }

    #[test]
    fn a_blinkt_frame_on_the_wire() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let data = Probe {
            name: "data",
            log: log.clone(),
        };
        let clock = Probe {
            name: "clock",
            log: log.clone(),
        };
        let bus = BitBangSpi::new(data, clock, NoopDelay::new(), 0).unwrap();
        let mut strip = Apa102Strip::new(bus, 8);
        let mut leds = vec![Rgb::BLACK; 8];
        leds[3] = Rgb::new(255, 128, 1);
        strip.write(&leds, 7).unwrap();
        let mut expected = vec![0, 0, 0, 0];
        for c in &leds {
            expected.extend([0xE7, c.b, c.g, c.r]);
        }
        expected.extend([0, 0, 0, 0]);
        assert_eq!(decode(&log.borrow()), expected);
    }
}
