#!/usr/bin/env python3
"""Differential-test case generator for armboard's A64 CPU, with unicorn as the reference.

For a seed and a count it generates instruction sequences per class (int, ldst, fp, simd)
from field-randomised encoding templates, random initial register state and a fixed
pseudo-random data region, runs each in unicorn (cortex-a72, i.e. ARMv8.0 + CRC32 like
armboard's model) and writes one JSON object per line: the case and the final state unicorn
reached. cpu/tests/differential.rs runs the same cases on armboard and compares.

Memory layout (as armboard_cpu::testing): code at CODE, data region DATA..DATA_END filled
with splitmix64(data_seed) words. Load/store cases keep every access inside the data region.

Output lines:
  {"meta": {...}}   first line: seed, data_seed, layout
  {"i": n, "c": class, "f": [form...], "w": [word...],            the case
   "x": [hex x0..x30, sp], "n": nzcv, "fc": fpcr, "fs": fpsr, "v": [hex v0..v31] (optional),
   "u": true                      unicorn raised UNDEFINED on the (single) instruction, or
   "ox": [...], "on": nzcv, "ofs": fpsr, "ov": [...], "om": [[offset, hex], ...]}
       final state; "om" lists the data bytes that changed (offset from DATA).
Registers not in "v" start as zero.

Usage: diffgen.py --seed 1 --count 1000 --classes int,ldst,fp,simd [--out FILE]
"""

import argparse
import ctypes
import json
import random
import sys

try:
    from unicorn import (Uc, UcError, UC_ARCH_ARM64, UC_MODE_ARM, UC_HOOK_INTR,
                         UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_PROT_ALL)
    from unicorn import arm64_const as A
    from unicorn.unicorn_py3.unicorn import uclib
except ImportError:
    sys.stderr.write("diffgen: the unicorn package is missing: pip install unicorn\n")
    sys.exit(3)

CODE = 0x10_0000
DATA = 0x11_0000
DATA_LEN = 0x1_0000
DATA_END = DATA + DATA_LEN
MASK64 = (1 << 64) - 1

# QEMU exception numbers reported through UC_HOOK_INTR.
EXCP_UDEF = 1


