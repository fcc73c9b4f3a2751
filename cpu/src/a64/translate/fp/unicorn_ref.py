#!/usr/bin/env python3
"""Reference results for the FP differential test (fp/tests.rs), from Unicorn (QEMU's Arm FP).

stdin: one case per line, hex fields:
    insn fpcr nzcv v0 .. v31 x0 .. x30
stdout: one line per case: v0 .. v31 x0 .. x30 nzcv fpsr (hex), or "UNDEF" when the
instruction raised an exception (undefined).
"""
import sys

from unicorn import Uc, UcError, UC_ARCH_ARM64, UC_MODE_ARM
from unicorn import arm64_const as A

CODE = 0x100000


def main():
    mu = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    mu.mem_map(CODE, 0x1000)
    mu.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)
    vregs = [getattr(A, "UC_ARM64_REG_Q%d" % i) for i in range(32)]
    xregs = [getattr(A, "UC_ARM64_REG_X%d" % i) for i in range(29)]
    xregs += [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30]
    out = []
    for line in sys.stdin:
        f = [int(w, 16) for w in line.split()]
        if not f:
            continue
        insn, fpcr, nzcv = f[0], f[1], f[2]
        mu.mem_write(CODE, insn.to_bytes(4, "little"))
        for r, v in zip(vregs, f[3:35]):
            mu.reg_write(r, v)
        for r, v in zip(xregs, f[35:66]):
            mu.reg_write(r, v)
        mu.reg_write(A.UC_ARM64_REG_FPCR, fpcr)
        mu.reg_write(A.UC_ARM64_REG_FPSR, 0)
        mu.reg_write(A.UC_ARM64_REG_NZCV, nzcv)
        mu.reg_write(A.UC_ARM64_REG_PC, CODE)
        try:
            mu.emu_start(CODE, CODE + 4, count=1)
        except UcError:
            out.append("UNDEF")
            continue
        vals = [mu.reg_read(r) for r in vregs] + [mu.reg_read(r) for r in xregs]
        vals.append(mu.reg_read(A.UC_ARM64_REG_NZCV))
        vals.append(mu.reg_read(A.UC_ARM64_REG_FPSR))
        out.append(" ".join("%x" % v for v in vals))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
