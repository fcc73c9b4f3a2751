#!/usr/bin/env python3
"""Reference cases for the A64 integer data-processing instructions, computed by Unicorn.

Usage: dp_cases.py OUT_FILE [CASES_PER_PATTERN]

For every encoding pattern below (each A64 data-processing encoding of ARMv8.0, plus whole
instruction classes so unallocated encodings are covered too) it draws random instruction
words and random register values with a fixed seed, executes each word once on Unicorn's
Cortex-A72 and writes one line per case:

    PATTERN_NAME INSN NZCV_IN R=V ... -> ok|undef NZCV_OUT R=V ...

(hexadecimal numbers; register 31 is SP). The inputs are the registers named by the Rd, Rn,
Rm and Ra field positions plus SP; the outputs are the same registers afterwards. Exit status
77 means Unicorn is not installed.
"""

import random
import sys

try:
    from unicorn import Uc, UcError, UC_ARCH_ARM64, UC_MODE_ARM
    from unicorn import arm64_const as A
except ImportError:
    sys.exit(77)

CODE = 0x10_0000

# (name, pattern): bit 31 first, '0'/'1' fixed, any other character a random bit. Register
# fields are random too, so 31 (XZR or SP) turns up regularly.
PATTERNS = [
    # Data processing -- immediate
    ("pcrel", "xxx10000xxxxxxxxxxxxxxxxxxxxxxxx"),
    ("addsub_imm", "xxx100010xxxxxxxxxxxxxxxxxxxxxxx"),
    ("addsub_imm_class", "xxx10001xxxxxxxxxxxxxxxxxxxxxxxx"),
    ("log_imm_32", "0xx1001000" + "x" * 22),
    ("log_imm_64", "1xx1001001xxxxxxxxxxxxxxxxxxxxxx"),
    ("log_imm_class", "xxx100100xxxxxxxxxxxxxxxxxxxxxxx"),
    ("movewide", "xxx100101xxxxxxxxxxxxxxxxxxxxxxx"),
    ("bitfield_32", "0xx1001100" + "0xxxxx" + "0xxxxx" + "x" * 10),
    ("bitfield_64", "1xx1001101xxxxxxxxxxxxxxxxxxxxxx"),
    ("bitfield_class", "xxx100110xxxxxxxxxxxxxxxxxxxxxxx"),
    ("extract_32", "0001001110" + "0xxxxx" + "0xxxxx" + "x" * 10),
    ("extract_64", "1001001111" + "0" + "x" * 21),
    ("ror_imm", "x00100111x" + "0" + "x" * 21),
    ("extract_class", "xxx100111xxxxxxxxxxxxxxxxxxxxxxx"),
    # Data processing -- register
    ("log_shift", "xxx01010xxxxxxxxxxxxxxxxxxxxxxxx"),
    ("log_shift_32", "0xx01010xxxxxxxx0xxxxxxxxxxxxxxx"),
    ("addsub_shift", "xxx01011xx0xxxxxxxxxxxxxxxxxxxxx"),
    ("addsub_shift_32", "0xx01011xx0xxxxx0xxxxxxxxxxxxxxx"),
    ("addsub_ext", "xxx01011001xxxxxxxxxxxxxxxxxxxxx"),
    ("addsub_ext_class", "xxx01011xx1xxxxxxxxxxxxxxxxxxxxx"),
    ("addsub_carry", "xxx11010000xxxxx000000xxxxxxxxxx"),
    ("addsub_carry_class", "xxx11010000xxxxxxxxxxxxxxxxxxxxx"),
    ("condcmp_reg", "xx111010010xxxxxxxxx00xxxxx0xxxx"),
    ("condcmp_imm", "xx111010010xxxxxxxxx10xxxxx0xxxx"),
    ("condcmp_class", "xxx11010010xxxxxxxxxxxxxxxxxxxxx"),
    ("condsel", "xx011010100xxxxxxxxx0xxxxxxxxxxx"),
    ("condsel_class", "xxx11010100xxxxxxxxxxxxxxxxxxxxx"),
    ("div", "x0011010110xxxxx00001xxxxxxxxxxx"),
    ("shiftv", "x0011010110xxxxx0010xxxxxxxxxxxx"),
    ("crc32", "x0011010110xxxxx010xxxxxxxxxxxxx"),
    ("dp_2src_class", "x0x11010110xxxxxxxxxxxxxxxxxxxxx"),
    ("dp_1src", "x101101011000000000xxxxxxxxxxxxx"),
    ("dp_1src_class", "x1x11010110xxxxxxxxxxxxxxxxxxxxx"),
    ("madd", "x0011011000xxxxxxxxxxxxxxxxxxxxx"),
    ("maddl", "10011011x01xxxxxxxxxxxxxxxxxxxxx"),
    ("mulh", "10011011x10xxxxx0xxxxxxxxxxxxxxx"),
    ("dp_3src_class", "xxx11011xxxxxxxxxxxxxxxxxxxxxxxx"),
]

