//! Server heartbeats: per source, is it `new` (not heard since banlight
//! started), `up`, `late` (its period passed, still within grace) or `down`
//! (past period + grace, or its last heartbeat said fail2ban is not
//! answering)? The states healthchecks.io and Uptime Kuma push monitors use.
//!
//! Pure: time comes in as milliseconds on one monotonic timeline. The owner
//! sleeps until `next_deadline` (none while everything is down or unwatched),
//! calls `advance`, and takes the transitions to store and show.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    New,
    Up,
    Late,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Up => "up",
            State::Late => "late",
            State::Down => "down",
        }
    }
}

/// What a source promised: a heartbeat at least every `period_ms`, with
/// `grace_ms` of slack before it counts as down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub period_ms: u64,
    pub grace_ms: u64,
}

/// What a heartbeat says about the server's own health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `fail2ban-client ping` answered (`None`: not reported).
    pub fail2ban_up: Option<bool>,
    /// Jails and their currently banned counts.
    pub jails: BTreeMap<String, u64>,
}

/// Why a state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A heartbeat arrived (and fail2ban was not reported down).
    Heard,
    /// The period passed without a heartbeat.
    Silent,
    /// A heartbeat said fail2ban does not answer.
    Fail2banDown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub source: String,
    pub from: State,
    pub to: State,
    /// When the state changed (a deadline, or the heartbeat's arrival): an
    /// owner woken late still gets each step at its own time.
    pub at_ms: u64,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub spec: Spec,
    pub state: State,
    /// The last heartbeat's arrival.
    pub last_ms: Option<u64>,
    /// Since when the source has been watched (start or the reload that added
    /// it): a source never heard from gets one period + grace from here.
    pub since_ms: u64,
    pub report: Report,
}

impl Watch {
    /// When the state next changes if nothing arrives.
    fn deadline(&self) -> Option<u64> {
        let Spec {
            period_ms,
            grace_ms,
        } = self.spec;
        match self.state {
            State::New => Some(self.since_ms.saturating_add(period_ms + grace_ms)),
            State::Up => Some(self.last_ms?.saturating_add(period_ms)),
            State::Late => Some(self.last_ms?.saturating_add(period_ms + grace_ms)),
            State::Down => None,
        }
    }
}

/// A heartbeat for a source that has no `heartbeat` configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotWatched;

#[derive(Clone, Debug, Default)]
pub struct Heartbeats {
    watches: BTreeMap<String, Watch>,
    pending: Vec<Transition>,
}

