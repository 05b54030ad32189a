//! Raspberry Pi wiring rules, in one place for the config check and the Pi
//! backend: one job per GPIO, and what a hardware SPI device path looks like.
//! Pure: no I/O.

use std::path::Path;

/// `/dev/spidevB.S` -> (bus, chip select).
pub fn spidev_bus(dev: &Path) -> Option<(u8, u8)> {
    if dev.parent() != Some(Path::new("/dev")) {
        return None;
    }
    let name = dev.file_name()?.to_str()?.strip_prefix("spidev")?;
    let (bus, ss) = name.split_once('.')?;
    let (bus, ss): (u8, u8) = (bus.parse().ok()?, ss.parse().ok()?);
    (bus <= 6 && ss <= 15).then_some((bus, ss))
}

/// Checks the pins in use, given as (config key, BCM number), plus the
/// LEDs' hardware SPI device if any (then the two bit-banged LED pins,
/// listed in `led_pins`, are free). Err: (the key at fault, why).
pub fn check_pins(
    pins: &[(&'static str, u64)],
    led_pins: &[(&'static str, u64)],
    led_spi: Option<&Path>,
) -> Result<(), (String, String)> {
    let mut used = pins.to_vec();
    match led_spi {
        Some(dev) if spidev_bus(dev).is_none() => {
            return Err((
                "led_spi".into(),
                format!(
                    "\"{}\" is not a SPI device like \"/dev/spidev0.0\"",
                    dev.display()
                ),
            ))
        }
        Some(dev) => {
            // The bus's own pins (CE1, CE0, MISO, MOSI, SCLK; SPI1 has CE2
            // too) go to the SPI driver once the bus is on, whichever the
            // strip uses: no button or display may share them.
            let (bus, _) = spidev_bus(dev).expect("checked above");
            let bus_pins: &[u64] = match bus {
                0 => &[7, 8, 9, 10, 11],
                1 => &[16, 17, 18, 19, 20, 21],
                _ => &[],
            };
            if let Some((key, pin)) = used.iter().find(|(_, p)| bus_pins.contains(p)) {
                return Err((
                    (*key).into(),
                    format!(
                        "BCM {pin} belongs to SPI{bus} (BCM {}-{}), which led_spi = \"{}\" turns on: one pin, one job",
                        bus_pins[0],
                        bus_pins[bus_pins.len() - 1],
                        dev.display()
                    ),
                ));
            }
        }
        None => used.extend_from_slice(led_pins),
    }
    for (i, (key, pin)) in used.iter().enumerate() {
        if let Some((other, _)) = used[..i].iter().find(|(_, p)| p == pin) {
            return Err((
                (*key).into(),
                format!("BCM {pin} is already used by {other}: one pin, one job"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISPLAY_AND_BUTTONS: [(&str, u64); 4] = [
        ("tm1637_clk_pin", 5),
        ("tm1637_dio_pin", 4),
        ("mode_button_pin", 17),
        ("power_button_pin", 3),
    ];
    const BLINKT: [(&str, u64); 2] = [("blinkt_data_pin", 23), ("blinkt_clock_pin", 24)];

    #[test]
    fn spi_devices_are_recognised() {
        assert_eq!(spidev_bus(Path::new("/dev/spidev0.0")), Some((0, 0)));
        assert_eq!(spidev_bus(Path::new("/dev/spidev1.2")), Some((1, 2)));
        for bad in [
            "/dev/spidev0",
            "/tmp/spidev0.0",
            "/dev/ttyS0",
            "/dev/spidev9.0",
        ] {
            assert_eq!(spidev_bus(Path::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn one_pin_one_job() {
        assert_eq!(check_pins(&DISPLAY_AND_BUTTONS, &BLINKT, None), Ok(()));
        let mut clash = DISPLAY_AND_BUTTONS;
        clash[2].1 = 4;
        let (key, why) = check_pins(&clash, &BLINKT, None).unwrap_err();
        assert_eq!(key, "mode_button_pin");
        assert!(
            why.contains("BCM 4") && why.contains("tm1637_dio_pin"),
            "{why}"
        );
        let mut on_blinkt = DISPLAY_AND_BUTTONS;
        on_blinkt[2].1 = 23;
        let (key, _) = check_pins(&on_blinkt, &BLINKT, None).unwrap_err();
        assert_eq!(key, "blinkt_data_pin", "the later one in the list is named");
        // with hardware SPI the bit-bang pins are free
        let spi = Some(Path::new("/dev/spidev0.0"));
        assert_eq!(check_pins(&on_blinkt, &BLINKT, spi), Ok(()));
        let (key, why) =
            check_pins(&DISPLAY_AND_BUTTONS, &BLINKT, Some(Path::new("/dev/ttyS0"))).unwrap_err();
        assert_eq!(key, "led_spi");
        assert!(why.contains("/dev/spidev0.0"), "{why}");
    }

    /// Issue 20, item 9: with `led_spi` the SPI bus's pins are taken.
    #[test]
    fn hardware_spi_reserves_its_bus_pins() {
        let spi0 = Some(Path::new("/dev/spidev0.0"));
        for bcm in 7..=11 {
            let mut pins = DISPLAY_AND_BUTTONS;
            pins[2].1 = bcm;
            let (key, why) = check_pins(&pins, &BLINKT, spi0).unwrap_err();
            assert_eq!(key, "mode_button_pin", "BCM {bcm}");
            assert!(why.contains("SPI0") && why.contains("led_spi"), "{why}");
        }
        // SPI1 (BCM 16-21) holds BCM 17, the MODE button's default.
        let spi1 = Some(Path::new("/dev/spidev1.0"));
        let (key, _) = check_pins(&DISPLAY_AND_BUTTONS, &BLINKT, spi1).unwrap_err();
        assert_eq!(key, "mode_button_pin");
    }
}