def splitmix64_fill(seed, nbytes):
    """The data region: little-endian splitmix64 words (the Rust side computes the same)."""
    out = bytearray()
    state = seed & MASK64
    for _ in range(nbytes // 8):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Encoding templates


class Pat:
    """A 32-character pattern, bit 31 first: '0'/'1' fixed, any letter a field bit. Bits with the
    same letter form one field, most significant first."""

    def __init__(self, text):
        assert len(text) == 32, text
        self.text = text
        self.mask = 0
        self.value = 0
        self.fields = {}
        for i, ch in enumerate(text):
            bit = 31 - i
            if ch in "01":
                self.mask |= 1 << bit
                if ch == "1":
                    self.value |= 1 << bit
            else:
                self.fields.setdefault(ch, []).append(bit)

    def width(self, letter):
        return len(self.fields[letter])

    def random_fields(self, rng):
        return {k: rng.getrandbits(len(bits)) for k, bits in self.fields.items()}

    def encode(self, f):
        w = self.value
        for k, bits in self.fields.items():
            v = f[k]
            n = len(bits)
            for j, bit in enumerate(bits):
                if (v >> (n - 1 - j)) & 1:
                    w |= 1 << bit
        return w


class Form:
    """One instruction form: a pattern, optional fixup (may adjust fields or return False to
    reject), and for loads/stores how to set up the base/index registers."""

    def __init__(self, cls, name, pattern, fix=None, mem=False, wb=False, pair=False,
                 load_bit=None, align=False, valid=None):
        self.cls = cls
        self.name = name
        self.pat = Pat(pattern)
        self.fix = fix
        self.mem = mem
        self.wb = wb
        self.pair = pair
        self.load_bit = load_bit
        self.align = align
        self.valid = valid or {}

    def generate(self, rng):
        for _ in range(100):
            f = self.pat.random_fields(rng)
            # Mostly pick opcode values known to be allocated; sometimes leave them random
            # so reserved encodings are exercised too (they must be UNDEFINED on armboard).
            for k, vals in self.valid.items():
                if rng.random() < 0.9:
                    f[k] = rng.choice(vals)
            if self.fix is not None and self.fix(rng, f) is False:
                continue
            return f
        raise RuntimeError("form %s: no acceptable encoding" % self.name)


def small_shift_fix(letter):
    """32-bit forms take shift amounts below 32."""
    def fix(rng, f):
        if f["s"] == 0:
            f[letter] &= 31
    return fix


def n_eq_sf(rng, f):
    if rng.random() < 0.95:
        f["N"] = f["s"]
    if f["s"] == 0:
        for k in "rk":
            if k in f:
                f[k] &= 31


def fix_extr(rng, f):
    f["N"] = f["s"]
    if f["s"] == 0:
        f["k"] &= 31


def fix_movw(rng, f):
    if f["s"] == 0:
        f["h"] &= 1


def fix_shimm(rng, f):
    if f["i"] >> 3 == 0:
        f["i"] |= 1 << rng.randrange(3, 7)


def fix_ldr_lit(rng, f):
    # pc-relative: the instruction sits at CODE; aim into the data region.
    off = rng.randrange(0, DATA_LEN - 16) & ~3
    f["i"] = ((DATA - CODE) + off) >> 2


def fix_fp_cmp(rng, f):
    if f["o"] & 8:
        f["m"] = 0


def fix_fp_types(rng, f):
    # type 10 is unallocated, 11 (half) needs FEAT_FP16: keep them rare.
    if rng.random() < 0.9:
        f["t"] = rng.choice([0, 1])


def chain(*fixes):
    def fix(rng, f):
        for fx in fixes:
            if fx(rng, f) is False:
                return False
    return fix


def no_pmull64(rng, f):
    # PMULL/PMULL2 with 64-bit elements is the crypto extension, which armboard's model lacks.
    if f["o"] == 0b1110 and f["s"] == 3:
        return False


def fix_modimm(rng, f):
    if rng.random() < 0.95:
        f["p"] = 0


SHIMM_OPS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19, 20, 28, 31]


def fix_copy(rng, f):
    if f["i"] & 0xF == 0 and rng.random() < 0.9:
        f["i"] |= 1 << rng.randrange(0, 4)


def fix_pairwise(rng, f):
    if rng.random() < 0.9:
        f["u"], f["o"] = rng.choice([(0, 27), (1, 12), (1, 13), (1, 15)])
        if f["u"] == 0:
            f["s"] = 3
        else:
            f["s"] = (f["s"] & 2) | rng.getrandbits(1)


INT_CVT = [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (1, 0), (1, 1),
           (2, 0), (2, 1), (3, 0), (3, 1)]
FIXED_CVT = [(0, 2), (0, 3), (3, 0), (3, 1)]


def fix_int_cvt(rng, f):
    if rng.random() < 0.9:
        f["r"], f["o"] = rng.choice(INT_CVT)
        if f["o"] in (6, 7) and f["r"] == 0 and f["t"] in (0, 1):
            f["s"] = f["t"]
    elif rng.random() < 0.3:
        f["s"], f["t"], f["r"], f["o"] = 1, 2, 1, rng.choice([6, 7])  # FMOV Vd.D[1]


def fix_fixed_cvt(rng, f):
    if rng.random() < 0.9:
        f["r"], f["o"] = rng.choice(FIXED_CVT)
    if f["s"] == 0:
        f["k"] |= 32


