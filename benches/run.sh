#!/usr/bin/env bash
# `armboard run` benchmark: time from the command to the container's first output line, for
# the built-in greeting container,
#   cold: an empty package cache (the kernel, busybox and crun are fetched, the guest image
#         built), then warm: the same again with everything cached;
# and beside it `qemu-system-aarch64 -M virt -cpu cortex-a72 -nic none` booting the same
# kernel, initramfs and command line to the same output line.
#
# Usage: benches/run.sh
# Environment: ARMBOARD=PATH (default: cargo build --release), QEMU=PATH, SKIP_COLD=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QEMU=${QEMU:-qemu-system-aarch64}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/armboard-run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [[ -z ${ARMBOARD:-} ]]; then
    (cd "$ROOT" && cargo build --release -q)
    ARMBOARD=$ROOT/target/release/armboard
fi
command -v "$QEMU" >/dev/null || { echo "run.sh: $QEMU not found (apt-get install qemu-system-arm)" >&2; exit 1; }

# first_line NAME CMD...: seconds until the first stdout line matching the greeting.
first_line() {
    local name=$1
    shift
    local start
    start=$(date +%s.%N)
    "$@" </dev/null 2>"$WORK/$name.err" | while IFS= read -r line; do
        if [[ $line == *"Hello from a container"* ]]; then date +%s.%N >"$WORK/$name.t"; fi
    done
    [[ -f $WORK/$name.t ]] || { echo "run.sh: $name printed no greeting" >&2; tail -20 "$WORK/$name.err" >&2; exit 1; }
    echo "$(cat "$WORK/$name.t") - $start" | bc
}

if [[ -z ${SKIP_COLD:-} ]]; then
    cold=$(ARMBOARD_CACHE=$WORK/cache first_line cold "$ARMBOARD" run)
fi
warm=$(ARMBOARD_RUN_KEEP=$WORK/boot first_line warm "$ARMBOARD" run)
qemu=$(first_line qemu "$QEMU" -M virt -cpu cortex-a72 -nic none -m 1G -nographic -no-reboot \
    -kernel "$(cat "$WORK/boot/kernel")" -initrd "$WORK/boot/initrd" -append "$(cat "$WORK/boot/append")")

printf "%-28s %8s\n" "" "first line"
[[ -n ${cold:-} ]] && printf "%-28s %7.2fs\n" "armboard run, cold cache" "$cold"
printf "%-28s %7.2fs\n" "armboard run, warm cache" "$warm"
printf "%-28s %7.2fs\n" "qemu, same kernel+initramfs" "$qemu"
printf "ratio warm/qemu %.2f\n" "$(echo "$warm / $qemu" | bc -l)"
