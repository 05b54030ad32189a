// banlight: printable enclosure for a Raspberry Pi + Pimoroni Blinkt! +
// TM1637 4-digit display + two 12 mm push buttons.
//
// Two printed parts that snap together without screws, plus an optional
// printed diffuser:
//   base     - floor plate with the Pi's standoffs and four flexible latch
//              arms; printed as it sits (flat side down).
//   shell    - top panel and four walls: LED window with diffuser recess,
//              display cut-out and mounting posts, button holes, vents, port
//              cut-outs; printed upside down (top panel on the bed).
//   diffuser - 2 mm plate for the LED window, if you print it instead of
//              cutting opal acrylic.
//
// Render one part for one board:
//   openscad -o base.stl -D 'board="pi4"' -D 'part="base"' banlight.scad
// or everything at once with ./render (see README.md).
//
// No supports anywhere: every downward-facing surface in print orientation is
// on the bed, a short bridge (the 6.8 mm latch windows; the 0.7 mm strokes of
// the engraved power symbol) or a 45 degree chamfer (the top edge). Holes in
// the top panel are vertical; the diffuser pocket opens upwards in print; port
// and card cut-outs are notches open to the shell's rim (the top of the
// print), so they need no bridge at all. The latch hooks are the bottom edge of the base plate
// itself, so their catching face lies on the bed (the usual snap hook on a
// vertical arm has an unprintable flat overhang there).

include <lib/boards.scad>
include <lib/parts.scad>

/* [What to render] */
board = "pi4";        // [zero2w, pi3, pi4, pi5]  (pi3 = 3B and 3B+)
part  = "assembly";   // [base, shell, diffuser, assembly, exploded, shell_inside, latch_section]

/* [Printing] */
wall        = 2.0;    // shell wall thickness
top_t       = 2.4;    // top panel thickness
base_t      = 3.0;    // base plate thickness (= latch hook height)
foot_h      = 2.0;    // shell rim below the base plate (carries the latches)
fit         = 0.3;    // gap between base plate edge and shell wall, per side
corner_r    = 3.0;    // outer corner radius
top_chamfer = 1.0;    // 45 degree chamfer round the top edge
engrave     = 0.6;    // depth of the power symbol

/* [Snap latches] */
latch_pos   = [0.3, 0.8];   // hook positions along the front and back walls (fraction of length)
latch_len   = 18.0;   // free length of the flexible arm
latch_w     = 1.8;    // arm width (in the bending direction)
latch_slot  = 1.8;    // room behind the arm to flex into (>= fit + hook_depth)
latch_end_gap = 1.2;  // gap that frees the arm's tip from the plate
hook_len    = 6.0;    // hook length along the wall
hook_depth  = 0.9;    // how far the hook reaches into the wall
hook_flat   = 1.2;    // vertical part of the hook above the catching face
window_play = 0.4;    // extra window length each side of the hook

/* [Pi mounting] */
standoff_h  = 5.0;    // room under the Pi for the wires soldered to the header
standoff_d  = 6.0;    // fits the 6 mm keep-out ring round each hole
pin_d       = 2.4;    // locating pin in the 2.75 mm hole
pin_port    = 1.2;    // pin length above the PCB, port-side holes (clamped)
pin_header  = 2.5;    // pin length above the PCB, header-side holes
clamp_d     = 5.0;    // shell posts that hold the Pi down at the port-side holes
clamp_gap   = 0.1;    // posts stop this far above the PCB
// The header-side holes may sit under the Blinkt!'s ends; posts there would
// have to pass it, so by default those holes only get long locating pins (the
// board cannot lift there by more than the 1-2 mm between LEDs and diffuser).
clamp_header_side = false;
// Height added between the Pi's header and the Blinkt! if you use a 40-pin
// riser or splitter instead of soldering the other wires under the Pi; the
// box grows taller by the same amount.
header_riser = 0;

// How the display module is held: "screw" = posts with 1.7 mm pilot holes
// for four M2 x 5-6 mm self-tapping screws; "peg" = 1.9 mm pegs through the
// module's holes, to be secured with a drop of glue or by melting the peg
// tips with a soldering iron (heat staking), no screws at all.
tm_mount    = "screw";  // [screw, peg]