EDGE = [
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0x7FFF_FFFF_FFFF_FFFF,
    0x8000_0000_0000_0000,
    0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFF_FFFF_FFFE,
    0xFFFF_FFFF_8000_0000,
    0xFFFF_FFFF_7FFF_FFFF,
]
MASK64 = (1 << 64) - 1


def value(rng):
    k = rng.random()
    if k < 0.3:
        return rng.choice(EDGE)
    if k < 0.4:
        return (rng.choice(EDGE) + rng.randint(-3, 3)) & MASK64
    if k < 0.5:
        return rng.randint(0, 64)
    if k < 0.65:
        return rng.getrandbits(32)
    if k < 0.75:
        return (rng.getrandbits(32) | 0xFFFF_FFFF_0000_0000) if rng.random() < 0.5 else rng.getrandbits(16)
    return rng.getrandbits(64)


def instance(rng, pattern):
    word = 0
    for ch in pattern:
        word <<= 1
        if ch == "1":
            word |= 1
        elif ch != "0":
            word |= rng.getrandbits(1)
    return word


def xreg(r):
    if r == 31:
        return A.UC_ARM64_REG_SP
    if r <= 28:
        return A.UC_ARM64_REG_X0 + r
    return A.UC_ARM64_REG_X29 if r == 29 else A.UC_ARM64_REG_X30


def main():
    out_path = sys.argv[1]
    per_pattern = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    rng = random.Random(0xA64D)
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=A.UC_CPU_ARM64_A72)
    uc.mem_map(CODE, 0x1000)
    lines = []
    for name, pattern in PATTERNS:
        assert len(pattern) == 32, name
        for _ in range(per_pattern):
            insn = instance(rng, pattern)
            if name == "ror_imm":
                insn = (insn & ~(0x1F << 16)) | (((insn >> 5) & 0x1F) << 16)
            regs = sorted({insn & 31, (insn >> 5) & 31, (insn >> 10) & 31, (insn >> 16) & 31, 31})
            vals = {r: value(rng) for r in regs}
            nzcv_in = rng.getrandbits(4) << 28
            # Keep SP 16-byte aligned only by chance: Unicorn does not check SP alignment for
            # data processing, and neither must we.
            for r, v in vals.items():
                uc.reg_write(xreg(r), v)
            uc.reg_write(A.UC_ARM64_REG_NZCV, nzcv_in)
            uc.mem_write(CODE, insn.to_bytes(4, "little"))
            try:
                uc.emu_start(CODE, CODE + 4, count=1)
                status = "ok"
            except UcError:
                status = "undef"
            nzcv_out = uc.reg_read(A.UC_ARM64_REG_NZCV)
            after = {r: uc.reg_read(xreg(r)) for r in regs}
            if status == "undef":
                nzcv_out = nzcv_in
                after = vals
            ins = " ".join(f"{r}={vals[r]:x}" for r in regs)
            outs = " ".join(f"{r}={after[r]:x}" for r in regs)
            lines.append(f"{name} {insn:08x} {nzcv_in:x} {ins} -> {status} {nzcv_out:x} {outs}\n")
    with open(out_path, "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