FORMS = [
    # ---- integer data processing -------------------------------------------------------
    Form("int", "ADDSUB_imm", "soS100010hiiiiiiiiiiiinnnnnddddd"),
    Form("int", "ADDSUB_shift", "soS01011hh0mmmmmiiiiiinnnnnddddd",
         fix=small_shift_fix("i"), valid={"h": [0, 1, 2]}),
    Form("int", "ADDSUB_ext", "soS01011001mmmmmxxxiiinnnnnddddd", valid={"i": [0, 1, 2, 3, 4]}),
    Form("int", "ADC_SBC", "soS11010000mmmmm000000nnnnnddddd"),
    Form("int", "LOGIC_imm", "sxx100100Nrrrrrrkkkkkknnnnnddddd", fix=n_eq_sf),
    Form("int", "LOGIC_shift", "sxx01010hhNmmmmmiiiiiinnnnnddddd", fix=small_shift_fix("i")),
    Form("int", "MOVE_wide", "sxx100101hhiiiiiiiiiiiiiiiiddddd", fix=fix_movw,
         valid={"x": [0, 2, 3]}),
    Form("int", "BITFIELD", "sxx100110Nrrrrrrkkkkkknnnnnddddd", fix=n_eq_sf,
         valid={"x": [0, 1, 2]}),
    Form("int", "EXTR", "s00100111N0mmmmmkkkkkknnnnnddddd", fix=fix_extr),
    Form("int", "ADR_ADRP", "pll10000hhhhhhhhhhhhhhhhhhhddddd"),
    Form("int", "DP_2src", "s0011010110mmmmmoooooonnnnnddddd",
         valid={"o": [2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]}),
    Form("int", "DP_1src", "s101101011000000oooooonnnnnddddd", valid={"o": [0, 1, 2, 3, 4, 5]}),
    Form("int", "DP_3src", "s0011011ooommmmmOaaaaannnnnddddd", valid={"o": [0, 1, 2, 5, 6]}),
    Form("int", "CCMP_CCMN", "so111010010mmmmmccccI0nnnnn0ffff"),
    Form("int", "CSEL", "so011010100mmmmmcccc0pnnnnnddddd"),
    # ---- loads and stores (every access inside the data region) -------------------------
    Form("ldst", "LDST_uimm", "ss111001xxiiiiiiiiiiiinnnnnttttt", mem=True),
    Form("ldst", "LDST_uimm_fp", "ss111101xxiiiiiiiiiiiinnnnnttttt", mem=True),
    Form("ldst", "LDST_unscaled", "ss111V00xx0iiiiiiiii00nnnnnttttt", mem=True),
    Form("ldst", "LDST_post", "ss111V00xx0iiiiiiiii01nnnnnttttt", mem=True, wb=True),
    Form("ldst", "LDST_pre", "ss111V00xx0iiiiiiiii11nnnnnttttt", mem=True, wb=True),
    Form("ldst", "LDST_unpriv", "ss111000xx0iiiiiiiii10nnnnnttttt", mem=True),
    Form("ldst", "LDST_regoff", "ss111V00oo1mmmmmeeeS10nnnnnttttt", mem=True,
         valid={"e": [2, 3, 6, 7]}),
    Form("ldst", "LDSTP_off", "oo101V010LiiiiiiiTTTTTnnnnnttttt", mem=True, pair=True,
         load_bit="L"),
    Form("ldst", "LDSTP_post", "oo101V001LiiiiiiiTTTTTnnnnnttttt", mem=True, pair=True,
         wb=True, load_bit="L"),
    Form("ldst", "LDSTP_pre", "oo101V011LiiiiiiiTTTTTnnnnnttttt", mem=True, pair=True,
         wb=True, load_bit="L"),
    Form("ldst", "LDSTNP", "oo101V000LiiiiiiiTTTTTnnnnnttttt", mem=True, pair=True,
         load_bit="L"),
    Form("ldst", "LDR_lit", "oo011V00iiiiiiiiiiiiiiiiiiittttt", fix=fix_ldr_lit, mem=True),
    Form("ldst", "LDAR_STLR", "ss0010001L011111111111nnnnnttttt", mem=True, align=True),
    Form("ldst", "LDXR_LDAXR", "ss00100001011111O11111nnnnnttttt", mem=True, align=True),
    # CLREX; LDXR/LDAXR; STXR/STLXR (same address and size), or CLREX; STXR alone (fails).
    Form("ldst", "EXCL_seq", "ss00100001011111O11111nnnnnttttt", mem=True, align=True),
    Form("ldst", "LDST_simd_multi", "0Q0011000L000000oooossnnnnnttttt", mem=True,
         valid={"o": [0, 2, 4, 6, 7, 8, 10]}),
    Form("ldst", "LDST_simd_multi_post", "0Q0011001L0mmmmmoooossnnnnnttttt", mem=True, wb=True,
         valid={"o": [0, 2, 4, 6, 7, 8, 10]}),
    Form("ldst", "LDST_simd_single", "0Q0011010LR00000oooSssnnnnnttttt", mem=True),
    Form("ldst", "LDST_simd_single_post", "0Q0011011LRmmmmmoooSssnnnnnttttt", mem=True,
         wb=True),
    # ---- scalar floating point ----------------------------------------------------------
    Form("fp", "FP_2src", "00011110tt1mmmmmoooo10nnnnnddddd", fix=fix_fp_types,
         valid={"o": list(range(9))}),
    Form("fp", "FP_1src", "00011110tt1oooooo10000nnnnnddddd", fix=fix_fp_types,
         valid={"o": [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15]}),
    Form("fp", "FP_cmp", "00011110tt1mmmmm001000nnnnnooooo", fix=chain(fix_fp_types, fix_fp_cmp),
         valid={"o": [0, 8, 16, 24]}),
    Form("fp", "FP_ccmp", "00011110tt1mmmmmcccc01nnnnnoffff", fix=fix_fp_types),
    Form("fp", "FP_csel", "00011110tt1mmmmmcccc11nnnnnddddd", fix=fix_fp_types),
    Form("fp", "FP_imm", "00011110tt1iiiiiiii10000000ddddd", fix=fix_fp_types),
    Form("fp", "FP_3src", "00011111ttommmmmOaaaaannnnnddddd", fix=fix_fp_types),
    Form("fp", "FP_int_cvt", "s0011110tt1rrooo000000nnnnnddddd",
         fix=chain(fix_fp_types, fix_int_cvt)),
    Form("fp", "FP_fixed_cvt", "s0011110tt0rroookkkkkknnnnnddddd",
         fix=chain(fix_fp_types, fix_fixed_cvt)),
    # ---- Advanced SIMD ------------------------------------------------------------------
    Form("simd", "SIMD_3same", "0Qu01110ss1mmmmmooooo1nnnnnddddd"),
    Form("simd", "SIMD_3diff", "0Qu01110ss1mmmmmoooo00nnnnnddddd", fix=no_pmull64),
    Form("simd", "SIMD_2misc", "0Qu01110ss10000ooooo10nnnnnddddd"),
    Form("simd", "SIMD_across", "0Qu01110ss11000ooooo10nnnnnddddd",
         valid={"o": [3, 10, 26, 27, 12, 15], "s": [0, 1, 2]}),
    Form("simd", "SIMD_copy", "0Qo01110000iiiii0jjjj1nnnnnddddd", fix=fix_copy,
         valid={"j": [0, 1, 3, 5, 7]}),
    Form("simd", "SIMD_modimm", "0Qo0111100000abcmmmmp1defghddddd", fix=fix_modimm),
    Form("simd", "SIMD_shimm", "0Qu011110iiiiiiiooooo1nnnnnddddd", fix=fix_shimm,
         valid={"o": SHIMM_OPS}),
    Form("simd", "SIMD_elem", "0Qu01111ssLMmmmmooooH0nnnnnddddd", valid={"s": [1, 2, 3]}),
    Form("simd", "SIMD_perm", "0Q001110ss0mmmmm0ooo10nnnnnddddd"),
    Form("simd", "SIMD_ext", "0Q101110000mmmmm0iiii0nnnnnddddd"),
    Form("simd", "SIMD_tbl", "0Q001110000mmmmm0llo00nnnnnddddd"),
    Form("simd", "SIMDS_3same", "01u11110ss1mmmmmooooo1nnnnnddddd",
         valid={"o": [1, 5, 6, 7, 8, 9, 10, 11, 16, 17, 22, 27, 28, 29, 31]}),
    Form("simd", "SIMDS_3diff", "01u11110ss1mmmmmoooo00nnnnnddddd",
         valid={"o": [9, 11, 13], "u": [0], "s": [1, 2]}),
    Form("simd", "SIMDS_2misc", "01u11110ss10000ooooo10nnnnnddddd",
         valid={"o": [3, 7, 8, 9, 10, 11, 18, 20, 22, 26, 27, 28, 29, 12, 13, 14, 31]}),
    Form("simd", "SIMDS_pairwise", "01u11110ss11000ooooo10nnnnnddddd", fix=fix_pairwise),
    Form("simd", "SIMDS_shimm", "01u111110iiiiiiiooooo1nnnnnddddd", fix=fix_shimm,
         valid={"o": SHIMM_OPS}),
    Form("simd", "SIMDS_copy", "01011110000iiiii000001nnnnnddddd"),
    Form("simd", "SIMDS_elem", "01u11111ssLMmmmmooooH0nnnnnddddd",
         valid={"o": [1, 5, 9, 3, 7, 11, 12, 13], "s": [1, 2, 3]}),
]