/* [Layout] */
front_zone  = 38.0;   // depth of the display/button zone in front of the Pi
ceiling_gap = 0.5;    // above the tallest Pi component
led_gap     = 1.0;    // between the LED tops and the diffuser
diffuser_fit = 0.15;  // pocket clearance round the diffuser, per side
recess_skin = 1.2;    // panel left over the diffuser pocket
// Extra port cut-outs by name (see lib/boards.scad), e.g. ["hdmi0", "audio"];
// and default ones to leave closed, e.g. ["lan_usb"].
open_ports  = [];
close_ports = [];
vent_w      = 2.0;
vent_pitch  = 4.5;

/* [Detail] */
$fn = 32;
eps = 0.01;

// ------------------------------------------------------------ derived
B   = board_size(board);
G   = board_gaps(board);            // [left, right, port edge, header edge]
HC  = header_center(board);
SD  = board_sd(board);

min_inner_x = 2 + TM_WIRE_ROOM + TM_PCB.x + 2 + BUTTON_NUT + 4;   // front zone row
inner_x = max(G[0] + B.x + G[1], min_inner_x);
fz_y0   = G[2] + B.y + G[3];        // start of the front zone
inner_y = fz_y0 + front_zone;
outer   = [inner_x + 2 * wall, inner_y + 2 * wall];
inner_r = max(corner_r - wall, 0.5);

bx0 = G[0];                         // board origin in inner coordinates
by0 = G[2];

z_base_top = foot_h + base_t;
z_pcb_top  = z_base_top + standoff_h + PI_PCB_T;
recess_depth = top_t - recess_skin;
diffuser_drop = DIFFUSER_T - recess_depth;     // how far it sticks out of the pocket
above_pcb = max(board_tallest(board) + ceiling_gap,
                BLINKT_LED_TOP + header_riser + led_gap + diffuser_drop);
z_ceiling = z_pcb_top + above_pcb;
H = z_ceiling + top_t;              // overall height, rim to top

// The user faces the +y wall, so +x is on their LEFT. Seen from the front:
// display in the middle, its wires (header) on the left, buttons on the right.
led_c   = [bx0 + HC.x, by0 + HC.y];
fz_c    = (fz_y0 + inner_y) / 2;
tm_c    = [inner_x - 2 - TM_WIRE_ROOM - TM_PCB.x / 2, fz_c];   // module PCB centre
// The display reads correctly from the front, so its offset turns with it.
disp_c  = tm_c - TM_DISPLAY_OFFSET;
btn_x   = 2 + BUTTON_NUT / 2 + 2;
btn_mode  = [btn_x, fz_c + BUTTON_SPACING / 2];        // front: used most
btn_power = [btn_x, fz_c - BUTTON_SPACING / 2];
tm_post_len = TM_DISPLAY_H - top_t;  // display face flush with the top

function port_enabled(p) =
    (p[4] && len([for (n = close_ports) if (n == p[0]) n]) == 0) ||
    (!p[4] && len([for (n = open_ports) if (n == p[0]) n]) > 0);

// Sanity checks: fail the render instead of printing a part that cannot fit.
assert(tm_c.x - TM_PCB.x / 2 >= btn_x + BUTTON_NUT / 2 + 2, "display module and buttons overlap");
assert(fz_c + BUTTON_SPACING / 2 + BUTTON_NUT / 2 <= inner_y - 0.5, "mode button nut hits the front wall");
assert(BUTTON_SPACING >= BUTTON_NUT + 1, "button nuts overlap");
assert(fz_c - BUTTON_SPACING / 2 - BUTTON_NUT / 2 >= fz_y0 - 0.5, "power button nut runs into the Pi zone");
assert(tm_c.y - TM_PCB.y / 2 >= fz_y0 + 1, "display module runs into the Pi zone");
assert(tm_c.y + TM_PCB.y / 2 <= inner_y, "display module does not fit the front zone");
assert(H - BUTTON_DEPTH >= z_base_top + 1, "buttons too deep for the box");
assert(latch_slot >= fit + hook_depth + 0.3, "latch arm has no room to flex");
assert(tm_post_len > 1, "display taller than the panel: check TM_DISPLAY_H");
assert(tm_mount == "screw" || tm_mount == "peg", "tm_mount is screw or peg");

