#!/usr/bin/env python3
"""Reference cases for the A64 integer data-processing instructions, computed by Unicorn.

Usage: dp_cases.py OUT_FILE [CASES_PER_PATTERN]

For every pattern below (each A64 integer data-processing instruction of ARMv8.0, plus whole
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
# fields are random too, so 31 (XZR or SP) turns up regularly. One or two patterns per
# instruction (64- and 32-bit forms where their reserved fields differ), then whole classes
# (named *_class) so that unallocated encodings are covered.
X = "x"


def per_instruction():
    p = [("ADR", "0xx10000" + X * 24), ("ADRP", "1xx10000" + X * 24)]
    for op, s, name in [("0", "0", "ADD"), ("0", "1", "ADDS"), ("1", "0", "SUB"), ("1", "1", "SUBS")]:
        p.append((name + "_imm", "x" + op + s + "100010" + X * 23))
        p.append((name + "_shift", "x" + op + s + "01011xx0" + X * 21))
        p.append((name + "_shift_32", "0" + op + s + "01011xx0xxxxx0" + X * 15))
        p.append((name + "_ext", "x" + op + s + "01011001" + X * 21))
    for opc, name in [("00", "AND"), ("01", "ORR"), ("10", "EOR"), ("11", "ANDS")]:
        p.append((name + "_imm_64", "1" + opc + "1001001" + X * 22))
        p.append((name + "_imm_32", "0" + opc + "1001000" + X * 22))
    for opc, name in [("00", "MOVN"), ("10", "MOVZ"), ("11", "MOVK")]:
        p.append((name, "x" + opc + "100101" + X * 23))
    for opc, name in [("00", "SBFM"), ("01", "BFM"), ("10", "UBFM")]:
        p.append((name + "_64", "1" + opc + "1001101" + X * 22))
        p.append((name + "_32", "0" + opc + "1001100" + "0xxxxx" + "0xxxxx" + X * 10))
    p.append(("EXTR_64", "1001001111" + "0" + X * 21))
    p.append(("EXTR_32", "0001001110" + "0xxxxx" + "0xxxxx" + X * 10))
    p.append(("ROR_imm_64", "1001001111" + "0" + X * 21))
    p.append(("ROR_imm_32", "0001001110" + "0xxxxx" + "0xxxxx" + X * 10))
    for opc, n, name in [
        ("00", "0", "AND"), ("00", "1", "BIC"), ("01", "0", "ORR"), ("01", "1", "ORN"),
        ("10", "0", "EOR"), ("10", "1", "EON"), ("11", "0", "ANDS"), ("11", "1", "BICS"),
    ]:
        p.append((name + "_shift", "x" + opc + "01010xx" + n + X * 21))
    for op, s, name in [("0", "0", "ADC"), ("0", "1", "ADCS"), ("1", "0", "SBC"), ("1", "1", "SBCS")]:
        p.append((name, "x" + op + s + "11010000xxxxx000000" + X * 10))
    for op, name in [("0", "CCMN"), ("1", "CCMP")]:
        p.append((name + "_reg", "x" + op + "111010010xxxxxxxxx00xxxxx0xxxx"))
        p.append((name + "_imm", "x" + op + "111010010xxxxxxxxx10xxxxx0xxxx"))
    for op, o2, name in [("0", "0", "CSEL"), ("0", "1", "CSINC"), ("1", "0", "CSINV"), ("1", "1", "CSNEG")]:
        p.append((name, "x" + op + "011010100xxxxxxxxx0" + o2 + X * 10))
    for opcode, name in [
        ("000010", "UDIV"), ("000011", "SDIV"), ("001000", "LSLV"),
        ("001001", "LSRV"), ("001010", "ASRV"), ("001011", "RORV"),
    ]:
        p.append((name, "x0011010110xxxxx" + opcode + X * 10))
    for c, cname in [("0", "CRC32"), ("1", "CRC32C")]:
        for sz, suffix in [("00", "B"), ("01", "H"), ("10", "W"), ("11", "X")]:
            sf = "1" if sz == "11" else "0"
            p.append((cname + suffix, sf + "0011010110xxxxx010" + c + sz + X * 10))
    for opcode, name in [
        ("000000", "RBIT"), ("000001", "REV16"), ("000010", "REV_REV32"),
        ("000100", "CLZ"), ("000101", "CLS"),
    ]:
        p.append((name, "x101101011000000" + opcode + X * 10))
    p.append(("REV_64", "1101101011000000000011" + X * 10))
    p.append(("MADD", "x0011011000xxxxx0" + X * 15))
    p.append(("MSUB", "x0011011000xxxxx1" + X * 15))
    for op, name in [("001", "SMADDL"), ("101", "UMADDL")]:
        p.append((name, "10011011" + op + "xxxxx0" + X * 15))
        p.append((name.replace("ADD", "SUB"), "10011011" + op + "xxxxx1" + X * 15))
    p.append(("SMULH", "10011011010xxxxx0" + X * 15))
    p.append(("UMULH", "10011011110xxxxx0" + X * 15))
    return p


CLASSES = [
    ("pcrel_class", "xxx10000" + X * 24),
    ("addsub_imm_class", "xxx10001" + X * 24),
    ("log_imm_class", "xxx100100" + X * 23),
    ("movewide_class", "xxx100101" + X * 23),
    ("bitfield_class", "xxx100110" + X * 23),
    ("extract_class", "xxx100111" + X * 23),
    ("log_shift_class", "xxx01010" + X * 24),
    ("addsub_shift_class", "xxx01011xx0" + X * 21),
    ("addsub_ext_class", "xxx01011xx1" + X * 21),
    ("addsub_carry_class", "xxx11010000" + X * 21),
    ("condcmp_class", "xxx11010010" + X * 21),
    ("condsel_class", "xxx11010100" + X * 21),
    ("dp_2src_class", "x0x11010110" + X * 21),
    ("dp_1src_class", "x1x11010110" + X * 21),
    ("dp_1src_op2_0_class", "x1x1101011000000" + X * 16),
    ("dp_3src_class", "xxx11011" + X * 24),
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
    per_pattern = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    rng = random.Random(0xA64D)
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=A.UC_CPU_ARM64_A72)
    uc.mem_map(CODE, 0x1000)
    lines = []
    for name, pattern in per_instruction() + CLASSES:
        assert len(pattern) == 32, name
        for _ in range(per_pattern):
            insn = instance(rng, pattern)
            if name.startswith("ROR_imm"):
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