CLASSES = ["int", "ldst", "fp", "simd"]

# ---------------------------------------------------------------------------------------------
# Random values

SPECIAL64 = [0, 1, 2, MASK64, MASK64 - 1, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
             0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0x1_0000_0000, 0xFFFF_FFFF_0000_0000,
             0x8000_0000_0000_0001, 0xFF, 0x80, 0xFFFF, 0x8000]


def rand_u64(rng):
    r = rng.random()
    if r < 0.4:
        return rng.getrandbits(64)
    if r < 0.6:
        return rng.choice(SPECIAL64)
    if r < 0.7:
        return rng.randrange(0, 17)
    if r < 0.8:
        return (-rng.randrange(1, 17)) & MASK64
    if r < 0.9:
        return rng.getrandbits(32)
    v = rng.getrandbits(32)
    return v | (0xFFFF_FFFF_0000_0000 if v >> 31 else 0)


def rand_fp(rng, ebits, mbits):
    """Bits of a float with `ebits` exponent and `mbits` fraction bits, biased to edge cases."""
    bias = (1 << (ebits - 1)) - 1
    emax = (1 << ebits) - 1
    sign = rng.getrandbits(1) << (ebits + mbits)
    r = rng.random()
    if r < 0.06:
        return sign  # +-0
    if r < 0.10:
        return sign | (emax << mbits)  # +-inf
    if r < 0.16:  # NaN: quiet or signalling, random payload
        frac = rng.getrandbits(mbits) | 1
        if rng.random() < 0.5:
            frac |= 1 << (mbits - 1)
        else:
            frac &= ~(1 << (mbits - 1))
            frac |= 1
        return sign | (emax << mbits) | frac
    if r < 0.24:  # subnormal
        return sign | (rng.getrandbits(mbits) | 1)
    if r < 0.30:  # largest/smallest normals
        return sign | (rng.choice([1, emax - 1]) << mbits) | rng.choice([0, (1 << mbits) - 1])
    if r < 0.55:  # around small integers and halves (rounding, conversions)
        e = bias + rng.randrange(0, min(bias, 70))
        frac = rng.getrandbits(mbits) & ~((1 << max(0, mbits - rng.randrange(0, 8))) - 1)
        return sign | (min(e, emax - 1) << mbits) | frac
    if r < 0.75:  # ordinary magnitudes
        e = min(max(bias + rng.randrange(-20, 21), 1), emax - 1)
        return sign | (e << mbits) | rng.getrandbits(mbits)
    return sign | (rng.randrange(1, emax) << mbits) | rng.getrandbits(mbits)


