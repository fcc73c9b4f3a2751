#!/usr/bin/env bash
# Whole-program comparison: the same arm64 Linux workloads under `armboard user` (release
# build) and `qemu-aarch64`, one after the other. Prints each workload's times and the
# ratio armboard/qemu (below 1: armboard is faster), then the geometric mean of the ratios,
# for wall-clock time and for CPU time (user+sys; steadier on a shared machine). Outputs of
# the two runs are compared where the workload's output is deterministic.
#
# Usage: benches/compare.sh [WORKLOAD...]      (default: all; names as printed)
#
# Environment:
#   SYSROOT=DIR    Debian arm64 root holding 7zz, xz, python3, busybox and coreutils (with
#                  their libraries and dynamic loader). Without it the script asks
#                  `armboard image sysroot PKG...` for one (packages fetched into
#                  ~/.cache/armboard); if that fails, workloads that need it are skipped.
#   ARMBOARD=PATH  armboard binary (default: `cargo build --release`, target/release/armboard)
#   ARMBOARD_ARGS  extra arguments after `armboard user` (e.g. "--engine interp")
#   QEMU=PATH      qemu-aarch64 (default from PATH)
#   REPS=N         runs per workload and emulator, best time kept (default 1)
#   SCALE=N        size of the mix workload (default 3)
#   KEEP=1         keep the work directory
#
# Needs: aarch64-linux-gnu-gcc (the mix workload, static), gcc (native reference), awk.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QEMU=${QEMU:-qemu-aarch64}
REPS=${REPS:-1}
SCALE=${SCALE:-3}
ARMBOARD_ARGS=${ARMBOARD_ARGS:-}
PACKAGES=(7zip xz-utils python3-minimal busybox-static coreutils)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/armboard-compare.XXXXXX")
if [[ -z ${KEEP:-} ]]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "work directory: $WORK"
fi

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-user)"
if [[ -z ${ARMBOARD:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    ARMBOARD=$ROOT/target/release/armboard
fi
[[ -x $ARMBOARD ]] || die "armboard binary $ARMBOARD not found"
ARMBOARD=$(cd "$(dirname "$ARMBOARD")" && pwd)/$(basename "$ARMBOARD")

# --- the sysroot -------------------------------------------------------------------------------
if [[ -z ${SYSROOT:-} ]]; then
    if "$ARMBOARD" image sysroot --help >/dev/null 2>&1; then
        echo "fetching Debian arm64 packages: ${PACKAGES[*]}" >&2
        if out=$("$ARMBOARD" image sysroot "${PACKAGES[@]}"); then
            SYSROOT=$(printf '%s\n' "$out" | tail -n 1)
        else
            echo "compare.sh: armboard image sysroot failed; sysroot workloads skipped" >&2
        fi
    else
        echo "compare.sh: no SYSROOT and no 'armboard image sysroot'; sysroot workloads skipped" >&2
    fi
fi
if [[ -n ${SYSROOT:-} && ! -d $SYSROOT ]]; then
    die "SYSROOT=$SYSROOT is not a directory"
fi

# The path of program NAME inside the sysroot, or nothing.
find_bin() {
    [[ -n ${SYSROOT:-} ]] || return 0
    local d
    for d in usr/bin bin usr/sbin sbin usr/lib/7zip; do
        if [[ -e $SYSROOT/$d/$1 ]]; then
            echo "$SYSROOT/$d/$1"
            return 0
        fi
    done
}

# --- inputs ------------------------------------------------------------------------------------
aarch64-linux-gnu-gcc -O2 -static -o "$WORK/mix" "$ROOT/benches/src/mix.c" -lm ||
    die "cannot cross-compile benches/src/mix.c (apt-get install gcc-aarch64-linux-gnu)"
gcc -O2 -o "$WORK/mix-native" "$ROOT/benches/src/mix.c" -lm || die "cannot compile mix.c natively"

# A deterministic, moderately compressible input (about 1.5 MB).
awk 'BEGIN { srand(1); for (i = 0; i < 50000; i++)
    printf "%08d %s %x %s\n", i, (rand() < 0.5 ? "alpha" : "beta"), int(rand() * 1e9),
        substr("the quick brown fox jumps over the lazy dog", 1 + int(rand() * 20)) }' \
    >"$WORK/input.txt"

# --- running -----------------------------------------------------------------------------------
declare -a NAMES=() RATIO_WALL=() RATIO_CPU=()
SELECTED=("$@")

selected() {
    [[ ${#SELECTED[@]} -eq 0 ]] && return 0
    local s
    for s in "${SELECTED[@]}"; do [[ $s == "$1" ]] && return 0; done
    return 1
}

# CPU seconds (user+sys) used so far by this shell's waited-for children: `times` (line 2),
# run in this shell (not in a command substitution, whose children would be its own).
child_cpu() {
    times >"$WORK/times"
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
        printf "%.3f", t }' "$WORK/times"
}

# time_run OUT REPEAT STDIN CMD...: run CMD REPEAT times (stdout to OUT), REPS times over;
# prints the best "wall cpu" seconds.
time_run() {
    local out=$1 repeat=$2 stdin=$3
    shift 3
    local best_wall="" best_cpu="" r
    for ((r = 0; r < REPS; r++)); do
        local t0 t1 c0 c1
        child_cpu >"$WORK/c0"
        t0=$(date +%s.%N)
        local k
        for ((k = 0; k < repeat; k++)); do
            "$@" <"$stdin" >"$out" 2>>"$WORK/stderr" || {
                echo "FAILED($?)"
                return 0
            }
        done
        t1=$(date +%s.%N)
        child_cpu >"$WORK/c1"
        c0=$(<"$WORK/c0")
        c1=$(<"$WORK/c1")
        local wall cpu
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')
        if [[ -z $best_wall ]] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
            best_wall=$wall
            best_cpu=$cpu
        fi
    done
    echo "$best_wall $best_cpu"
}

printf '%-16s %10s %10s %10s %10s %8s %8s  %s\n' workload armboard_s qemu_s arm_cpu qemu_cpu \
    ratio cpu_ratio check
# bench NAME CHECK REPEAT STDIN PROG ARGS...: CHECK is "same" (outputs must match) or "-".
bench() {
    local name=$1 check=$2 repeat=$3 stdin=$4 prog=$5
    shift 5
    selected "$name" || return 0
    if [[ -z $prog ]]; then
        printf '%-16s skipped (program not in the sysroot)\n' "$name"
        return 0
    fi
    local sysargs=() qargs=()
    if [[ -n ${SYSROOT:-} ]]; then
        sysargs=(--sysroot "$SYSROOT")
        qargs=(-L "$SYSROOT")
    fi
    local a q
    # shellcheck disable=SC2086
    a=$(cd "$WORK" && time_run "$WORK/out.$name.armboard" "$repeat" "$stdin" \
        "$ARMBOARD" user ${ARMBOARD_ARGS} "${sysargs[@]}" "$prog" "$@")
    q=$(cd "$WORK" && time_run "$WORK/out.$name.qemu" "$repeat" "$stdin" \
        "$QEMU" "${qargs[@]}" "$prog" "$@")
    local verdict=ok
    if [[ $a == FAILED* || $q == FAILED* ]]; then
        printf '%-16s armboard: %s qemu: %s (stderr: %s)\n' "$name" "${a%% *}" "${q%% *}" \
            "$(tail -n 2 "$WORK/stderr" | tr '\n' ' ')"
        return 0
    fi
    if [[ $check == same ]] && ! cmp -s "$WORK/out.$name.armboard" "$WORK/out.$name.qemu"; then
        verdict=OUTPUT-DIFFERS
    fi
    local aw ac qw qc
    read -r aw ac <<<"$a"
    read -r qw qc <<<"$q"
    local rw rc
    rw=$(awk -v a="$aw" -v b="$qw" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    rc=$(awk -v a="$ac" -v b="$qc" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    printf '%-16s %10s %10s %10s %10s %8s %8s  %s\n' "$name" "$aw" "$qw" "$ac" "$qc" "$rw" "$rc" \
        "$verdict"
    NAMES+=("$name")
    RATIO_WALL+=("$rw")
    RATIO_CPU+=("$rc")
}

# --- workloads ---------------------------------------------------------------------------------
SEVENZ=$(find_bin 7zz)
XZ=$(find_bin xz)
PY=$(find_bin python3)
[[ -n $PY ]] || PY=$(find_bin python3.11)
BUSYBOX=$(find_bin busybox)
TRUE=$(find_bin true)
if [[ -z $TRUE && -n $XZ ]]; then
    DYN=("$XZ" --version) # some dynamic program, when coreutils is missing
else
    DYN=("$TRUE")
fi

bench mix same 1 /dev/null "$WORK/mix" "$SCALE"
bench 7zz-b - 1 /dev/null "$SEVENZ" b 1 -mmt1 -md16
bench xz-9 same 1 "$WORK/input.txt" "$XZ" -9 -c
if [[ -n $XZ ]] && selected xz-d; then
    xz -9 -c <"$WORK/input.txt" >"$WORK/input.txt.xz" 2>/dev/null ||
        "$QEMU" ${SYSROOT:+-L "$SYSROOT"} "$XZ" -9 -c <"$WORK/input.txt" >"$WORK/input.txt.xz"
fi
bench xz-d same 1 "$WORK/input.txt.xz" "$XZ" -d -c
bench python-loop same 1 /dev/null "$PY" -S -E -c \
    'n = 0
for i in range(300000):
    n = (n * 31 + i) % 1000003
print(n)'
bench busybox-sh same 1 /dev/null "$BUSYBOX" sh -c \
    'i=0; s=0; while [ $i -lt 20000 ]; do i=$((i+1)); s=$((s+i*i)); done; echo $s'
bench busybox-sha256 same 1 "$WORK/input.txt" "$BUSYBOX" sha256sum
bench start-static same 20 /dev/null "$BUSYBOX" true
bench start-dynamic same 20 /dev/null "${DYN[@]}"

# --- summary -----------------------------------------------------------------------------------
if [[ ${#NAMES[@]} -gt 0 ]]; then
    geo() { printf '%s\n' "$@" | awk '$1 > 0 { s += log($1); n++ } END { if (n) printf "%.2f", exp(s / n); else print "-" }'; }
    echo "geomean armboard/qemu over ${#NAMES[@]} workloads: wall $(geo "${RATIO_WALL[@]}"), cpu $(geo "${RATIO_CPU[@]}")"
fi

# Native x86-64 reference for the mix workload.
if selected mix; then
    n=$(cd "$WORK" && time_run "$WORK/out.mix.native" 1 /dev/null "$WORK/mix-native" "$SCALE")
    read -r nw nc <<<"$n"
    echo "native x86-64 mix (gcc -O2): wall ${nw}s cpu ${nc}s$(
        cmp -s "$WORK/out.mix.native" "$WORK/out.mix.qemu" 2>/dev/null && echo ", output matches qemu")"
fi