// Every latch window needs the rim below it, so none may meet a port notch;
// port windows must stay above the latch windows.
for (l = latches, p = board_ports(board))
    if (l[0] == "back" && p[1] == "y0" && port_enabled(p)) {
        if (p[4])
            assert(abs(l[1] - (bx0 + p[2])) >= hook_len / 2 + window_play + p[3][0] / 2 + 1,
                   str("latch window at x = ", l[1], " runs into the '", p[0], "' notch: change latch_pos"));
        else
            assert(port_z(p)[0] >= foot_h + base_t + 0.3 + 1.5,
                   str("the '", p[0], "' window comes down to the latch windows"));
    }

echo(str("banlight enclosure ", board, ": outer ", outer.x, " x ", outer.y, " x ", H,
         " mm, inner ", inner_x, " x ", inner_y, " mm"));

// ---------------------------------------------------------- 2D helpers
module rrect(size, r) {
    translate([r, r]) offset(r = r) square([size.x - 2 * r, size.y - 2 * r]);
}
module rrect_c(size, r) { translate(-size / 2) rrect(size, r); }

module inner2d() { rrect([inner_x, inner_y], inner_r); }
module outer2d() { translate([-wall, -wall]) rrect(outer, corner_r); }

// Local frame on a long wall: x along the wall, +y into the box, origin on
// the wall's inner face.
module at_wall(side, pos) {
    if (side == "back")  translate([pos, 0, 0]) children();
    if (side == "front") translate([pos, inner_y, 0]) rotate(180) children();
}
// Each latch: [side, position along x, arm direction in the local frame].
latches = [for (side = ["back", "front"], f = latch_pos)
    let (x = f * inner_x, d = x < inner_x / 2 ? 1 : -1)
    [side, x, side == "back" ? d : -d]];

// Vent slots: rows of slots along x.
module vent_slots(x0, x1, y0, y1) {
    n = floor((y1 - y0 - vent_w) / vent_pitch) + 1;
    if (n > 0 && x1 - x0 > vent_w)
        for (i = [0 : n - 1])
            translate([x0, y0 + i * vent_pitch]) hull() {
                translate([vent_w / 2, vent_w / 2]) circle(d = vent_w, $fn = 16);
                translate([x1 - x0 - vent_w / 2, vent_w / 2]) circle(d = vent_w, $fn = 16);
            }
}

// ================================================================ base
// In base coordinates: z = 0 is the underside of the plate.
module latch_cut2d() {
    xa = -hook_len / 2;                 // free end of the arm
    xr = xa + latch_len;                // root
    translate([xa - latch_end_gap, fit + latch_w]) square([xr - xa + latch_end_gap, latch_slot]);
    translate([xa - latch_end_gap, -1]) square([latch_end_gap, fit + latch_w + latch_slot + 1]);
    translate([xr, fit + latch_w + latch_slot / 2]) circle(d = latch_slot, $fn = 16);
}
module hook3d() {
    xa = -hook_len / 2;
    translate([xa, 0, 0]) rotate([90, 0, 90]) linear_extrude(hook_len)
        polygon([[fit + 0.6, 0], [-hook_depth, 0], [-hook_depth, hook_flat],
                 [fit, base_t], [fit + 0.6, base_t]]);
}

module base_plate2d() {
    difference() {
        offset(delta = -fit) inner2d();
        for (l = latches) at_wall(l[0], l[1]) mirror([l[2] < 0 ? 1 : 0, 0]) latch_cut2d();
        // vents under the Pi, between the standoffs
        translate([bx0, by0]) vent_slots(12, B.x - 12 > 56 ? 56 : B.x - 12, 9, B.y - 9);
    }
}

module standoff(h_pin) {
    cylinder(d = standoff_d, h = standoff_h + eps);
    translate([0, 0, standoff_h]) {
        cylinder(d = pin_d, h = PI_PCB_T + h_pin - 0.4);
        translate([0, 0, PI_PCB_T + h_pin - 0.4]) cylinder(d1 = pin_d, d2 = pin_d - 0.8, h = 0.4);
    }
}

