// banlight enclosure: the bought parts that go into it.
// Dimensions used for cut-outs and mountings, and simple stand-in models that
// only appear in the assembly previews (never in an exported part).

// ---------------------------------------------------------------- Blinkt!
// Pimoroni Blinkt!: eight APA102 LEDs in a row on a narrow PCB with a 2 x 20
// female header underneath; it plugs straight onto the Pi's GPIO header, so
// the LED row sits directly above the header row.
// Height of the LED tops above the Pi's PCB top:
//   2.5 (male header spacer) + 8.5 (female socket) + 1.6 (Blinkt! PCB)
//   + 1.5 (LED package, allowance) = 14.1 mm.
BLINKT_SOCKET_H = 8.5;
BLINKT_PCB_T    = 1.6;
BLINKT_LED_H    = 1.5;
BLINKT_LED_TOP  = 2.5 + BLINKT_SOCKET_H + BLINKT_PCB_T + BLINKT_LED_H;
// Outline used for the preview model and the header-side keep-out only
// (approximate; nothing in the printed parts depends on it except that the
// lid does not reach down into this zone).
BLINKT_PCB      = [61.0, 12.0];
BLINKT_LED_PITCH = 7.0;      // LED spacing of the preview model
// Window over the LED row: long enough for 8 LEDs on any pitch up to 7.5 mm
// (7 x 7.5 + 5 = 57.5 mm), wide enough that a row off the header centre line
// by up to 2 mm is still fully visible.
LED_WINDOW = [60.0, 9.0];

// ------------------------------------------------------------- diffuser
// A 2 mm plate (opal acrylic, or natural/white PLA printed flat) sits in a
// recess on the inside of the top panel, 3 mm larger than the window all round.
DIFFUSER_T     = 2.0;
DIFFUSER_LEDGE = 3.0;
DIFFUSER = [LED_WINDOW.x + 2 * DIFFUSER_LEDGE, LED_WINDOW.y + 2 * DIFFUSER_LEDGE];

// ---------------------------------------------------------------- TM1637
// The common "4-digit LED display module" with a TM1637 (RobotDyn layout and
// its many copies): 42 x 24 mm PCB, a 0.36" 4-digit display (with colon) of
// 30 x 14 mm, 7.2 mm tall (the usual 3641-series body: 30.1 x 14.0 x 7.2 mm),
// centred on the board, four M2 holes (2.2 mm) 2.0 mm in from each edge, so
// 38 x 20 mm apart; a 4-pin right-angle header (CLK DIO VCC GND) on one short
// edge, its pins sticking out ~6 mm past the PCB. The display body passes
// through a cut-out 0.3 mm larger all round so a 0.5 mm offset of the display
// on the PCB is tolerated. Measure yours: these are the parameters to change.
TM_PCB        = [42.0, 24.0];
TM_PCB_T      = 1.2;
TM_DISPLAY    = [30.0, 14.0];
TM_DISPLAY_H  = 7.2;           // display body height above the module PCB
TM_DISPLAY_OFFSET = [0, 0];    // display centre relative to the PCB centre
TM_HOLE_SPACING = [38.0, 20.0];
TM_HOLE_D     = 2.2;           // M2
TM_BACK_H     = 3.5;           // pins / TM1637 chip under the module PCB
// Room left free on the header side for the wires: a soldered wire needs
// ~10 mm, a straight Dupont housing (14 mm) on the 6 mm pins needs ~20 mm.
TM_WIRE_ROOM  = 18.0;

// --------------------------------------------------------------- buttons
// Common 12 mm panel-mount momentary push buttons: M12 x 0.75 (or 1.0)
// threaded bushing, 12.0 mm; held by a nut of up to 17 mm across corners;
// body + solder lugs up to ~20 mm behind the panel; panel up to ~6 mm thick.
BUTTON_HOLE    = 12.4;
BUTTON_NUT     = 17.0;
BUTTON_DEPTH   = 20.0;
BUTTON_SPACING = 19.0;

