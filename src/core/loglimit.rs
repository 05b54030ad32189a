//! Repeated errors logged with a limit: the first one, then at most one
//! summary per interval with how many were suppressed. Time is passed in.

#[derive(Debug, Default)]
pub struct LogLimit {
    interval_ms: u64,
    last_logged_ms: Option<u64>,
    suppressed: u64,
}

/// What to log now, if anything.
#[derive(Debug, PartialEq, Eq)]
pub enum LogNow {
    /// Log this occurrence; `suppressed` more happened since the last line.
    Log {
        suppressed: u64,
    },
    Quiet,
}

impl LogLimit {
    pub fn new(interval_ms: u64) -> LogLimit {
        LogLimit {
            interval_ms,
            ..Default::default()
        }
    }

    pub fn hit(&mut self, now_ms: u64) -> LogNow {
        let due = match self.last_logged_ms {
            None => true,
            // A clock that went backwards counts as due, so nothing is silenced for long.
            Some(last) => now_ms < last || now_ms - last >= self.interval_ms,
        };
        if due {
            self.last_logged_ms = Some(now_ms);
            LogNow::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            LogNow::Quiet
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_summary_per_interval() {
        let mut l = LogLimit::new(30_000);
        assert_eq!(l.hit(1_000), LogNow::Log { suppressed: 0 });
        for t in 1_001..1_100 {
            assert_eq!(l.hit(t), LogNow::Quiet);
        }
        assert_eq!(l.hit(30_999), LogNow::Quiet);
        assert_eq!(l.hit(31_000), LogNow::Log { suppressed: 100 });
        assert_eq!(l.hit(31_001), LogNow::Quiet);
        assert_eq!(l.hit(10), LogNow::Log { suppressed: 1 }, "clock went back");
    }
}
