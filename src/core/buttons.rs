//! The two buttons as a state machine over timestamped raw edges.
//!
//! A raw level only counts once it has held for `debounce_ms` with no further
//! edge, so contact bounce and short glitches are ignored. The mode button acts
//! on release; the power button toggles the panel on a short press and asks
//! for shutdown the moment it has been held `long_press_ms` (no need to let go).
//! Pure: the caller supplies time and calls `poll` at `next_deadline()`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    Mode,
    Power,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ButtonAction {
    NextMode,
    ToggleDark,
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ButtonTiming {
    pub debounce_ms: u64,
    pub long_press_ms: u64,
}

impl Default for ButtonTiming {
    fn default() -> Self {
        ButtonTiming {
            debounce_ms: 30,
            long_press_ms: 3000,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct ButtonState {
    pressed: bool,
    /// When the current stable press began.
    pressed_at: u64,
    /// A raw level that differs from `pressed`, and when it appeared.
    pending: Option<(bool, u64)>,
    long_fired: bool,
}

impl ButtonState {
    /// A release edge from before the long-press threshold is still settling:
    /// the press was short, whatever the clock says now.
    fn released_before_threshold(&self, timing: ButtonTiming) -> bool {
        matches!(self.pending, Some((false, since))
            if since.saturating_sub(self.pressed_at) < timing.long_press_ms)
    }
}

#[derive(Debug, Default)]
pub struct Buttons {
    timing: ButtonTiming,
    states: [ButtonState; 2],
}

fn index(b: Button) -> usize {
    match b {
        Button::Mode => 0,
        Button::Power => 1,
    }
}

impl Buttons {
    pub fn new(timing: ButtonTiming) -> Self {
        Buttons {
            timing,
            states: Default::default(),
        }
    }

    /// A raw level change. Returns what the settled state changes caused.
    pub fn edge(&mut self, button: Button, pressed: bool, now: u64) -> Vec<ButtonAction> {
        let mut actions = self.poll(now);
        let st = &mut self.states[index(button)];
        st.pending = if pressed == st.pressed {
            None // bounced back before settling
        } else {
            match st.pending {
                // A repeated report of the same level keeps its first timestamp.
                Some((level, since)) if level == pressed => Some((level, since)),
                _ => Some((pressed, now)),
            }
        };
        actions.extend(self.poll(now));
        actions
    }

    /// Settles pending levels and fires long presses due by `now`.
    pub fn poll(&mut self, now: u64) -> Vec<ButtonAction> {
        let timing = self.timing;
        let mut actions = Vec::new();
        for (i, st) in self.states.iter_mut().enumerate() {
            let button = if i == 0 { Button::Mode } else { Button::Power };
            if let Some((level, since)) = st.pending {
                if now.saturating_sub(since) >= timing.debounce_ms {
                    st.pending = None;
                    st.pressed = level;
                    if level {
                        st.pressed_at = since;
                        st.long_fired = false;
                    } else if !st.long_fired {
                        let held = since.saturating_sub(st.pressed_at);
                        match button {
                            Button::Mode => actions.push(ButtonAction::NextMode),
                            Button::Power if held < timing.long_press_ms => {
                                actions.push(ButtonAction::ToggleDark)
                            }
                            // Held past the threshold but released before we were polled.
                            Button::Power => actions.push(ButtonAction::Shutdown),
                        }
                    }
                }
            }
            if button == Button::Power
                && st.pressed
                && !st.long_fired
                && now.saturating_sub(st.pressed_at) >= timing.long_press_ms
                && !st.released_before_threshold(timing)
            {
                st.long_fired = true;
                actions.push(ButtonAction::Shutdown);
            }
        }
        actions
    }

    /// When `poll` next has something to decide, if anything.
    pub fn next_deadline(&self) -> Option<u64> {
        let timing = self.timing;
        self.states
            .iter()
            .enumerate()
            .flat_map(|(i, st)| {
                let settle = st.pending.map(|(_, since)| since + timing.debounce_ms);
                let long = (i == 1
                    && st.pressed
                    && !st.long_fired
                    && !st.released_before_threshold(timing))
                .then(|| st.pressed_at + timing.long_press_ms);
                [settle, long]
            })
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ButtonAction::*;

    /// Feeds edges `(t, button, pressed)` and polls at every deadline up to `until`.
    fn run(edges: &[(u64, Button, bool)], until: u64) -> Vec<(u64, ButtonAction)> {
        let mut b = Buttons::new(ButtonTiming::default());
        let mut out = Vec::new();
        let mut edges = edges.iter().peekable();
        let mut now = 0;
        loop {
            let next_edge = edges.peek().map(|e| e.0);
            let next = [next_edge, b.next_deadline()].into_iter().flatten().min();
            match next {
                Some(t) if t <= until => {
                    now = t.max(now);
                    if next_edge == Some(t) {
                        let (t, button, pressed) = *edges.next().unwrap();
                        out.extend(b.edge(button, pressed, t).into_iter().map(|a| (t, a)));
                    } else {
                        out.extend(b.poll(now).into_iter().map(|a| (now, a)));
                    }
                }
                _ => break,
            }
        }
        out
    }

    const M: Button = Button::Mode;
    const P: Button = Button::Power;

    #[test]
    fn clean_short_press_of_mode_acts_on_release() {
        assert_eq!(
            run(&[(100, M, true), (250, M, false)], 10_000),
            vec![(280, NextMode)]
        );
    }

    #[test]
    fn bouncy_press_counts_once() {
        let edges = [
            (100, M, true),
            (103, M, false),
            (105, M, true),
            (109, M, false),
            (112, M, true),
            (300, M, false),
            (302, M, true),
            (306, M, false),
        ];
        assert_eq!(run(&edges, 10_000), vec![(336, NextMode)]);
    }

    #[test]
    fn glitch_shorter_than_debounce_is_ignored() {
        assert_eq!(run(&[(100, M, true), (120, M, false)], 10_000), vec![]);
        assert_eq!(run(&[(100, P, true), (129, P, false)], 10_000), vec![]);
    }

    #[test]
    fn power_short_press_toggles_dark() {
        assert_eq!(
            run(&[(0, P, true), (400, P, false)], 10_000),
            vec![(430, ToggleDark)]
        );
    }

    #[test]
    fn power_long_press_shuts_down_at_threshold_while_held() {
        let out = run(&[(1000, P, true), (9000, P, false)], 20_000);
        assert_eq!(
            out,
            vec![(4000, Shutdown)],
            "fires once, at the threshold, not on release"
        );
    }

    #[test]
    fn release_just_before_threshold_does_nothing_destructive() {
        let out = run(&[(1000, P, true), (3990, P, false)], 20_000);
        assert_eq!(out, vec![(4020, ToggleDark)]);
    }

    #[test]
    fn late_poll_after_long_hold_and_release_still_shuts_down() {
        let mut b = Buttons::new(ButtonTiming::default());
        assert!(b.edge(P, true, 0).is_empty());
        assert!(b.poll(50).is_empty());
        // nobody polled at 3000; the release at 3500 still reports the shutdown, once
        assert_eq!(b.edge(P, false, 3500), vec![Shutdown]);
        assert_eq!(b.poll(10_000), vec![]);
    }

    #[test]
    fn release_pending_before_threshold_prevents_shutdown_on_late_poll() {
        let mut b = Buttons::new(ButtonTiming::default());
        b.edge(P, true, 0);
        b.poll(40);
        // the release edge arrives at 2990 but nobody polls until 3100
        assert!(b.edge(P, false, 2990).is_empty());
        assert_eq!(b.poll(3100), vec![ToggleDark]);
    }

    #[test]
    fn mode_long_hold_is_just_one_mode_step() {
        assert_eq!(
            run(&[(0, M, true), (5000, M, false)], 20_000),
            vec![(5030, NextMode)]
        );
    }

    #[test]
    fn buttons_are_independent() {
        let edges = [
            (0, P, true),
            (100, M, true),
            (200, M, false),
            (3500, P, false),
        ];
        assert_eq!(run(&edges, 20_000), vec![(230, NextMode), (3000, Shutdown)]);
    }

    #[test]
    fn no_deadline_when_idle() {
        let mut b = Buttons::new(ButtonTiming::default());
        assert_eq!(b.next_deadline(), None);
        b.edge(M, true, 10);
        assert_eq!(b.next_deadline(), Some(40));
        b.poll(40);
        assert_eq!(
            b.next_deadline(),
            None,
            "a held mode button needs no wake-ups"
        );
        b.edge(P, true, 50);
        b.poll(80);
        assert_eq!(b.next_deadline(), Some(3050));
    }
}
