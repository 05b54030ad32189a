// banlight enclosure: Raspberry Pi board data.
//
// Board coordinates: origin at the board's lower-left corner seen from the
// component side, with the edge that carries the power connector along y = 0
// ("port edge") and the 40-pin GPIO header along the opposite long edge.
// z = 0 is the top copper of the PCB; heights below are above the PCB top.
//
// Sources: the Raspberry Pi mechanical drawings (Pi 3B/3B+, 4B, 5: 85 x 56 mm,
// four 2.75 mm (M2.5) holes 58 x 49 mm apart, 3.5 mm from the edges, 3 mm
// corner radius; Zero 2 W: 65 x 30 mm, holes 58 x 23 mm apart, 3.5 mm from the
// edges). Connector centres along the port edge are the dimensioned ones from
// those drawings (Pi 4B: USB-C 11.2, micro-HDMI 26.0 / 39.5, audio 54.0;
// Pi 5: USB-C 11.2, micro-HDMI 25.8 / 39.2; Pi 3B: micro-USB 10.6, HDMI 32.0,
// audio 53.5; Zero 2 W: mini-HDMI 12.4, USB 41.4, PWR 54.0). The header is
// centred between the two header-side holes (x = 32.5) on the hole line
// (3.5 mm from the edge), pin 1 at the left (x = 8.37) on the inner row.
//
// Cut-out sizes are for the *plug overmould*, not the receptacle: the plug
// has to reach through the wall (see PLUG_* below).

BOARDS = ["zero2w", "pi3", "pi4", "pi5"];

PI_PCB_T   = 1.4;    // PCB thickness (1.4 mm nominal on all of them)
PI_HOLE_D  = 2.75;   // mounting holes, M2.5 clearance
PI_KEEPOUT = 6.0;    // component-free pad diameter around each hole

// Plug overmoulds (largest common ones, + margin): [width, height]
PLUG_USBC   = [13.0, 8.0];   // USB-C overmould is typically 12 x 6.5 mm
PLUG_MUSB   = [12.0, 8.0];   // micro-USB: typically 10.5 x 7 mm
PLUG_MHDMI  = [12.0, 8.0];   // micro-HDMI: typically 11 x 7 mm
PLUG_MINIHDMI = [14.0, 9.0]; // mini-HDMI: typically 12 x 8 mm
PLUG_HDMI   = [21.0, 11.0];  // full HDMI: typically 20 x 10 mm
PLUG_AUDIO  = [8.0, 8.0];    // 3.5 mm jack: 6 mm body

function board_index(b) =
    b == "zero2w" ? 0 : b == "pi3" ? 1 : b == "pi4" ? 2 : b == "pi5" ? 3 :
    assert(false, str("unknown board '", b, "' (use one of ", BOARDS, ")"));

// [length x, width y]
function board_size(b) = [[65, 30], [85, 56], [85, 56], [85, 56]][board_index(b)];
function board_corner_r(b) = 3.0;

function board_holes(b) = let (s = board_size(b))
    [[3.5, 3.5], [61.5, 3.5], [3.5, s.y - 3.5], [61.5, s.y - 3.5]];
// The two holes on the port edge (y = 3.5) and the two on the header edge.
function port_side_holes(b)   = [for (h = board_holes(b)) if (h.y < 10) h];
function header_side_holes(b) = [for (h = board_holes(b)) if (h.y >= 10) h];

// Centre of the 2 x 20 header (between the pin rows) in board coordinates.
function header_center(b) = [32.5, board_size(b).y - 3.5];
HEADER_LEN   = 20 * 2.54;  // 50.8 mm
HEADER_WID   = 2 * 2.54;   // 5.08 mm
HEADER_BASE_H = 2.5;       // plastic spacer of the male header
HEADER_PIN_H  = 8.5;       // pin length above the PCB (2.5 plastic + 6 mm)

// Tallest component above the PCB (the Blinkt! is handled separately).
// USB-A stacks on the B boards are ~16 mm, Ethernet ~13.5 mm; on the Zero the
// tallest part is the mini-HDMI socket (~3.3 mm).
function board_tallest(b) = [3.5, 16.2, 16.2, 16.2][board_index(b)];

// Ports. Each entry: [name, edge, centre along the edge, [cut width, cut
// height, centre height above the PCB top], open by default]. edge: "y0" = port
// edge (back of the box), "x1" = right-hand short end. Ports open by default
// are notches open to the shell's rim (no bridge to print); the optional ones
// (open_ports) are closed windows above the rim, so they never take away the
// rim under a latch.
function board_ports(b) =
    b == "zero2w" ? [
        ["power", "y0", 54.0, [PLUG_MUSB.x, PLUG_MUSB.y, 1.3], true],
        ["usb",   "y0", 41.4, [PLUG_MUSB.x, PLUG_MUSB.y, 1.3], false],
        ["hdmi",  "y0", 12.4, [PLUG_MINIHDMI.x, PLUG_MINIHDMI.y, 1.6], false],
    ] :
    b == "pi3" ? [
        ["power", "y0", 10.6, [PLUG_MUSB.x, PLUG_MUSB.y, 1.3], true],
        ["hdmi",  "y0", 32.0, [PLUG_HDMI.x, PLUG_HDMI.y, 3.2], false],
        ["audio", "y0", 53.5, [PLUG_AUDIO.x, PLUG_AUDIO.y, 3.0], false],
        // Ethernet + 2 x 2 USB-A as one opening (y 1.5 .. 54.5, up to 16.5)
        ["lan_usb", "x1", 28.0, [53.0, 17.0, 8.0], true],
    ] :
    b == "pi4" ? [
        ["power", "y0", 11.2, [PLUG_USBC.x, PLUG_USBC.y, 1.6], true],
        ["hdmi0", "y0", 26.0, [PLUG_MHDMI.x, PLUG_MHDMI.y, 1.5], false],
        ["hdmi1", "y0", 39.5, [PLUG_MHDMI.x, PLUG_MHDMI.y, 1.5], false],
        ["audio", "y0", 54.0, [PLUG_AUDIO.x, PLUG_AUDIO.y, 3.0], false],
        ["lan_usb", "x1", 28.0, [53.0, 17.0, 8.0], true],
    ] :
    /* pi5 */ [
        ["power", "y0", 11.2, [PLUG_USBC.x, PLUG_USBC.y, 1.6], true],
        ["hdmi0", "y0", 25.8, [PLUG_MHDMI.x, PLUG_MHDMI.y, 1.5], false],
        ["hdmi1", "y0", 39.2, [PLUG_MHDMI.x, PLUG_MHDMI.y, 1.5], false],
        ["lan_usb", "x1", 28.0, [53.0, 17.0, 8.0], true],
    ];

// Micro-SD slot on the left short edge (x = 0): [centre y, cut width, cut top
// above PCB top]. On the B boards the card sits under the PCB near mid-edge
// (the cut covers y 15..35, wider than the card to cover the slot position on
// all three); on the Zero it is on the top side at y = 16.9.
function board_sd(b) = b == "zero2w" ? [16.9, 16.0, 2.5] : [25.0, 20.0, -0.6];

// Clearance between the board edge and the inside of the wall:
// [left (SD side), right, port edge, header edge]. The B boards' USB/Ethernet
// and micro-SD card overhang the PCB by ~2-2.5 mm; the port edge gets 4 mm so
// the base's latch arms and their slots pass between wall and standoffs.
function board_gaps(b) = b == "zero2w" ? [3.0, 3.0, 4.0, 2.5] : [3.0, 3.5, 4.0, 2.5];