module base() {
    linear_extrude(base_t) base_plate2d();
    for (l = latches) at_wall(l[0], l[1]) mirror([l[2] < 0 ? 1 : 0, 0, 0]) hook3d();
    translate([bx0, by0, base_t - eps]) {
        for (h = port_side_holes(board))   translate(h) standoff(pin_port);
        for (h = header_side_holes(board)) translate(h) standoff(pin_header);
    }
}

// =============================================================== shell
// In assembly coordinates: z = 0 is the shell's rim (the desk).
module power_symbol2d(d = 5.2, stroke = 0.7) {
    difference() {
        circle(d = d, $fn = 32);
        circle(d = d - 2 * stroke, $fn = 32);
        polygon([[0, 0], [-d, d * 1.2], [d, d * 1.2]]);   // gap at the top
    }
    translate([-stroke / 2, 0]) square([stroke, d / 2 + stroke / 2]);
}

module panel_holes2d() {
    translate(led_c) rrect_c(LED_WINDOW, 1.0);
    translate(disp_c) rrect_c(TM_DISPLAY + [0.6, 0.6], 0.5);
    for (p = [btn_mode, btn_power]) translate(p) circle(d = BUTTON_HOLE, $fn = 64);
    // vents over the SoC, clear of the diffuser pocket and the clamp posts
    translate([bx0, by0]) vent_slots(12, B.x - 12 > 56 ? 56 : B.x - 12, 9,
                                     HC.y - DIFFUSER.y / 2 - diffuser_fit - 2.5);
}

// Pocket for the diffuser, with two small crush ribs on each long side so an
// acrylic plate is held by friction (add a drop of glue if yours is loose).
module diffuser_pocket2d() {
    p = DIFFUSER + 2 * [diffuser_fit, diffuser_fit];
    difference() {
        rrect_c(p, 0.5);
        for (sx = [-1, 1], sy = [-1, 1])
            translate([sx * p.x / 4, sy * (p.y / 2 + 0.35)]) circle(d = 1.4, $fn = 16);
    }
}

module tm_post() {
    difference() {
        cylinder(d = 4.6, h = tm_post_len + eps);
        if (tm_mount == "screw")
            translate([0, 0, -1]) cylinder(d = 1.7, h = tm_post_len + 0.5, $fn = 16); // M2 self-tapping
    }
    if (tm_mount == "peg")    // through the module PCB and 1.5 mm beyond it
        translate([0, 0, -TM_PCB_T - 1.5]) cylinder(d = TM_HOLE_D - 0.3, h = TM_PCB_T + 1.5 + eps, $fn = 16);
}

module clamp_post() {
    post_h = z_ceiling - (z_pcb_top + clamp_gap);
    difference() {
        cylinder(d = clamp_d, h = post_h + eps);
        translate([0, 0, -1]) cylinder(d = pin_d + 0.6, h = 1 + pin_port + 0.4, $fn = 16);
    }
}

// Default ports: notches from the rim up. Optional ports: windows.
function port_z(p) = let (top = z_pcb_top + p[3][2] + p[3][1] / 2)
    p[4] ? [-1, top] : [top - p[3][1], top];
module port_cutouts() {
    for (p = board_ports(board)) if (port_enabled(p)) {
        w = p[3][0]; z = port_z(p);
        if (p[1] == "y0")
            translate([bx0 + p[2] - w / 2, -wall - 1, z[0]]) cube([w, wall + 1.5, z[1] - z[0]]);
        if (p[1] == "x1")
            translate([inner_x - 0.5, by0 + p[2] - w / 2, z[0]]) cube([wall + 1.5, w, z[1] - z[0]]);
    }
    // micro-SD slot on the left end
    translate([-wall - 1, by0 + SD[0] - SD[1] / 2, -1]) cube([wall + 1.5, SD[1], z_pcb_top + SD[2] + 1]);
}

// Gaps in the rim so air reaches the vents in the base plate.
module foot_gaps() {
    translate([inner_x / 2 - 10, inner_y - 0.5, -1]) cube([20, wall + 1.5, foot_h + 1 - 0.3]);
    translate([-wall - 1, inner_y * 0.78 - 8, -1]) cube([wall + 1.5, 16, foot_h + 1 - 0.3]);
    translate([inner_x - 0.5, inner_y * 0.82 - 8, -1]) cube([wall + 1.5, 16, foot_h + 1 - 0.3]);
}

