//! Keeps every frame in memory: for tests that inspect what was shown.

use std::sync::{Arc, Mutex};

use super::{PanelError, PanelOutput};
use crate::core::color::Rgb;
use crate::core::scene::Frame;

#[derive(Clone, Default)]
pub struct MemoryPanel {
    frames: Arc<Mutex<Vec<(u64, Frame)>>>,
    sweeps: Arc<Mutex<Vec<(String, Rgb, u64)>>>,
}

impl MemoryPanel {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every frame shown so far, with its time.
    pub fn frames(&self) -> Vec<(u64, Frame)> {
        self.frames.lock().expect("frames lock").clone()
    }

    /// Every sweep begun so far: route, colour, events it stands for.
    pub fn sweeps(&self) -> Vec<(String, Rgb, u64)> {
        self.sweeps.lock().expect("sweeps lock").clone()
    }

    pub fn last(&self) -> Option<Frame> {
        self.frames
            .lock()
            .expect("frames lock")
            .last()
            .map(|(_, f)| f.clone())
    }
}

impl PanelOutput for MemoryPanel {
    fn show(&mut self, frame: &Frame, t_ms: u64) -> Result<(), PanelError> {
        self.frames
            .lock()
            .expect("frames lock")
            .push((t_ms, frame.clone()));
        Ok(())
    }

    fn sweep_started(&mut self, route: &str, color: Rgb, events: u64) {
        self.sweeps
            .lock()
            .expect("sweeps lock")
            .push((route.to_string(), color, events));
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