impl Heartbeats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which sources are watched and how: a source kept with the same
    /// spec keeps its state; a new one (or one whose spec changed) starts
    /// `new`, as if just started; sources left out are dropped.
    pub fn configure(&mut self, specs: &[(String, Spec)], now: u64) {
        self.advance(now);
        let mut old = std::mem::take(&mut self.watches);
        for (name, spec) in specs {
            let kept = old.remove(name).filter(|w| w.spec == *spec);
            let watch = kept.unwrap_or_else(|| Watch {
                spec: *spec,
                state: State::New,
                last_ms: None,
                since_ms: now,
                report: Report::default(),
            });
            self.watches.insert(name.clone(), watch);
        }
    }

    /// Moves every source's state on to `now` (each step at its deadline).
    pub fn advance(&mut self, now: u64) {
        for (name, w) in self.watches.iter_mut() {
            while let Some(at) = w.deadline().filter(|at| *at <= now) {
                let to = match w.state {
                    State::Up if w.spec.grace_ms > 0 => State::Late,
                    _ => State::Down,
                };
                self.pending.push(Transition {
                    source: name.clone(),
                    from: w.state,
                    to,
                    at_ms: at,
                    reason: Reason::Silent,
                });
                w.state = to;
            }
        }
    }

    /// A heartbeat from `source` at `now`; returns its new state.
    pub fn beat(&mut self, source: &str, report: Report, now: u64) -> Result<State, NotWatched> {
        self.advance(now);
        let w = self.watches.get_mut(source).ok_or(NotWatched)?;
        let (to, reason) = if report.fail2ban_up == Some(false) {
            (State::Down, Reason::Fail2banDown)
        } else {
            (State::Up, Reason::Heard)
        };
        if w.state != to {
            self.pending.push(Transition {
                source: source.to_string(),
                from: w.state,
                to,
                at_ms: now,
                reason,
            });
        }
        w.state = to;
        w.last_ms = Some(now);
        w.report = report;
        Ok(to)
    }

    /// The earliest moment a state changes by itself; `None`: nothing to
    /// wait for (no watched source, or all of them down).
    pub fn next_deadline(&self) -> Option<u64> {
        self.watches.values().filter_map(Watch::deadline).min()
    }

    /// The transitions since the last call, oldest first per source.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        let mut t = std::mem::take(&mut self.pending);
        t.sort_by_key(|x| x.at_ms);
        t
    }

    pub fn get(&self, source: &str) -> Option<&Watch> {
        self.watches.get(source)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Watch)> {
        self.watches.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The sources that are down right now, by name.
    pub fn down(&self) -> Vec<&str> {
        self.iter()
            .filter(|(_, w)| w.state == State::Down)
            .map(|(n, _)| n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 300_000;
    const G: u64 = 120_000;

    fn watched(names: &[&str], now: u64) -> Heartbeats {
        let mut h = Heartbeats::new();
        let specs: Vec<(String, Spec)> = names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Spec {
                        period_ms: P,
                        grace_ms: G,
                    },
                )
            })
            .collect();
        h.configure(&specs, now);
        h
    }

    fn ok() -> Report {
        Report {
            fail2ban_up: Some(true),
            jails: BTreeMap::from([("sshd".to_string(), 3)]),
        }
    }

    fn states(h: &Heartbeats) -> Vec<(String, State)> {
        h.iter().map(|(n, w)| (n.to_string(), w.state)).collect()
    }

    fn steps(t: &[Transition]) -> Vec<(State, State, u64, Reason)> {
        t.iter()
            .map(|x| (x.from, x.to, x.at_ms, x.reason))
            .collect()
    }

    #[test]
    fn a_source_starts_new_and_a_heartbeat_makes_it_up() {
        let mut h = watched(&["web-1"], 1000);
        assert_eq!(h.get("web-1").unwrap().state, State::New);
        assert_eq!(h.get("web-1").unwrap().last_ms, None);
        assert_eq!(h.beat("web-1", ok(), 5000), Ok(State::Up));
        let w = h.get("web-1").unwrap();
        assert_eq!((w.state, w.last_ms), (State::Up, Some(5000)));
        assert_eq!(w.report.jails["sshd"], 3);
        assert_eq!(
            steps(&h.take_transitions()),
            vec![(State::New, State::Up, 5000, Reason::Heard)]
        );
        assert!(h.take_transitions().is_empty(), "taken once");
    }

    #[test]
    fn up_goes_late_after_the_period_and_down_after_the_grace() {
        let mut h = watched(&["web-1"], 0);
        h.beat("web-1", ok(), 1000).unwrap();
        h.take_transitions();
        assert_eq!(h.next_deadline(), Some(1000 + P));
        h.advance(1000 + P - 1);
        assert_eq!(h.get("web-1").unwrap().state, State::Up, "1 ms before");
        h.advance(1000 + P);
        assert_eq!(h.get("web-1").unwrap().state, State::Late);
        assert_eq!(h.next_deadline(), Some(1000 + P + G));
        h.advance(1000 + P + G - 1);
        assert_eq!(h.get("web-1").unwrap().state, State::Late);
        h.advance(1000 + P + G);
        assert_eq!(h.get("web-1").unwrap().state, State::Down);
        assert_eq!(h.next_deadline(), None, "nothing to wait for when down");
        assert_eq!(
            steps(&h.take_transitions()),
            vec![
                (State::Up, State::Late, 1000 + P, Reason::Silent),
                (State::Late, State::Down, 1000 + P + G, Reason::Silent),
            ]
        );
    }

    #[test]
    fn a_late_wake_still_records_each_step_at_its_own_time() {
        let mut h = watched(&["web-1"], 0);
        h.beat("web-1", ok(), 0).unwrap();
        h.take_transitions();
        h.advance(10 * P);
        assert_eq!(
            steps(&h.take_transitions()),
            vec![
                (State::Up, State::Late, P, Reason::Silent),
                (State::Late, State::Down, P + G, Reason::Silent),
            ]
        );
    }

    #[test]
    fn a_heartbeat_in_time_keeps_it_up_and_moves_the_deadline() {
        let mut h = watched(&["web-1"], 0);
        for i in 0..10 {
            h.beat("web-1", ok(), i * (P - 1)).unwrap();
            h.advance(i * (P - 1) + P - 2);
            assert_eq!(h.get("web-1").unwrap().state, State::Up);
        }
        assert_eq!(h.take_transitions().len(), 1, "only new -> up");
    }

    #[test]
    fn late_and_down_recover_with_the_next_heartbeat() {
        let mut h = watched(&["web-1"], 0);
        h.beat("web-1", ok(), 0).unwrap();
        h.advance(P + 1);
        assert_eq!(h.beat("web-1", ok(), P + 5), Ok(State::Up));
        h.advance(2 * P + G + 10);
        assert_eq!(h.get("web-1").unwrap().state, State::Down);
        assert_eq!(h.beat("web-1", ok(), 3 * P), Ok(State::Up));
        let t = steps(&h.take_transitions());
        assert_eq!(
            t.last(),
            Some(&(State::Down, State::Up, 3 * P, Reason::Heard))
        );
        assert_eq!(t.iter().filter(|x| x.1 == State::Up).count(), 3);
    }

    #[test]
    fn fail2ban_reported_down_is_down_at_once_and_up_again_when_it_answers() {
        let mut h = watched(&["web-1"], 0);
        h.beat("web-1", ok(), 10).unwrap();
        let stopped = Report {
            fail2ban_up: Some(false),
            jails: BTreeMap::new(),
        };
        assert_eq!(h.beat("web-1", stopped.clone(), 20), Ok(State::Down));
        assert_eq!(h.get("web-1").unwrap().report.fail2ban_up, Some(false));
        assert_eq!(h.next_deadline(), None);
        // still down while it keeps saying so, without new transitions
        h.take_transitions();
        assert_eq!(h.beat("web-1", stopped, 30), Ok(State::Down));
        assert!(h.take_transitions().is_empty());
        assert_eq!(h.beat("web-1", ok(), 40), Ok(State::Up));
        assert_eq!(
            steps(&h.take_transitions()),
            vec![(State::Down, State::Up, 40, Reason::Heard)]
        );
        // from new straight to down as well
        let mut h = watched(&["web-1"], 0);
        let stopped = Report {
            fail2ban_up: Some(false),
            ..Report::default()
        };
        h.beat("web-1", stopped, 5).unwrap();
        assert_eq!(
            steps(&h.take_transitions()),
            vec![(State::New, State::Down, 5, Reason::Fail2banDown)]
        );
    }

    #[test]
    fn a_heartbeat_without_health_counts_as_up() {
        let mut h = watched(&["web-1"], 0);
        assert_eq!(h.beat("web-1", Report::default(), 1), Ok(State::Up));
        assert_eq!(h.get("web-1").unwrap().report.fail2ban_up, None);
    }

    #[test]
    fn never_heard_goes_down_after_one_period_and_grace_from_the_start() {
        let mut h = watched(&["web-1"], 500);
        assert_eq!(h.next_deadline(), Some(500 + P + G));
        h.advance(500 + P + G - 1);
        assert_eq!(h.get("web-1").unwrap().state, State::New, "no late for new");
        h.advance(500 + P + G);
        assert_eq!(h.get("web-1").unwrap().state, State::Down);
        assert_eq!(
            steps(&h.take_transitions()),
            vec![(State::New, State::Down, 500 + P + G, Reason::Silent)]
        );
        assert_eq!(h.get("web-1").unwrap().last_ms, None);
    }

    #[test]
    fn zero_grace_skips_late() {
        let mut h = Heartbeats::new();
        h.configure(
            &[(
                "a".into(),
                Spec {
                    period_ms: 1000,
                    grace_ms: 0,
                },
            )],
            0,
        );
        h.beat("a", ok(), 0).unwrap();
        h.take_transitions();
        assert_eq!(h.next_deadline(), Some(1000));
        h.advance(1000);
        assert_eq!(
            steps(&h.take_transitions()),
            vec![(State::Up, State::Down, 1000, Reason::Silent)]
        );
    }

    #[test]
    fn the_next_deadline_is_the_nearest_of_all_sources() {
        let mut h = watched(&["a", "b", "c"], 0);
        h.beat("a", ok(), 100).unwrap();
        h.beat("b", ok(), 50).unwrap();
        assert_eq!(h.next_deadline(), Some(50 + P), "b's period ends first");
        h.advance(50 + P);
        assert_eq!(h.next_deadline(), Some(100 + P), "then a's");
        h.advance(100 + P);
        assert_eq!(h.next_deadline(), Some(P + G), "then c, never heard");
        h.advance(P + G);
        assert_eq!(h.down(), vec!["c"]);
        h.advance(u64::MAX / 2);
        assert_eq!(h.down(), vec!["a", "b", "c"]);
        assert_eq!(h.next_deadline(), None);
    }

    #[test]
    fn no_watched_source_means_no_deadline_and_unknown_sources_are_refused() {
        let mut h = Heartbeats::new();
        assert_eq!(h.next_deadline(), None);
        assert_eq!(h.beat("web-1", ok(), 0), Err(NotWatched));
        let mut h = watched(&["a"], 0);
        assert_eq!(h.beat("b", ok(), 0), Err(NotWatched));
        assert!(h.get("b").is_none());
    }

    #[test]
    fn reconfigure_keeps_unchanged_sources_and_restarts_changed_ones() {
        let mut h = watched(&["a", "b", "c"], 0);
        h.beat("a", ok(), 10).unwrap();
        h.beat("b", ok(), 10).unwrap();
        let spec = Spec {
            period_ms: P,
            grace_ms: G,
        };
        let longer = Spec {
            period_ms: 2 * P,
            grace_ms: G,
        };
        h.configure(
            &[("a".into(), spec), ("b".into(), longer), ("d".into(), spec)],
            20,
        );
        let s = states(&h);
        assert_eq!(
            s,
            vec![
                ("a".into(), State::Up),
                ("b".into(), State::New),
                ("d".into(), State::New),
            ],
            "c dropped, b restarted with its new period"
        );
        assert_eq!(h.get("a").unwrap().last_ms, Some(10));
        assert_eq!(h.get("d").unwrap().since_ms, 20);
        assert_eq!(h.next_deadline(), Some(10 + P));
    }

    #[test]
    fn state_names() {
        let names: Vec<&str> = [State::New, State::Up, State::Late, State::Down]
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(names, ["new", "up", "late", "down"]);
    }
}
