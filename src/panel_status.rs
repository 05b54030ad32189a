//! What the engine shows and measured of the panel, for status, `/metrics`,
//! the page and MQTT. The engine writes it after each frame; the rest read.

/// What the rest of the daemon may read about the panel.
#[derive(Clone, Debug, Default)]
pub struct PanelStatus {
    pub mode: String,
    pub dark: bool,
    pub backend: String,
    pub health: Vec<(&'static str, String)>,
    pub shutting_down: bool,
    pub led_brightness: u8,
    pub display_brightness: u8,
    pub frames_shown: u64,
    pub display: String,
    /// Quiet hours hold the panel dark or dim right now.
    pub quiet: bool,
}

impl PanelStatus {
    /// What MQTT publishes on `…/panel`, as JSON.
    pub fn published(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": self.mode,
            "dark": self.dark,
            "quiet": self.quiet,
            "display": self.display,
            "led_brightness": self.led_brightness,
            "display_brightness": self.display_brightness,
            "backend": self.backend,
        })
    }

    /// Do the published fields agree (a frame that changed none of them
    /// is no news for MQTT)?
    pub fn same_published(&self, other: &PanelStatus) -> bool {
        self.mode == other.mode
            && self.dark == other.dark
            && self.quiet == other.quiet
            && self.display == other.display
            && self.led_brightness == other.led_brightness
            && self.display_brightness == other.display_brightness
            && self.backend == other.backend
    }
}