module latch_windows() {
    for (l = latches) at_wall(l[0], l[1])
        translate([-hook_len / 2 - window_play, -wall - 1, foot_h - 0.15])
            cube([hook_len + 2 * window_play, wall + 1.5, base_t + 0.45]);
}

module shell() {
    difference() {
        union() {
            difference() {
                hull() {
                    linear_extrude(H - top_chamfer) outer2d();
                    translate([0, 0, H - eps]) linear_extrude(eps) offset(delta = -top_chamfer) outer2d();
                }
                translate([0, 0, -1]) linear_extrude(z_ceiling + 1) inner2d();
            }
            // corner stops: the base plate's top rests against them
            intersection() {
                translate([0, 0, z_base_top]) linear_extrude(z_ceiling - z_base_top + eps)
                    for (c = [[0, 0], [inner_x - 3.5, 0], [0, inner_y - 3.5], [inner_x - 3.5, inner_y - 3.5]])
                        translate(c) square(3.5);
                translate([0, 0, -1]) linear_extrude(H) inner2d();
            }
            // posts that hold the Pi down at its port-side holes
            for (h = clamp_header_side ? board_holes(board) : port_side_holes(board))
                translate([bx0 + h.x, by0 + h.y, z_pcb_top + clamp_gap]) clamp_post();
            // display module posts
            for (sx = [-1, 1], sy = [-1, 1])
                translate([tm_c.x + sx * TM_HOLE_SPACING.x / 2, tm_c.y + sy * TM_HOLE_SPACING.y / 2,
                           z_ceiling - tm_post_len])
                    tm_post();
        }
        translate([0, 0, z_ceiling - 1]) linear_extrude(top_t + 2) panel_holes2d();
        translate([led_c.x, led_c.y, z_ceiling - eps]) linear_extrude(recess_depth + eps) diffuser_pocket2d();
        translate([btn_power.x + BUTTON_NUT / 2 + 3.5, btn_power.y, H - engrave])
            linear_extrude(engrave + 1) rotate(180) power_symbol2d();   // upright for the user
        port_cutouts();
        latch_windows();
        foot_gaps();
    }
}

module diffuser() {
    linear_extrude(DIFFUSER_T) rrect_c(DIFFUSER - [0.1, 0.1], 0.5);
}

// ============================================================ previews
module innards() {
    translate([bx0, by0, z_pcb_top]) {
        pi_model(board);
        translate([HC.x, HC.y, header_riser]) blinkt_model();
    }
}
module shell_furniture() {
    translate([disp_c.x, disp_c.y, H]) rotate(180) tm1637_model();   // upright for the user
    for (p = [btn_mode, btn_power]) translate([p.x, p.y, H]) button_model(top_t);
    color("WhiteSmoke", 0.8) translate([led_c.x, led_c.y, z_ceiling - diffuser_drop]) diffuser();
}

module latch_section2d() {
    linear_extrude(0.1) projection(cut = true)
        rotate([0, 90, 0]) translate([-latches[0][1], 0, 0])
            intersection() {
                children();
                translate([-500, -wall - 1, -1]) cube([1000, 16, 14]);
            }
}

if (part == "base") {
    base();
} else if (part == "shell") {
    // print orientation: top panel on the bed
    translate([0, 0, H]) rotate([180, 0, 0]) shell();
} else if (part == "diffuser") {
    diffuser();
} else if (part == "assembly") {
    color("SteelBlue") translate([0, 0, foot_h]) base();
    innards();
    color("Gold") shell();
    shell_furniture();
} else if (part == "exploded") {
    color("SteelBlue") base();
    translate([0, 0, 6]) innards();
    translate([0, 0, 55]) {
        color("Gold", 0.45) shell();
        shell_furniture();
    }
} else if (part == "latch_section") {
    // cut through the first back-wall latch, to check the hook engagement
    // a true 2D section (plane x = hook centre), laid flat: height up the
    // page's x axis, box interior towards +y
    color("SteelBlue") latch_section2d() translate([0, 0, foot_h]) base();
    color("Gold") latch_section2d() shell();
} else if (part == "shell_inside") {
    color("Gold") translate([0, 0, H]) rotate([180, 0, 0]) shell();
} else {
    assert(false, str("unknown part '", part, "'"));
}
