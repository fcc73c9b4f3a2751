#!/usr/bin/env bash
# Boot benchmark: Debian bookworm's arm64 kernel with a busybox initramfs whose init prints a
# marker and powers off, under `armboard boot --machine virt` and under
# `qemu-system-aarch64 -M virt -cpu cortex-a72 -nic none`, one after the other. Prints each
# one's wall time to the marker, total wall time, peak RSS, and the ratios armboard/qemu, and
# armboard's memory overhead: peak RSS beyond the guest RAM the guest touched.
# MACHINE=raspi3b boots the same kernel with Debian's bcm2837-rpi-3-b.dtb on the Pi 3 B
# (4 CPUs, 1 GiB; the watchdog module powers it off) beside `qemu-system-aarch64 -M raspi3b`,
# both with QEMU's default (one thread per vCPU) and `-accel tcg,thread=single`.
#
# Usage: benches/boot.sh
# Environment:
#   MACHINE=NAME    virt (default) or raspi3b
#   ARMBOARD=PATH   armboard binary (default: cargo build --release, target/release/armboard)
#   ENGINE=NAME     armboard engine (default tiered)
#   SMP=N           CPUs (default 1)
#   MEM=SIZE        guest RAM (default 512M)
#   QEMU=PATH       qemu-system-aarch64 (default from PATH)
#   REPS=N          boot each N times, one after the other (default 1); with N > 1 also
#                   prints the median of the ratios to the marker (a noisy host varies
#                   by 20-40% from run to run)
#   APPEND=ARGS     more kernel command line for every boot (e.g. maxcpus=1: the Pi's
#                   secondary cores then stay in the kernel's holding pen)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MACHINE=${MACHINE:-virt}
ENGINE=${ENGINE:-tiered}
SMP=${SMP:-1}
MEM=${MEM:-512M}
QEMU=${QEMU:-qemu-system-aarch64}
REPS=${REPS:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/armboard-boot.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [[ -z ${ARMBOARD:-} ]]; then
    (cd "$ROOT" && cargo build --release -q)
    ARMBOARD=$ROOT/target/release/armboard
fi
command -v "$QEMU" >/dev/null || { echo "boot.sh: $QEMU not found (apt-get install qemu-system-arm)" >&2; exit 1; }

KERNEL=$("$ARMBOARD" image kernel)
cat >"$WORK/init.sh" <<'SH'
echo BOOT-MARKER
SH
APPEND="console=ttyAMA0 panic=-1${APPEND:+ $APPEND}"
if [[ $MACHINE == raspi3b ]]; then
    SMP=4 MEM=1G
    DTB=$(ls "$(dirname "$(dirname "$KERNEL")")"/usr/lib/linux-image-*/broadcom/bcm2837-rpi-3-b.dtb)
    "$ARMBOARD" image initramfs --out "$WORK/initrd.gz" --modules bcm2835_wdt --init "$WORK/init.sh" >/dev/null
else
    "$ARMBOARD" image initramfs --out "$WORK/initrd.gz" --modules virtio_mmio --init "$WORK/init.sh" >/dev/null
fi

# run NAME CMD...: wall time to the marker line, total wall time, peak RSS (KiB).
run() {
    local name=$1
    shift
    local start marker end
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$WORK/$name.rss" "$@" </dev/null 2>"$WORK/$name.err" |
        while IFS= read -r line; do
            if [[ $line == *BOOT-MARKER* ]]; then date +%s.%N >"$WORK/$name.marker"; fi
        done
    end=$(date +%s.%N)
    [[ -f $WORK/$name.marker ]] || { echo "boot.sh: $name never printed the marker" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    marker=$(cat "$WORK/$name.marker")
    echo "$(echo "$marker - $start" | bc) $(echo "$end - $start" | bc) $(tail -1 "$WORK/$name.rss")"
}

# armboard's own accounting (ARMBOARD_JIT_STATS): peak RSS, guest RAM touched, the rest.
memory_line() {
    local m
    m=$(grep -o 'peak RSS .*' "$WORK/armboard.err" | tail -1)
    echo "armboard memory: ${m:-not reported}"
}

# median_line LABEL RATIO...: the median of the ratios (REPS > 1 only).
median_line() {
    local label=$1
    shift
    ((REPS > 1)) || return 0
    printf '%s\n' "$@" | sort -g | awk -v n="$#" -v l="$label" \
        '{ r[NR] = $1 } END { m = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
            printf "median ratio armboard/qemu to marker over %d runs: %.2f%s\n", n, m, l }'
}

RATIOS=()
RATIOS1=()
for ((rep = 1; rep <= REPS; rep++)); do
if [[ $MACHINE == raspi3b ]]; then
    read -r a_mark a_total a_rss < <(run armboard env ARMBOARD_JIT_STATS=1 "$ARMBOARD" boot --machine raspi3b --engine "$ENGINE" \
        --kernel "$KERNEL" --dtb "$DTB" --initrd "$WORK/initrd.gz" --append "$APPEND")
    qemu_pi=("$QEMU" -M raspi3b -nographic -no-reboot -kernel "$KERNEL" -dtb "$DTB" -initrd "$WORK/initrd.gz" -append "$APPEND")
    read -r q_mark q_total q_rss < <(run qemu "${qemu_pi[@]}")
    read -r s_mark s_total s_rss < <(run qemu1 "${qemu_pi[@]}" -accel tcg,thread=single)
    printf "%-16s %10s %10s %12s\n" "" "to marker" "total" "peak RSS"
    printf "%-16s %9.2fs %9.2fs %9d MiB\n" "armboard" "$a_mark" "$a_total" $((a_rss / 1024))
    printf "%-16s %9.2fs %9.2fs %9d MiB\n" "qemu" "$q_mark" "$q_total" $((q_rss / 1024))
    printf "%-16s %9.2fs %9.2fs %9d MiB\n" "qemu thread=single" "$s_mark" "$s_total" $((s_rss / 1024))
    printf "ratio armboard/qemu to marker: %.2f (default), %.2f (thread=single) (raspi3b, engine %s)\n" \
        "$(echo "$a_mark / $q_mark" | bc -l)" "$(echo "$a_mark / $s_mark" | bc -l)" "$ENGINE"
    memory_line
    RATIOS+=("$(echo "$a_mark / $q_mark" | bc -l)")
    RATIOS1+=("$(echo "$a_mark / $s_mark" | bc -l)")
    continue
fi

read -r a_mark a_total a_rss < <(run armboard env ARMBOARD_JIT_STATS=1 "$ARMBOARD" boot --machine virt --engine "$ENGINE" --smp "$SMP" \
    --memory "$MEM" --kernel "$KERNEL" --initrd "$WORK/initrd.gz" --append "$APPEND")
read -r q_mark q_total q_rss < <(run qemu "$QEMU" -M virt -cpu cortex-a72 -nic none -smp "$SMP" -m "$MEM" \
    -nographic -no-reboot -kernel "$KERNEL" -initrd "$WORK/initrd.gz" -append "$APPEND")

printf "%-10s %10s %10s %12s\n" "" "to marker" "total" "peak RSS"
printf "%-10s %9.2fs %9.2fs %9d MiB\n" "armboard" "$a_mark" "$a_total" $((a_rss / 1024))
printf "%-10s %9.2fs %9.2fs %9d MiB\n" "qemu" "$q_mark" "$q_total" $((q_rss / 1024))
printf "ratio armboard/qemu: to marker %.2f, total %.2f (engine %s, smp %s, memory %s)\n" \
    "$(echo "$a_mark / $q_mark" | bc -l)" "$(echo "$a_total / $q_total" | bc -l)" "$ENGINE" "$SMP" "$MEM"
memory_line
RATIOS+=("$(echo "$a_mark / $q_mark" | bc -l)")
done
if [[ $MACHINE == raspi3b ]]; then
    median_line " (default)" "${RATIOS[@]}"
    median_line " (thread=single)" "${RATIOS1[@]}"
else
    median_line "" "${RATIOS[@]}"
fi
