#!/usr/bin/env python3
"""Reference cases for the A64 loads and stores, computed by Unicorn (Cortex-A72).

Usage: ls_cases.py OUT_FILE [COUNT [SEED]]

Each case is one instruction word drawn from a load/store encoding class (field bits random,
so unallocated encodings turn up too) or from the whole load/store space, preceded by CLREX
and run once from a state derived from a seed: X0-X30 and SP are pointers into the data area
or small numbers, V0-V31 and the 8 KiB data area at 0x110000 come from splitmix64 of the seed.
One line per case (hexadecimal):

    INSN SEED X0 .. X30 SP | ok|fault|undef X0 .. X30 SP V0 .. V31 FNV1A64(data area)

Loads with writeback into their own base register are left out: that is CONSTRAINED
UNPREDICTABLE and armboard chooses differently from QEMU. Exit status 77 means Unicorn is not
installed.
"""
import random
import sys

try:
    from unicorn import *
    from unicorn.arm64_const import *
except ImportError:
    sys.exit(77)

M64 = (1 << 64) - 1
def splitmix(z):
    z = (z + 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)

CODE = 0x100000; DATA = 0x110000; DLEN = 0x2000

PATTERNS = [
 "ss001000000sssssruuuuunnnnnttttt", "ss001000010sssssruuuuunnnnnttttt",
 "1z001000001sssssruuuuunnnnnttttt", "1z001000011sssssruuuuunnnnnttttt",
 "ss001000100sssss1uuuuunnnnnttttt", "ss001000110sssss1uuuuunnnnnttttt",
 "ss001000xxxsssssxuuuuunnnnnttttt",
 "oo011000iiiiiiiiiiiiiiiiiiittttt", "oo011100iiiiiiiiiiiiiiiiiiittttt",
 "oo101v0ppLiiiiiiiuuuuunnnnnttttt",
 "ss111v00oo0iiiiiiiiiqqnnnnnttttt",
 "ss111v00oo1mmmmmxxxSqqnnnnnttttt",
 "ss111v01ooiiiiiiiiiiiinnnnnttttt",
 "0q0011000L000000oooozznnnnnttttt", "0q0011001L0mmmmmoooozznnnnnttttt",
 "0q0011010LR00000oooSzznnnnnttttt", "0q0011011LRmmmmmoooSzznnnnnttttt",
 "xxxx1x0xxxxxxxxxxxxxxxxxxxxxxxxx",
]

def inst(p, rng):
    w = 0
    for k, c in enumerate(p):
        bit = 31 - k
        if c == '1' or (c not in '01' and rng.random() < 0.5):
            w |= 1 << bit
    # bias the immediates small for literal loads (stay inside memory)
    return w

def wb_overlap(w):
    rt, rn, rt2 = w & 31, (w >> 5) & 31, (w >> 10) & 31
    if rn == 31:
        return False
    v = (w >> 26) & 1
    if v:
        return False
    # single register imm9 pre/post
    if (w >> 27) & 7 == 7 and (w >> 24) & 3 == 0 and not (w >> 21) & 1 and (w >> 10) & 1 and (w >> 22) & 3 != 0:
        return rt == rn
    # pairs with writeback, load
    if (w >> 27) & 7 == 5 and (w >> 23) & 1 and (w >> 22) & 1:
        return rt == rn or rt2 == rn
    return False

def regs_for(rng):
    x = []
    for k in range(31):
        if rng.random() < 0.6:
            p = DATA + 0x1000 + rng.randrange(-0x300, 0x300)
            x.append(p & ~0xf if rng.random() < 0.5 else p)
        else:
            x.append(rng.randrange(-64, 64) & M64)
    sp = (DATA + 0x1000 + rng.randrange(-0x200, 0x200)) & ~0xf
    return x, sp

def v_init(seed, j):
    return splitmix(seed ^ (0xAAAA0000 + 2 * j)) | (splitmix(seed ^ (0xAAAA0000 + 2 * j + 1)) << 64)

def mem_init(seed):
    return b''.join(splitmix(seed * 0x10000 + k).to_bytes(8, 'little') for k in range(DLEN // 8))

def fnv(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & M64
    return h

BRK0 = 0xd4200000
_uc = None


def machine():
    global _uc
    if _uc is None:
        _uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        _uc.ctl_set_cpu_model(UC_CPU_ARM64_A72)
        _uc.mem_map(CODE, 0x20000)
        _uc.hook_add(UC_HOOK_INTR, on_intr)
        _uc.reg_write(UC_ARM64_REG_CPACR_EL1, 3 << 20)
        _uc.fresh = _uc.context_save()
    return _uc


_intno = []


def on_intr(uc, n, ud):
    _intno.append(n)
    uc.emu_stop()


def run(word, seed, x, sp):
    uc = machine()
    uc.context_restore(uc.fresh)
    uc.mem_write(CODE, bytes(0x20000))
    uc.mem_write(CODE, word.to_bytes(4, 'little') + BRK0.to_bytes(4, 'little'))
    uc.ctl_remove_cache(CODE, CODE + 0x20000)
    uc.mem_write(DATA, mem_init(seed))
    for k in range(31):
        uc.reg_write(UC_ARM64_REG_X0 + k if k < 29 else [UC_ARM64_REG_X29, UC_ARM64_REG_X30][k - 29], x[k])
    uc.reg_write(UC_ARM64_REG_SP, sp)
    for j in range(32):
        uc.reg_write(UC_ARM64_REG_Q0 + j, v_init(seed, j))
    status = 'ok'
    _intno.clear()
    try:
        uc.emu_start(CODE, CODE + 4, count=1)
    except UcError as e:
        if e.errno in (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_READ_UNALIGNED, UC_ERR_WRITE_UNALIGNED):
            status = 'fault'
        elif e.errno == UC_ERR_INSN_INVALID:
            status = 'undef'
        else:
            status = 'exc%d' % e.errno
    if _intno:
        status = {1: 'undef', 4: 'fault'}.get(_intno[0], 'int%d' % _intno[0])
    pc = uc.reg_read(UC_ARM64_REG_PC)
    if status == 'ok' and pc != CODE + 4:
        status = 'exc'
    xs = [uc.reg_read(UC_ARM64_REG_X0 + k if k < 29 else [UC_ARM64_REG_X29, UC_ARM64_REG_X30][k - 29]) for k in range(31)]
    xs.append(uc.reg_read(UC_ARM64_REG_SP))
    vs = [uc.reg_read(UC_ARM64_REG_Q0 + j) for j in range(32)]
    h = fnv(bytes(uc.mem_read(DATA, DLEN)))
    return status, xs, vs, h

def main():
    out = open(sys.argv[1], 'w')
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    seed0 = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed0)
    for c in range(n):
        p = rng.choice(PATTERNS)
        word = inst(p, rng)
        while wb_overlap(word):
            word = inst(p, rng)
        seed = rng.getrandbits(32)
        x, sp = regs_for(rng)
        st, xs, vs, h = run(word, seed, x, sp)
        out.write('%08x %x %s %x | %s %s %s %x\n' % (word, seed, ' '.join('%x' % v for v in x), sp,
            st, ' '.join('%x' % v for v in xs), ' '.join('%x' % v for v in vs), h))

main()
