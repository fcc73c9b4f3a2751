#!/usr/bin/env python3
"""Random A64 load/store cases with reference results from unicorn (cortex-a72).

Usage: python3 unicorn_cases.py COUNT [SEED] > cases.txt
       LS_CASES=cases.txt cargo test -p armboard-cpu unicorn_cases -- --ignored

Each case is one instruction drawn from the load/store encoding classes (and random words of
the whole load/store space), run once from a register and memory state derived from a seed;
the line format is described at `unicorn_cases` in tests.rs. Loads with writeback into the base
register are left out: that is CONSTRAINED UNPREDICTABLE and we choose differently from QEMU.
"""
import random, sys
from unicorn import *
from unicorn.arm64_const import *

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

def run(word, seed, x, sp, pre=None):
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(UC_CPU_ARM64_A72)
    uc.mem_map(CODE, 0x20000)
    code = word.to_bytes(4, 'little') + (0xd4200000).to_bytes(4, 'little')
    uc.mem_write(CODE, code)
    uc.mem_write(DATA, mem_init(seed))
    uc.reg_write(UC_ARM64_REG_CPACR_EL1, 3 << 20)
    for k in range(31):
        uc.reg_write(UC_ARM64_REG_X0 + k if k < 29 else [UC_ARM64_REG_X29, UC_ARM64_REG_X30][k - 29], x[k])
    uc.reg_write(UC_ARM64_REG_SP, sp)
    for j in range(32):
        uc.reg_write(UC_ARM64_REG_Q0 + j, v_init(seed, j))
    status = 'ok'
    intno = []
    def hk(uc, n, ud):
        intno.append(n); uc.emu_stop()
    uc.hook_add(UC_HOOK_INTR, hk)
    try:
        uc.emu_start(CODE, CODE + 4, count=1)
    except UcError as e:
        if e.errno in (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_READ_UNALIGNED, UC_ERR_WRITE_UNALIGNED):
            status = 'fault'
        elif e.errno == UC_ERR_INSN_INVALID:
            status = 'undef'
        else:
            status = 'exc%d' % e.errno
    if intno:
        status = {1: 'undef', 4: 'fault'}.get(intno[0], 'int%d' % intno[0])
    pc = uc.reg_read(UC_ARM64_REG_PC)
    if status == 'ok' and pc != CODE + 4:
        status = 'exc'
    xs = [uc.reg_read(UC_ARM64_REG_X0 + k if k < 29 else [UC_ARM64_REG_X29, UC_ARM64_REG_X30][k - 29]) for k in range(31)]
    xs.append(uc.reg_read(UC_ARM64_REG_SP))
    vs = [uc.reg_read(UC_ARM64_REG_Q0 + j) for j in range(32)]
    h = fnv(bytes(uc.mem_read(DATA, DLEN)))
    return status, xs, vs, h

def main():
    n = int(sys.argv[1]); seed0 = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed0)
    out = sys.stdout
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
