#!/usr/bin/env python3
"""Reference results for AdvSIMD instructions from Unicorn (QEMU's A64 translator).

Usage: simd_ref.py SEED COUNT < words

Reads one instruction word (hex) per line. For each word, runs COUNT random initial states
(v0-v7, x0-x3; other registers and FPSR zero) through Unicorn and prints one line per state:

    <word> <v0..v7 in> <x0..x3 in> -> <v0..v7 out> <x0..x3 out> <fpsr out>

or `<word> <inputs> -> UNDEF` when Unicorn raises an exception. All values are hex.
The inputs mix random bits with the edge values saturating and shifting ops care about.
"""

import random
import struct
import sys

from unicorn import Uc, UcError, UC_ARCH_ARM64, UC_MODE_ARM
from unicorn import arm64_const as c

CODE = 0x100000
NV = 8
NX = 4


def chunks(rng, bits, specials):
    out = 0
    for k in range(128 // bits):
        if rng.random() < 0.6:
            v = rng.choice(specials)
        else:
            v = rng.getrandbits(bits)
        out |= (v & ((1 << bits) - 1)) << (k * bits)
    return out


def value(rng):
    style = rng.randrange(7)
    if style == 0:
        return rng.getrandbits(128)
    if style == 1:
        return chunks(rng, 8, [0, 1, 2, 0x7F, 0x80, 0x81, 0xFF, 0xFE, 0x40])
    if style == 2:
        return chunks(rng, 16, [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x7F, 0x80, 0xFF80, 0x4000])
    if style == 3:
        return chunks(rng, 32, [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7FFF, 0x8000,
                                0xFFFF8000, 0x40000000, 0x80000001])
    if style == 4:
        return chunks(rng, 64, [0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 0x7FFFFFFF,
                                0x80000000, 0xFFFFFFFF80000000])
    if style == 5:
        # Small signed bytes: shift counts, table indices.
        return chunks(rng, 8, [x & 0xFF for x in range(-70, 70)])
    return chunks(rng, 8, list(range(0, 40)))


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    words = [int(line.split()[0], 16) for line in sys.stdin if line.strip()]
    mu = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    size = (len(words) * 4 + 0xFFF) & ~0xFFF
    mu.mem_map(CODE, max(size, 0x1000))
    mu.mem_write(CODE, b"".join(struct.pack("<I", w) for w in words))
    qregs = [getattr(c, "UC_ARM64_REG_Q%d" % k) for k in range(NV)]
    xregs = [getattr(c, "UC_ARM64_REG_X%d" % k) for k in range(NX)]
    # Registers the states do not set start at zero on both sides.
    others = [getattr(c, "UC_ARM64_REG_Q%d" % k) for k in range(NV, 32)]
    others += [getattr(c, "UC_ARM64_REG_X%d" % k) for k in range(NX, 31)]
    out = []
    for idx, w in enumerate(words):
        pc = CODE + 4 * idx
        for _ in range(count):
            vin = [value(rng) for _ in range(NV)]
            xin = [value(rng) & ((1 << 64) - 1) for _ in range(NX)]
            for r, v in zip(qregs, vin):
                mu.reg_write(r, v)
            for r, v in zip(xregs, xin):
                mu.reg_write(r, v)
            for r in others:
                mu.reg_write(r, 0)
            mu.reg_write(c.UC_ARM64_REG_FPSR, 0)
            head = "%08x %s %s ->" % (w, " ".join("%x" % v for v in vin),
                                      " ".join("%x" % v for v in xin))
            try:
                mu.emu_start(pc, pc + 4)
            except UcError:
                out.append(head + " UNDEF")
                continue
            vout = [mu.reg_read(r) for r in qregs]
            xout = [mu.reg_read(r) for r in xregs]
            fpsr = mu.reg_read(c.UC_ARM64_REG_FPSR)
            out.append("%s %s %s %x" % (head, " ".join("%x" % v for v in vout),
                                         " ".join("%x" % v for v in xout), fpsr))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
