//! The Larson-scanner sweep as a pure function of elapsed time.
//!
//! One pass takes the eye from the first LED to the last and back. Its
//! position follows a cosine (like the prototype's sine), so it eases at the
//! ends, and it is continuous: the fall-off is interpolated between LEDs, so
//! at 60 frames/s the eye glides instead of jumping LED to LED.

use super::color::Rgb;

/// Brightness at distance 0, 1 and 2 LEDs from the eye (the prototype's
/// 255/64/16 table); 3 or more LEDs away is dark.
pub const FALLOFF: [u8; 3] = [255, 64, 16];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepShape {
    pub led_count: usize,
    /// Duration of one pass (first LED -> last LED -> first LED).
    pub pass_ms: u64,
    pub passes: u32,
}

impl SweepShape {
    pub fn duration_ms(&self) -> u64 {
        self.pass_ms.saturating_mul(u64::from(self.passes))
    }
}

/// Brightness 0..=255 at a (fractional) distance from the eye.
pub fn falloff(distance: f64) -> u8 {
    let d = distance.abs();
    let i = d.floor() as usize;
    if i >= FALLOFF.len() {
        return 0;
    }
    let near = f64::from(FALLOFF[i]);
    let far = FALLOFF.get(i + 1).map_or(0.0, |v| f64::from(*v));
    let frac = d - i as f64;
    (near + (far - near) * frac).round() as u8
}

/// The eye's position in LEDs (0.0 ..= led_count-1) at `elapsed_ms`, or
/// `None` once every pass is done.
pub fn eye_position(shape: &SweepShape, elapsed_ms: u64) -> Option<f64> {
    if shape.pass_ms == 0 || elapsed_ms >= shape.duration_ms() || shape.led_count == 0 {
        return None;
    }
    let phase = (elapsed_ms % shape.pass_ms) as f64 / shape.pass_ms as f64;
    let span = (shape.led_count - 1) as f64;
    Some(span * (1.0 - (std::f64::consts::TAU * phase).cos()) / 2.0)
}

/// The LED colours at `elapsed_ms` into a sweep of `color`, or `None` once done.
pub fn sweep_frame(shape: &SweepShape, color: Rgb, elapsed_ms: u64) -> Option<Vec<Rgb>> {
    let eye = eye_position(shape, elapsed_ms)?;
    Some(
        (0..shape.led_count)
            .map(|i| color.scaled(falloff(i as f64 - eye)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = Rgb::new(255, 0, 0);
    const SHAPE: SweepShape = SweepShape {
        led_count: 8,
        pass_ms: 1000,
        passes: 2,
    };

    #[test]
    fn falloff_matches_the_prototype_table_at_whole_leds() {
        assert_eq!(falloff(0.0), 255);
        assert_eq!(falloff(1.0), 64);
        assert_eq!(falloff(-1.0), 64);
        assert_eq!(falloff(2.0), 16);
        assert_eq!(falloff(3.0), 0);
        assert_eq!(falloff(7.0), 0);
    }

    #[test]
    fn falloff_interpolates_between_leds_and_never_rises_with_distance() {
        assert_eq!(falloff(0.5), 160);
        assert_eq!(falloff(2.5), 8);
        let mut last = 255;
        for step in 0..=400 {
            let v = falloff(step as f64 / 100.0);
            assert!(v <= last);
            last = v;
        }
    }

    #[test]
    fn eye_goes_end_to_end_and_back_each_pass() {
        let at = |t| eye_position(&SHAPE, t).unwrap();
        assert!(at(0).abs() < 1e-9);
        assert!((at(500) - 7.0).abs() < 1e-9);
        assert!((at(250) - 3.5).abs() < 1e-9);
        assert!(at(999) < 0.01);
        assert!(at(1000).abs() < 1e-9, "second pass starts at LED 0");
        assert!((at(1500) - 7.0).abs() < 1e-9);
        assert_eq!(eye_position(&SHAPE, 2000), None);
    }

    #[test]
    fn eye_moves_smoothly_at_60_fps() {
        // at 60 fps the eye moves less than half an LED per frame, so the
        // interpolated fall-off glides and no LED is skipped.
        let mut last = eye_position(&SHAPE, 0).unwrap();
        let mut t = 0.0f64;
        while (t as u64) < SHAPE.duration_ms() {
            let pos = eye_position(&SHAPE, t as u64).unwrap();
            assert!((pos - last).abs() < 0.5, "jump at {t}: {last} -> {pos}");
            last = pos;
            t += 1000.0 / 60.0;
        }
    }

    #[test]
    fn frame_shows_eye_and_symmetric_trail_in_the_route_colour() {
        // t = 500: eye exactly on LED 7
        let frame = sweep_frame(&SHAPE, RED, 500).unwrap();
        assert_eq!(frame.len(), 8);
        assert_eq!(frame[7], Rgb::new(255, 0, 0));
        assert_eq!(frame[6], Rgb::new(64, 0, 0));
        assert_eq!(frame[5], Rgb::new(16, 0, 0));
        assert!(frame[..5].iter().all(|c| c.is_black()));
        // t = 250: eye between LED 3 and 4
        let frame = sweep_frame(&SHAPE, Rgb::new(0, 0, 255), 250).unwrap();
        for led in [frame[3], frame[4]] {
            assert!(led.b.abs_diff(160) <= 1, "{led:?}");
        }
        assert!(frame.iter().all(|c| c.r == 0 && c.g == 0));
    }

    #[test]
    fn sweep_ends_dark_and_handles_degenerate_shapes() {
        assert_eq!(sweep_frame(&SHAPE, RED, 2000), None);
        let no_leds = SweepShape {
            led_count: 0,
            ..SHAPE
        };
        assert_eq!(sweep_frame(&no_leds, RED, 0), None);
        let one = SweepShape {
            led_count: 1,
            ..SHAPE
        };
        assert_eq!(sweep_frame(&one, RED, 123), Some(vec![RED]));
        let zero = SweepShape {
            pass_ms: 0,
            ..SHAPE
        };
        assert_eq!(eye_position(&zero, 0), None);
    }

    #[test]
    fn colour_scaling_keeps_hue() {
        let purple = Rgb::new(128, 0, 255);
        let frame = sweep_frame(&SHAPE, purple, 500).unwrap();
        assert_eq!(frame[6], Rgb::new(32, 0, 64));
    }
}
