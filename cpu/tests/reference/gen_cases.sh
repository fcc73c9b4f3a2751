#!/bin/sh
# Regenerates simd_cases.txt ("<word> <assembly>" per line) from simd_cases.s, one
# instruction per line, with the cross assembler. Lines of simd_cases.s starting with '//'
# are kept as comments.
set -e
cd "$(dirname "$0")"
grep -v '^//' simd_cases.s | grep -v '^\s*$' > /tmp/simd_cases.$$.s
aarch64-linux-gnu-as -o /tmp/simd_cases.$$.o /tmp/simd_cases.$$.s
aarch64-linux-gnu-objdump -d /tmp/simd_cases.$$.o | grep -E '^ +[0-9a-f]+:' | awk '{print $2}' > /tmp/simd_cases.$$.w
paste -d' ' /tmp/simd_cases.$$.w /tmp/simd_cases.$$.s > simd_cases.txt
rm -f /tmp/simd_cases.$$.*