def rand_v(rng):
    """A 128-bit vector register: lanes of one kind."""
    r = rng.random()
    if r < 0.25:
        lanes, width = [rand_fp(rng, 11, 52) for _ in range(2)], 64
    elif r < 0.5:
        lanes, width = [rand_fp(rng, 8, 23) for _ in range(4)], 32
    elif r < 0.6:
        lanes, width = [rand_fp(rng, 5, 10) for _ in range(8)], 16
    elif r < 0.85:
        width = rng.choice([8, 16, 32, 64])
        m = (1 << width) - 1
        lanes = [rand_u64(rng) & m for _ in range(128 // width)]
    else:
        return rng.getrandbits(128)
    v = 0
    for k, lane in enumerate(lanes):
        v |= lane << (k * width)
    return v


# ---------------------------------------------------------------------------------------------
# The reference run

# The reference run. The Python binding's per-register calls cost more than running a case,
# so the whole state goes in and out with one uc_reg_write_batch / uc_reg_read_batch call
# each, on a contiguous buffer (8 bytes per general/system register, 16 per Q register).
def _regs():
    regs = [getattr(A, "UC_ARM64_REG_X%d" % i) for i in range(31)]
    regs += [A.UC_ARM64_REG_SP, A.UC_ARM64_REG_NZCV, A.UC_ARM64_REG_FPCR, A.UC_ARM64_REG_FPSR]
    offs = [8 * k for k in range(len(regs))]
    regs += [getattr(A, "UC_ARM64_REG_Q%d" % i) for i in range(32)]
    offs += [Q_OFF + 16 * k for k in range(32)]
    return regs, offs


NZCV_OFF, FPCR_OFF, FPSR_OFF, Q_OFF, STATE_LEN = 256, 264, 272, 288, 288 + 512


class RegBatch:
    def __init__(self, uc):
        regs, offs = _regs()
        self.uch = uc._uch
        self.n = len(regs)
        self.regs = (ctypes.c_int * self.n)(*regs)
        self.buf = ctypes.create_string_buffer(STATE_LEN)
        base = ctypes.addressof(self.buf)
        self.ptrs = (ctypes.c_void_p * self.n)(*[base + o for o in offs])

    def write(self, block):
        ctypes.memmove(self.buf, bytes(block), STATE_LEN)
        if uclib.uc_reg_write_batch(self.uch, self.regs, self.ptrs, self.n) != 0:
            raise RuntimeError("uc_reg_write_batch failed")

    def read(self):
        ctypes.memset(self.buf, 0, STATE_LEN)
        if uclib.uc_reg_read_batch(self.uch, self.regs, self.ptrs, self.n) != 0:
            raise RuntimeError("uc_reg_read_batch failed")
        return self.buf.raw


class Ref:
    def __init__(self, data):
        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self.uc.ctl_set_cpu_model(A.UC_CPU_ARM64_A72)
        self.uc.mem_map(CODE, DATA_END - CODE, UC_PROT_ALL)
        self.batch = RegBatch(self.uc)
        self.data = data
        self.intno = None
        self.intpc = None
        self.outside = False
        self.uc.hook_add(UC_HOOK_INTR, self._intr)
        self.mem_hook = None

    def _intr(self, uc, intno, _user):
        self.intno = intno
        self.intpc = uc.reg_read(A.UC_ARM64_REG_PC)
        uc.emu_stop()

    def _mem(self, uc, _access, addr, size, _value, _user):
        if not (DATA <= addr and addr + size <= DATA_END):
            self.outside = True
            uc.emu_stop()
        return True

    def run(self, words, x, nzcv, fpcr, fpsr, v, mem):
        """Returns None (unusable case: a fault, or memory outside the data region),
        ("undef", k) when instruction k is UNDEFINED, or the final state."""
        uc = self.uc
        end = CODE + 4 * len(words)
        code = b"".join(w.to_bytes(4, "little") for w in words + [0xD4200000])
        uc.mem_write(CODE, code)
        uc.ctl_remove_cache(CODE, CODE + len(code))
        if mem:
            uc.mem_write(DATA, self.data)
            if self.mem_hook is None:
                self.mem_hook = uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._mem)
        elif self.mem_hook is not None:
            uc.hook_del(self.mem_hook)
            self.mem_hook = None
        block = bytearray(STATE_LEN)
        for k, val in enumerate(x):
            block[8 * k:8 * k + 8] = val.to_bytes(8, "little")
        block[NZCV_OFF:NZCV_OFF + 8] = nzcv.to_bytes(8, "little")
        block[FPCR_OFF:FPCR_OFF + 8] = fpcr.to_bytes(8, "little")
        block[FPSR_OFF:FPSR_OFF + 8] = fpsr.to_bytes(8, "little")
        for k, val in enumerate(v):
            block[Q_OFF + 16 * k:Q_OFF + 16 * k + 16] = val.to_bytes(16, "little")
        self.batch.write(block)
        self.intno = None
        self.outside = False
        try:
            uc.emu_start(CODE, end)
        except UcError:
            return None
        if self.outside:
            return None
        if self.intno is not None:
            if self.intno == EXCP_UDEF and CODE <= self.intpc < end:
                return ("undef", (self.intpc - CODE) // 4)
            return None
        b = self.batch.read()
        le = int.from_bytes
        out = {
            "ox": [le(b[8 * k:8 * k + 8], "little") for k in range(32)],
            "on": le(b[NZCV_OFF:NZCV_OFF + 4], "little"),
            "ofs": le(b[FPSR_OFF:FPSR_OFF + 4], "little"),
            "ov": [le(b[Q_OFF + 16 * k:Q_OFF + 16 * k + 16], "little") for k in range(32)],
            "om": [],
        }
        if uc.reg_read(A.UC_ARM64_REG_PC) != end:
            return None
        if mem:
            now = bytes(uc.mem_read(DATA, DATA_LEN))
            if now != self.data:
                out["om"] = mem_diff(self.data, now)
        return out


def mem_diff(old, new):
    """Changed runs as [offset, hex], compared in 64-byte chunks then bytes."""
    runs = []
    for c in range(0, len(old), 64):
        if old[c:c + 64] == new[c:c + 64]:
            continue
        for i in range(c, c + 64):
            if old[i] != new[i]:
                if runs and runs[-1][0] + len(runs[-1][1]) == i:
                    runs[-1][1].append(new[i])
                else:
                    runs.append([i, bytearray([new[i]])])
    return [[o, b.hex()] for o, b in runs]


# ---------------------------------------------------------------------------------------------
# Cases


def initial_state(rng, cls):
    x = [rand_u64(rng) for _ in range(31)]
    sp = rand_u64(rng) & ~0xF
    if cls == "ldst":
        sp = DATA + (rng.randrange(0, DATA_LEN) & ~0xF)
    nzcv = rng.getrandbits(4) << 28
    fpcr = 0
    fpsr = 0
    v = [0] * 32
    if cls in ("fp", "simd", "ldst"):
        v = [rand_v(rng) for _ in range(32)]
    if cls in ("fp", "simd"):
        fpcr = rng.getrandbits(2) << 22
        if rng.random() < 0.2:
            fpcr |= 1 << 24  # FZ
        if rng.random() < 0.2:
            fpcr |= 1 << 25  # DN
        if rng.random() < 0.25:
            fpsr = rng.choice([0x1, 0x2, 0x4, 0x8, 0x10, 0x80, 0x8000000, 0x800009f])
    return x + [sp], nzcv, fpcr, fpsr, v


def setup_mem_regs(rng, form, f, x):
    """Point the base register into the data region and make index registers small. Returns
    False for encodings we do not test (UNPREDICTABLE register overlaps)."""
    n = f["n"]
    t = f.get("t")
    simd_ldst = form.name.startswith("LDST_simd")
    if form.wb and n != 31 and not simd_ldst:
        if t == n or (form.pair and f["T"] == n):
            return False
    if form.pair and form.load_bit and f[form.load_bit] == 1 and t == f["T"]:
        return False
    if "m" in f and f["m"] == n and n != 31:
        return False
    align = rng.choice([1, 1, 4, 8, 16, 16])
    if form.align:
        align = 16
    base = DATA + (rng.randrange(0, DATA_LEN) & ~(align - 1))
    if n == 31:
        base &= ~0xF
    x[n] = base
    if "m" in f and f["m"] != 31:
        idx = rng.randrange(-4096, 4096) & MASK64
        if rng.random() < 0.3:
            idx = (idx & 0xFFFF_FFFF) | (rng.getrandbits(32) << 32)
        x[f["m"]] = idx
    return True


CLREX = 0xD5033F5F


def excl_seq(rng, f):
    """CLREX, then LDXR/LDAXR Rt,[Xn] and STXR/STLXR Ws,Rt2,[Xn], or the store alone. The
    status register differs from the store's data and base registers (else UNPREDICTABLE),
    and the load must not overwrite the base."""
    size, n, t = f["s"], f["n"], f["t"]
    if t == n:
        t = (t + 1) % 31
    t2 = rng.randrange(0, 32)
    s = rng.choice([r for r in range(31) if r not in (n, t2)])
    load = (size << 30) | 0x085F7C00 | (f["O"] << 15) | (n << 5) | t
    store = (size << 30) | 0x08007C00 | (s << 16) | (rng.getrandbits(1) << 15) | (n << 5) | t2
    if rng.random() < 0.2:
        return [CLREX, store]
    return [CLREX, load, store]


def gen_case(rng, ref, cls, forms, idx):
    while True:
        x, nzcv, fpcr, fpsr, v = initial_state(rng, cls)
        if cls == "ldst":
            seq = [rng.choice(forms)]
        else:
            seq = [rng.choice(forms) for _ in range(1 if rng.random() < 0.7 else rng.randrange(2, 5))]
        words = []
        ok = True
        for form in seq:
            f = form.generate(rng)
            if form.mem and form.name != "LDR_lit":
                if not setup_mem_regs(rng, form, f, x):
                    ok = False
                    break
            if form.name == "EXCL_seq":
                words += excl_seq(rng, f)
            else:
                words.append(form.pat.encode(f))
        if not ok:
            continue
        out = ref.run(words, x, nzcv, fpcr, fpsr, v, cls == "ldst")
        if out is None:
            continue
        case = {"i": idx, "c": cls, "f": [fm.name for fm in seq], "w": words,
                "x": ["%x" % r for r in x], "n": nzcv, "fc": fpcr, "fs": fpsr}
        if any(v):
            case["v"] = ["%x" % r for r in v]
        if isinstance(out, tuple):
            if len(words) != 1:
                continue
            case["u"] = True
            return case
        case["ox"] = ["%x" % r for r in out["ox"]]
        case["on"] = out["on"]
        case["ofs"] = out["ofs"]
        if any(v) or any(out["ov"]):
            case["ov"] = ["%x" % r for r in out["ov"]]
        case["om"] = out["om"]
        return case


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000, help="cases per class")
    ap.add_argument("--classes", default=",".join(CLASSES))
    ap.add_argument("--out", default="-")
    ap.add_argument("--list-forms", action="store_true")
    args = ap.parse_args()
    classes = [c for c in args.classes.split(",") if c]
    for c in classes:
        if c not in CLASSES:
            sys.exit("diffgen: unknown class %r (have %s)" % (c, ",".join(CLASSES)))
    if args.list_forms:
        for fm in FORMS:
            print(fm.cls, fm.name, fm.pat.text)
        return
    data_seed = (args.seed * 0x2545F4914F6CDD1D + 0x1234567) & MASK64
    data = splitmix64_fill(data_seed, DATA_LEN)
    ref = Ref(data)
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    out.write(json.dumps({"meta": {"seed": args.seed, "data_seed": data_seed, "code": CODE,
                                   "data": DATA, "data_len": DATA_LEN}}) + "\n")
    idx = 0
    for ci, cls in enumerate(CLASSES):
        if cls not in classes:
            continue
        rng = random.Random(args.seed * 1000 + ci)
        forms = [fm for fm in FORMS if fm.cls == cls]
        for _ in range(args.count):
            out.write(json.dumps(gen_case(rng, ref, cls, forms, idx), separators=(",", ":")))
            out.write("\n")
            idx += 1
    out.flush()


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        pass
