#!/usr/bin/env bash
# Frame timing under load (issue 20, item 8): a panel that busy-waits as the
# Pi's bit-banging does, while client threads flood hooks; prints the
# intervals between frames and the hooks' latency. Figures, not a gate.
#
#   bench/frame_timing.sh [SECONDS] [CLIENTS]    (defaults 5 16)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FRAME_SECONDS=${1:-5} FRAME_CLIENTS=${2:-16} \
    cargo test --release --quiet --test frame_timing -- --ignored --nocapture 2>&1 \
    | grep -E '^frame timing|panicked|FAILED' 
