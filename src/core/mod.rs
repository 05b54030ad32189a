//! Pure logic: no I/O, no tokio, time passed in as milliseconds.

pub mod breakdown;
pub mod buttons;
pub mod clockcheck;
pub mod color;
pub mod counters;
pub mod dedupe;
pub mod display;
pub mod heartbeat;
pub mod history;
pub mod hook;
pub mod ignore;
pub mod larson;
pub mod loglimit;
pub mod mqtt;
pub mod names;
pub mod quiet;
pub mod ratelimit;
pub mod scene;
pub mod silence;
pub mod time;
pub mod verdict;
pub mod wiring;