// ------------------------------------------------------ preview models
module blinkt_model() {
    color("DimGray") translate([-HEADER_LEN / 2, -HEADER_WID / 2, 2.5])
        cube([HEADER_LEN, HEADER_WID, BLINKT_SOCKET_H]);
    color("Black") translate([-BLINKT_PCB.x / 2, -BLINKT_PCB.y / 2, 2.5 + BLINKT_SOCKET_H])
        cube([BLINKT_PCB.x, BLINKT_PCB.y, BLINKT_PCB_T]);
    for (i = [0 : 7])
        color("White")
            translate([(i - 3.5) * BLINKT_LED_PITCH - 2.5, -2.5, 2.5 + BLINKT_SOCKET_H + BLINKT_PCB_T])
                cube([5, 5, BLINKT_LED_H]);
}

// Origin: centre of the display face; module hangs below (towards -z).
module tm1637_model() {
    translate([-TM_DISPLAY_OFFSET.x, -TM_DISPLAY_OFFSET.y, -TM_DISPLAY_H]) {
        color("RoyalBlue") translate([-TM_PCB.x / 2, -TM_PCB.y / 2, -TM_PCB_T])
            difference() {
                cube([TM_PCB.x, TM_PCB.y, TM_PCB_T]);
                for (sx = [-1, 1], sy = [-1, 1])
                    translate([TM_PCB.x / 2 + sx * TM_HOLE_SPACING.x / 2,
                               TM_PCB.y / 2 + sy * TM_HOLE_SPACING.y / 2, -1])
                        cylinder(d = TM_HOLE_D, h = 5, $fn = 16);
            }
        color("Gainsboro")
            for (i = [0 : 3])
                translate([-TM_PCB.x / 2 - 6, (i - 1.5) * 2.54 - 0.3, -TM_PCB_T / 2 - 0.3])
                    cube([6 + 2, 0.6, 0.6]);
    }
    color("#202020") translate([-TM_DISPLAY.x / 2, -TM_DISPLAY.y / 2, -TM_DISPLAY_H])
        cube([TM_DISPLAY.x, TM_DISPLAY.y, TM_DISPLAY_H]);
    color("Red") for (i = [0 : 3])
        translate([(i - 1.5) * 7.2 - 2, -4, -0.05]) cube([4, 8, 0.1]);
}

// Origin: centre of the hole on the outer face of a panel of thickness t.
module button_model(t) {
    color("Silver") translate([0, 0, -t - 2]) cylinder(d = 12, h = t + 2 + 1.5, $fn = 32);
    color("Silver") translate([0, 0, 0]) cylinder(d = 14.5, h = 1.5, $fn = 32);
    color("Crimson") translate([0, 0, 1.5]) cylinder(d = 9, h = 2, $fn = 32);
    color("Silver") translate([0, 0, -t - 2]) cylinder(d = BUTTON_NUT, h = 2, $fn = 6);
    color("DimGray") translate([0, 0, -BUTTON_DEPTH]) cylinder(d = 11, h = BUTTON_DEPTH - t - 2, $fn = 32);
}

module pi_model(b) {
    s = board_size(b);
    color("ForestGreen") difference() {
        translate([0, 0, -PI_PCB_T]) linear_extrude(PI_PCB_T)
            offset(r = board_corner_r(b), $fn = 24) offset(delta = -board_corner_r(b)) square(s);
        for (h = board_holes(b)) translate([h.x, h.y, -5]) cylinder(d = PI_HOLE_D, h = 10, $fn = 16);
    }
    hc = header_center(b);
    color("Black") translate([hc.x - HEADER_LEN / 2, hc.y - HEADER_WID / 2, 0])
        cube([HEADER_LEN, HEADER_WID, HEADER_BASE_H]);
    // ports
    for (p = board_ports(b)) {
        if (p[1] == "y0")
            color("Silver") translate([p[2] - 4.5, -1, 0]) cube([9, 8, p[0] == "audio" ? 6 : 3.2]);
        if (p[1] == "x1")
            color("Silver") translate([s.x - 21 + 2, 2, 0]) cube([21, 52, 16]);
    }
    color("Gray") translate([20, s.y / 2 - 9, 0]) cube([14, 14, 1.5]);   // SoC
}
