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
