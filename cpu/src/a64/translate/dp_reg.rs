//! Data processing -- register (Arm ARM C4.1.6): logical and add/subtract (shifted and
//! extended register), add/subtract with carry, conditional compare and select, and
//! data-processing with one, two and three sources (including CRC32).

use crate::a64::{Flow, Insn, Row, Translator};
use crate::ir::{BinOp, Carry, Op, UnOp, Width, T};
use crate::row;
use crate::state::CpuState;

pub const ROWS: &[Row] = &[
    // Data-processing (2 source)
    row!("UDIV_dp_2src", "s0011010110mmmmm000010nnnnnddddd", div),
    row!("SDIV_dp_2src", "s0011010110mmmmm000011nnnnnddddd", div),
    row!("LSLV_dp_2src", "s0011010110mmmmm001000nnnnnddddd", shiftv),
    row!("LSRV_dp_2src", "s0011010110mmmmm001001nnnnnddddd", shiftv),
    row!("ASRV_dp_2src", "s0011010110mmmmm001010nnnnnddddd", shiftv),
    row!("RORV_dp_2src", "s0011010110mmmmm001011nnnnnddddd", shiftv),
    row!(
        "CRC32B_32C_dp_2src",
        "00011010110mmmmm010000nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32H_32C_dp_2src",
        "00011010110mmmmm010001nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32W_32C_dp_2src",
        "00011010110mmmmm010010nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32X_64C_dp_2src",
        "10011010110mmmmm010011nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32CB_32C_dp_2src",
        "00011010110mmmmm010100nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32CH_32C_dp_2src",
        "00011010110mmmmm010101nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32CW_32C_dp_2src",
        "00011010110mmmmm010110nnnnnddddd",
        crc32,
        Crc32
    ),
    row!(
        "CRC32CX_64C_dp_2src",
        "10011010110mmmmm010111nnnnnddddd",
        crc32,
        Crc32
    ),
    // Data-processing (1 source)
    row!("RBIT_dp_1src", "s101101011000000000000nnnnnddddd", dp_1src),
    row!("REV16_dp_1src", "s101101011000000000001nnnnnddddd", dp_1src),
    row!(
        "REV_32_dp_1src",
        "0101101011000000000010nnnnnddddd",
        dp_1src
    ),
    row!(
        "REV32_64_dp_1src",
        "1101101011000000000010nnnnnddddd",
        dp_1src
    ),
    row!(
        "REV_64_dp_1src",
        "1101101011000000000011nnnnnddddd",
        dp_1src
    ),
    row!("CLZ_dp_1src", "s101101011000000000100nnnnnddddd", dp_1src),
    row!("CLS_dp_1src", "s101101011000000000101nnnnnddddd", dp_1src),
    // Logical (shifted register)
    row!(
        "AND_log_shift",
        "s0001010hh0mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "BIC_log_shift",
        "s0001010hh1mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "ORR_log_shift",
        "s0101010hh0mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "ORN_log_shift",
        "s0101010hh1mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "EOR_log_shift",
        "s1001010hh0mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "EON_log_shift",
        "s1001010hh1mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "ANDS_log_shift",
        "s1101010hh0mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    row!(
        "BICS_log_shift",
        "s1101010hh1mmmmmiiiiiinnnnnddddd",
        logical_shifted
    ),
    // Add/subtract (shifted register)
    row!(
        "ADD_addsub_shift",
        "s0001011hh0mmmmmiiiiiinnnnnddddd",
        add_sub_shifted
    ),
    row!(
        "ADDS_addsub_shift",
        "s0101011hh0mmmmmiiiiiinnnnnddddd",
        add_sub_shifted
    ),
    row!(
        "SUB_addsub_shift",
        "s1001011hh0mmmmmiiiiiinnnnnddddd",
        add_sub_shifted
    ),
    row!(
        "SUBS_addsub_shift",
        "s1101011hh0mmmmmiiiiiinnnnnddddd",
        add_sub_shifted
    ),
    // Add/subtract (extended register)
    row!(
        "ADD_addsub_ext",
        "s0001011001mmmmmoooiiinnnnnddddd",
        add_sub_ext
    ),
    row!(
        "ADDS_addsub_ext",
        "s0101011001mmmmmoooiiinnnnnddddd",
        add_sub_ext
    ),
    row!(
        "SUB_addsub_ext",
        "s1001011001mmmmmoooiiinnnnnddddd",
        add_sub_ext
    ),
    row!(
        "SUBS_addsub_ext",
        "s1101011001mmmmmoooiiinnnnnddddd",
        add_sub_ext
    ),
    // Add/subtract (with carry)
    row!(
        "ADC_addsub_carry",
        "s0011010000mmmmm000000nnnnnddddd",
        add_sub_carry
    ),
    row!(
        "ADCS_addsub_carry",
        "s0111010000mmmmm000000nnnnnddddd",
        add_sub_carry
    ),
    row!(
        "SBC_addsub_carry",
        "s1011010000mmmmm000000nnnnnddddd",
        add_sub_carry
    ),
    row!(
        "SBCS_addsub_carry",
        "s1111010000mmmmm000000nnnnnddddd",
        add_sub_carry
    ),
    // Conditional compare (register / immediate)
    row!(
        "CCMN_condcmp_reg",
        "s0111010010mmmmmcccc00nnnnn0ffff",
        cond_cmp
    ),
    row!(
        "CCMP_condcmp_reg",
        "s1111010010mmmmmcccc00nnnnn0ffff",
        cond_cmp
    ),
    row!(
        "CCMN_condcmp_imm",
        "s0111010010iiiiicccc10nnnnn0ffff",
        cond_cmp
    ),
    row!(
        "CCMP_condcmp_imm",
        "s1111010010iiiiicccc10nnnnn0ffff",
        cond_cmp
    ),
    // Conditional select
    row!(
        "CSEL_condsel",
        "s0011010100mmmmmcccc00nnnnnddddd",
        cond_select
    ),
    row!(
        "CSINC_condsel",
        "s0011010100mmmmmcccc01nnnnnddddd",
        cond_select
    ),
    row!(
        "CSINV_condsel",
        "s1011010100mmmmmcccc00nnnnnddddd",
        cond_select
    ),
    row!(
        "CSNEG_condsel",
        "s1011010100mmmmmcccc01nnnnnddddd",
        cond_select
    ),
    // Data-processing (3 source)
    row!("MADD_dp_3src", "s0011011000mmmmm0aaaaannnnnddddd", madd),
    row!("MSUB_dp_3src", "s0011011000mmmmm1aaaaannnnnddddd", madd),
    row!(
        "SMADDL_64WA_dp_3src",
        "10011011001mmmmm0aaaaannnnnddddd",
        maddl
    ),
    row!(
        "SMSUBL_64WA_dp_3src",
        "10011011001mmmmm1aaaaannnnnddddd",
        maddl
    ),
    row!("SMULH_64_dp_3src", "10011011010mmmmm0aaaaannnnnddddd", mulh),
    row!(
        "UMADDL_64WA_dp_3src",
        "10011011101mmmmm0aaaaannnnnddddd",
        maddl
    ),
    row!(
        "UMSUBL_64WA_dp_3src",
        "10011011101mmmmm1aaaaannnnnddddd",
        maddl
    ),
    row!("UMULH_64_dp_3src", "10011011110mmmmm0aaaaannnnnddddd", mulh),
];

/// `ShiftReg(m, shift, amount)`: register `r` (31 = XZR) shifted by a constant. The result's
/// bits above the width are unspecified; consumers are `w`-wide ops.
fn shift_reg(t: &mut Translator, r: u8, shift: u32, amount: u32, w: Width) -> T {
    let v = t.get_x(r);
    if amount == 0 {
        return v;
    }
    let op = match shift {
        0 => BinOp::Shl,
        1 => BinOp::Lsr,
        2 => BinOp::Asr,
        _ => BinOp::Ror,
    };
    t.bin_imm(op, w, v, amount as u64)
}

/// `n + m` or `n - m`, setting NZCV if `set_flags`.
fn add_sub(t: &mut Translator, w: Width, sub: bool, set_flags: bool, n: T, m: T) -> T {
    if set_flags {
        let b = if sub { t.un(UnOp::Not, w, m) } else { m };
        let dst = t.temp();
        let carry = if sub { Carry::One } else { Carry::Zero };
        t.op(Op::AddFlags {
            w,
            dst,
            a: n,
            b,
            carry,
        });
        dst
    } else {
        let op = if sub { BinOp::Sub } else { BinOp::Add };
        t.bin(op, w, n, m)
    }
}

/// AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register).
fn logical_shifted(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let amount = i.bits(15, 10);
    if !i.sf() && amount >= 32 {
        return t.undefined(i);
    }
    let invert = i.bit(21);
    let opc = i.bits(30, 29);
    let m = shift_reg(t, i.rm(), i.bits(23, 22), amount, w);
    let n = t.get_x(i.rn());
    let op = match (opc, invert) {
        (1, false) => BinOp::Or,
        (1, true) => BinOp::OrNot,
        (2, false) => BinOp::Xor,
        (2, true) => BinOp::XorNot,
        (_, false) => BinOp::And,
        (_, true) => BinOp::AndNot,
    };
    let r = t.bin(op, w, n, m);
    if opc == 3 {
        t.op(Op::LogicFlags { w, src: r });
    }
    t.set_x(i.rd(), r);
    Flow::Next
}

/// ADD/ADDS/SUB/SUBS (shifted register): LSL/LSR/ASR only; all registers 31 are XZR.
fn add_sub_shifted(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let shift = i.bits(23, 22);
    let amount = i.bits(15, 10);
    if shift == 3 || (!i.sf() && amount >= 32) {
        return t.undefined(i);
    }
    let m = shift_reg(t, i.rm(), shift, amount, w);
    let n = t.get_x(i.rn());
    let r = add_sub(t, w, i.bit(30), i.bit(29), n, m);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// ADD/ADDS/SUB/SUBS (extended register): Rm extended (UXTB..SXTX) and shifted left by 0..4.
/// Rn is SP; Rd is SP for ADD/SUB and XZR for ADDS/SUBS.
fn add_sub_ext(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let shift = i.bits(12, 10);
    if shift > 4 {
        return t.undefined(i);
    }
    let ext = match i.bits(15, 13) {
        0 => Some(UnOp::Zext8),
        1 => Some(UnOp::Zext16),
        2 => Some(UnOp::Zext32),
        4 => Some(UnOp::Sext8),
        5 => Some(UnOp::Sext16),
        6 => Some(UnOp::Sext32),
        _ => None, // UXTX / SXTX
    };
    let m = t.get_x(i.rm());
    let m = match ext {
        Some(op) => t.un(op, Width::W64, m),
        None => m,
    };
    let m = if shift != 0 {
        t.bin_imm(BinOp::Shl, w, m, shift as u64)
    } else {
        m
    };
    let n = t.get_xsp(i.rn());
    let set_flags = i.bit(29);
    let r = add_sub(t, w, i.bit(30), set_flags, n, m);
    if set_flags {
        t.set_x(i.rd(), r);
    } else {
        t.set_xsp(i.rd(), r);
    }
    Flow::Next
}

/// ADC/ADCS/SBC/SBCS: `n + m + C` or `n + !m + C`.
fn add_sub_carry(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let n = t.get_x(i.rn());
    let m = t.get_x(i.rm());
    let b = if i.bit(30) { t.un(UnOp::Not, w, m) } else { m };
    let dst = t.temp();
    if i.bit(29) {
        t.op(Op::AddFlags {
            w,
            dst,
            a: n,
            b,
            carry: Carry::Flag,
        });
    } else {
        t.op(Op::Adc { w, dst, a: n, b });
    }
    t.set_x(i.rd(), dst);
    Flow::Next
}

/// CCMN/CCMP (register and immediate): NZCV from comparing Rn with Rm/imm5 if the condition
/// holds, else the immediate nzcv.
fn cond_cmp(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let cond = i.cond();
    let sub = i.bit(30);
    let n = t.get_x(i.rn());
    let b = match (i.bit(11), sub) {
        (true, false) => t.konst(i.bits(20, 16) as u64),
        (true, true) => t.konst(!(i.bits(20, 16) as u64)),
        (false, false) => t.get_x(i.rm()),
        (false, true) => {
            let m = t.get_x(i.rm());
            t.un(UnOp::Not, w, m)
        }
    };
    // The condition must be read before the comparison overwrites the flags.
    let holds = if cond < 14 {
        let c = t.temp();
        t.op(Op::Cond { dst: c, cond });
        Some(c)
    } else {
        None
    };
    let dst = t.temp();
    t.op(Op::AddFlags {
        w,
        dst,
        a: n,
        b,
        carry: if sub { Carry::One } else { Carry::Zero },
    });
    if let Some(c) = holds {
        let flags = t.temp();
        t.op(Op::GetNzcv { dst: flags });
        let alt = t.konst((i.bits(3, 0) as u64) << 28);
        let sel = t.temp();
        t.op(Op::Select {
            dst: sel,
            cond: c,
            a: flags,
            b: alt,
        });
        t.op(Op::SetNzcv { src: sel });
    }
    Flow::Next
}

/// CSEL/CSINC/CSINV/CSNEG (and the CSET/CSETM/CINC/CINV/CNEG aliases).
fn cond_select(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let c = t.temp();
    t.op(Op::Cond {
        dst: c,
        cond: i.cond(),
    });
    let n = t.get_reg(i.rn(), w);
    let m = t.get_reg(i.rm(), w);
    let alt = match (i.bit(30), i.bit(10)) {
        (false, false) => m,
        (false, true) => t.bin_imm(BinOp::Add, w, m, 1),
        (true, false) => t.un(UnOp::Not, w, m),
        (true, true) => t.un(UnOp::Neg, w, m),
    };
    let dst = t.temp();
    t.op(Op::Select {
        dst,
        cond: c,
        a: n,
        b: alt,
    });
    t.set_x(i.rd(), dst);
    Flow::Next
}

/// RBIT, REV16, REV, REV32, CLZ, CLS.
fn dp_1src(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let op = match (i.bits(15, 10), i.sf()) {
        (0, _) => UnOp::Rbit,
        (1, _) => UnOp::Rev16,
        (2, false) | (3, true) => UnOp::Rev,
        (2, true) => UnOp::Rev32,
        (4, _) => UnOp::Clz,
        (5, _) => UnOp::Cls,
        _ => return t.undefined(i),
    };
    let n = t.get_x(i.rn());
    let r = t.un(op, w, n);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// UDIV/SDIV (division by zero gives zero).
fn div(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let op = if i.bit(10) { BinOp::SDiv } else { BinOp::UDiv };
    let n = t.get_x(i.rn());
    let m = t.get_x(i.rm());
    let r = t.bin(op, w, n, m);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// LSLV/LSRV/ASRV/RORV: the amount is Rm modulo the width.
fn shiftv(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let op = match i.bits(11, 10) {
        0 => BinOp::Shl,
        1 => BinOp::Lsr,
        2 => BinOp::Asr,
        _ => BinOp::Ror,
    };
    let n = t.get_x(i.rn());
    let m = t.get_x(i.rm());
    let r = t.bin(op, w, n, m);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// Table of the reflected CRC-32 with polynomial `rpoly` (bit-reversed), one byte at a time.
const fn crc_table(rpoly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ rpoly } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-32 (polynomial 0x04C11DB7, reflected).
static CRC32_TABLE: [u32; 256] = crc_table(0xedb8_8320);
/// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected).
static CRC32C_TABLE: [u32; 256] = crc_table(0x82f6_3b78);

/// The A64 CRC32 step: no inversion before or after; `bytes` low bytes of `val`, lowest
/// first.
fn crc_update(table: &[u32; 256], acc: u64, val: u64, bytes: u64) -> u64 {
    let mut crc = acc as u32;
    for k in 0..bytes.min(8) {
        let byte = (val >> (8 * k)) as u8;
        crc = table[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc as u64
}

fn crc32_helper(_st: &mut CpuState, acc: u64, val: u64, bytes: u64) -> u64 {
    crc_update(&CRC32_TABLE, acc, val, bytes)
}

fn crc32c_helper(_st: &mut CpuState, acc: u64, val: u64, bytes: u64) -> u64 {
    crc_update(&CRC32C_TABLE, acc, val, bytes)
}

/// CRC32B/H/W/X and CRC32CB/H/W/X.
fn crc32(t: &mut Translator, i: Insn) -> Flow {
    let f = if i.bit(12) {
        crc32c_helper
    } else {
        crc32_helper
    };
    let bytes = 1u64 << i.bits(11, 10);
    let a = t.get_x(i.rn());
    let b = t.get_x(i.rm());
    let c = t.konst(bytes);
    let dst = t.temp();
    t.op(Op::CallValue { f, dst, a, b, c });
    t.set_x(i.rd(), dst);
    Flow::Next
}

/// MADD/MSUB (MUL/MNEG when Ra is XZR).
fn madd(t: &mut Translator, i: Insn) -> Flow {
    let w = i.width();
    let n = t.get_x(i.rn());
    let m = t.get_x(i.rm());
    let a = t.get_x(i.ra());
    let p = t.bin(BinOp::Mul, w, n, m);
    let op = if i.bit(15) { BinOp::Sub } else { BinOp::Add };
    let r = t.bin(op, w, a, p);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// SMADDL/SMSUBL/UMADDL/UMSUBL: 64-bit accumulate of a 32x32 -> 64 product.
fn maddl(t: &mut Translator, i: Insn) -> Flow {
    let ext = if i.bit(23) {
        UnOp::Zext32
    } else {
        UnOp::Sext32
    };
    let n = t.get_x(i.rn());
    let n = t.un(ext, Width::W64, n);
    let m = t.get_x(i.rm());
    let m = t.un(ext, Width::W64, m);
    let a = t.get_x(i.ra());
    let p = t.bin(BinOp::Mul, Width::W64, n, m);
    let op = if i.bit(15) { BinOp::Sub } else { BinOp::Add };
    let r = t.bin(op, Width::W64, a, p);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// SMULH/UMULH: the high 64 bits of the 128-bit product.
fn mulh(t: &mut Translator, i: Insn) -> Flow {
    let op = if i.bit(23) {
        BinOp::UMulH
    } else {
        BinOp::SMulH
    };
    let n = t.get_x(i.rn());
    let m = t.get_x(i.rm());
    let r = t.bin(op, Width::W64, n, m);
    t.set_x(i.rd(), r);
    Flow::Next
}

#[cfg(test)]
mod tests {
    use crate::testing::{run, run_with, CODE};
    use crate::{CpuState, Stop};

    const X1: u64 = 0x0123_4567_89ab_cdef;
    const X2: u64 = 0xfedc_0000_ffff_1234;
    const MAX: u64 = u64::MAX;
    const MIN64: u64 = 0x8000_0000_0000_0000;
    const MAX64: u64 = 0x7fff_ffff_ffff_ffff;

    /// Run `word` with x1, x2 and NZCV (in bits 3..0) set; returns (x0, NZCV).
    fn run2(word: u32, x1: u64, x2: u64, nzcv: u32) -> (u64, u32) {
        let mut st = CpuState::new();
        st.x[1] = x1;
        st.x[2] = x2;
        st.nzcv = nzcv << 28;
        let (st, _, stop) = run_with(&[word], st, |_| {});
        assert_eq!(stop, Stop::Brk(0), "{word:#010x}");
        (st.x[0], st.nzcv >> 28)
    }

    fn assert_undefined(word: u32) {
        let (st, _, stop) = run_with(&[word], CpuState::new(), |_| {});
        assert_eq!(stop, Stop::Undefined(word), "{word:#010x}");
        assert_eq!(st.pc, CODE);
    }

    #[test]
    fn logical_shifted_values() {
        let cases: &[(u32, u64, &str)] = &[
            (0x8ac2_2020, 0x0022_4400_00ab_cd02, "and x0, x1, x2, ror #8"),
            (0x0a22_1020, 0x000a_ccaf, "bic w0, w1, w2, lsl #4"),
            (0xaa02_03e0, X2, "mov x0, x2"),
            (0x2a22_03e0, 0xedcb, "mvn w0, w2"),
            (0xca82_1020, 0xfece_8567_8654_3ccc, "eor x0, x1, x2, asr #4"),
            (0xca22_0020, 0x0000_ba98_89ab_2024, "eon x0, x1, x2"),
            (0x6a02_0020, 0x89ab_0024, "ands w0, w1, w2"),
            (
                0xea62_0420,
                0x0001_4567_8000_44e5,
                "bics x0, x1, x2, lsr #1",
            ),
        ];
        for &(word, want, text) in cases {
            assert_eq!(run2(word, X1, X2, 0b0011).0, want, "{text}");
        }
        // ANDS/BICS set N and Z and clear C and V.
        assert_eq!(run2(0x6a02_0020, X1, X2, 0b0011).1, 0b1000);
        assert_eq!(run2(0xea62_0420, X1, X2, 0b1111).1, 0b0000);
        assert_eq!(
            run2(0x6a02_0020, 0xffff_ffff_0000_0000, MAX, 0b0011).1,
            0b0100
        );
    }

    #[test]
    fn add_sub_shifted_values() {
        assert_eq!(run2(0x8b02_0c20, X1, X2, 0).0, 0xf803_456f_89a4_5f8f); // add x0,x1,x2,lsl #3
        assert_eq!(run2(0x0b42_7c20, X1, X2, 0).0, 0x89ab_cdf0); // add w0,w1,w2,lsr #31
        assert_eq!(run2(0xcb82_fc20, X1, X2, 0).0, 0x0123_4567_89ab_cdf0); // sub x0,x1,x2,asr #63
    }

    #[test]
    fn adds_subs_flags_at_edges() {
        const ADDS_X: u32 = 0xab02_0020;
        const ADDS_W: u32 = 0x2b02_0020;
        const SUBS_X: u32 = 0xeb02_0020;
        const SUBS_W: u32 = 0x6b02_0020;
        // (word, x1, x2, result, NZCV)
        let cases: &[(u32, u64, u64, u64, u32)] = &[
            (ADDS_X, 0, 0, 0, 0b0100),
            (ADDS_X, MAX64, 1, MIN64, 0b1001),
            (ADDS_X, MAX, 1, 0, 0b0110),
            (ADDS_X, MIN64, MIN64, 0, 0b0111),
            (ADDS_X, MAX, MAX, MAX - 1, 0b1010),
            (ADDS_X, MIN64, MAX, MAX64, 0b0011),
            (ADDS_W, 0x7fff_ffff, 1, 0x8000_0000, 0b1001),
            (ADDS_W, 0xffff_ffff, 1, 0, 0b0110),
            (ADDS_W, 0x8000_0000, 0x8000_0000, 0, 0b0111),
            (
                ADDS_W,
                0xffff_ffff_0000_0000,
                0xffff_ffff_0000_0001,
                1,
                0b0000,
            ),
            (SUBS_X, 0, 0, 0, 0b0110),
            (SUBS_X, 0, 1, MAX, 0b1000),
            (SUBS_X, 1, 1, 0, 0b0110),
            (SUBS_X, MIN64, 1, MAX64, 0b0011),
            (SUBS_X, MAX64, MAX, MIN64, 0b1001),
            (SUBS_X, MAX, MAX, 0, 0b0110),
            (SUBS_X, 0, MIN64, MIN64, 0b1001),
            (SUBS_W, 0, 1, 0xffff_ffff, 0b1000),
            (SUBS_W, 0x8000_0000, 1, 0x7fff_ffff, 0b0011),
            (SUBS_W, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 0b1001),
            (SUBS_W, 0x1_0000_0005, 5, 0, 0b0110),
        ];
        for &(word, a, b, res, nzcv) in cases {
            assert_eq!(
                run2(word, a, b, 0b0000),
                (res, nzcv),
                "{word:#010x} {a:#x} {b:#x}"
            );
        }
        // cmp x1, x2, lsl #1 discards the result (XZR), keeping SP
        let st = run(&[0xeb02_043f], &[(1, 4), (2, 2), (31, 0x40)]);
        assert_eq!((st.x[31], st.nzcv >> 28), (0x40, 0b0110));
    }

    #[test]
    fn add_sub_extended_uses_sp() {
        // add x0, sp, w1, uxtw #2
        let st = run(&[0x8b21_4be0], &[(1, X1), (31, 0x7000)]);
        assert_eq!(st.x[0], 0x2_26af_a7bc);
        // add sp, x1, w2, sxtb
        assert_eq!(
            run(&[0x8b22_803f], &[(1, X1), (2, X2)]).x[31],
            0x0123_4567_89ab_ce23
        );
        // sub x0, x1, w2, sxth #4
        assert_eq!(
            run(&[0xcb22_b020], &[(1, X1), (2, X2)]).x[0],
            0x0123_4567_89aa_aaaf
        );
        // adds w0, w1, w2, uxtb
        assert_eq!(run2(0x2b22_0020, X1, X2, 0), (0x89ab_ce23, 0b1000));
        // add x0, x1, x2, uxtx
        assert_eq!(run2(0x8b22_6020, 5, 7, 0).0, 12);
        // subs x0, sp, x2, sxtx #1
        let st = run(&[0xeb22_e7e0], &[(2, 8), (31, 0x10)]);
        assert_eq!((st.x[0], st.nzcv >> 28), (0, 0b0110));
        // cmp sp, x2 (subs xzr, sp, x2): flags only, SP kept
        let st = run(&[0xeb22_63ff], &[(2, 0x11), (31, 0x10)]);
        assert_eq!((st.x[31], st.nzcv >> 28), (0x10, 0b1000));
    }

    #[test]
    fn adc_sbc_with_carry_edges() {
        const ADC_X: u32 = 0x9a02_0020;
        const ADC_W: u32 = 0x1a02_0020;
        const ADCS_X: u32 = 0xba02_0020;
        const ADCS_W: u32 = 0x3a02_0020;
        const SBC_X: u32 = 0xda02_0020;
        const SBCS_X: u32 = 0xfa02_0020;
        const SBCS_W: u32 = 0x7a02_0020;
        // (word, x1, x2, NZCV in, result, NZCV out)
        let cases: &[(u32, u64, u64, u32, u64, u32)] = &[
            (ADC_X, 1, 2, 0b0010, 4, 0b0010),
            (ADC_X, MAX, 0, 0b0010, 0, 0b0010),
            (ADC_W, 0xffff_ffff, 0, 0b0010, 0, 0b0010),
            (ADC_W, 0xffff_ffff_0000_0001, 1, 0b0000, 2, 0b0000),
            (ADCS_X, MAX, 0, 0b0010, 0, 0b0110),
            (ADCS_X, MAX64, 0, 0b0010, MIN64, 0b1001),
            (ADCS_X, 0, 0, 0b1111, 1, 0b0000),
            (ADCS_X, 0, 0, 0b1101, 0, 0b0100),
            (ADCS_X, MAX, MAX, 0b0010, MAX, 0b1010),
            (ADCS_W, 0x7fff_ffff, 0, 0b0010, 0x8000_0000, 0b1001),
            (
                ADCS_W,
                0xffff_ffff,
                0xffff_ffff,
                0b0000,
                0xffff_fffe,
                0b1010,
            ),
            (SBC_X, 5, 3, 0b0010, 2, 0b0010),
            (SBC_X, 5, 3, 0b0000, 1, 0b0000),
            (SBCS_X, 0, 0, 0b0000, MAX, 0b1000),
            (SBCS_X, 0, 0, 0b0010, 0, 0b0110),
            (SBCS_X, MIN64, 0, 0b0000, MAX64, 0b0011),
            (SBCS_X, MAX64, MAX, 0b0010, MIN64, 0b1001),
            (SBCS_W, 0, 0, 0b0000, 0xffff_ffff, 0b1000),
            (SBCS_W, 0x8000_0000, 0, 0b0000, 0x7fff_ffff, 0b0011),
            (SBCS_W, 1, 1, 0b0010, 0, 0b0110),
        ];
        for &(word, a, b, fin, res, fout) in cases {
            assert_eq!(
                run2(word, a, b, fin),
                (res, fout),
                "{word:#010x} {a:#x} {b:#x} nzcv={fin:04b}"
            );
        }
        // ngc x0, x2 = sbc x0, xzr, x2
        assert_eq!(run2(0xda02_03e0, 0, 5, 0b0010).0, (-5i64) as u64);
    }

    #[test]
    fn conditional_compare() {
        const CCMP_EQ: u32 = 0xfa42_0025; // ccmp x1, x2, #0b0101, eq
        const CCMP_NE_IMM: u32 = 0x7a5f_182a; // ccmp w1, #31, #0b1010, ne
        const CCMN_HS: u32 = 0xba42_2020; // ccmn x1, x2, #0, hs
        const CCMN_LT_IMM: u32 = 0x3a41_b82f; // ccmn w1, #1, #0b1111, lt
                                              // (word, x1, x2, NZCV in, NZCV out)
        let cases: &[(u32, u64, u64, u32, u32)] = &[
            (CCMP_EQ, 3, 3, 0b0100, 0b0110),
            (CCMP_EQ, 3, 3, 0b0000, 0b0101),
            (CCMP_EQ, 0, 1, 0b0100, 0b1000),
            (CCMP_EQ, MIN64, 1, 0b0100, 0b0011),
            (CCMP_EQ, MAX64, MAX, 0b0100, 0b1001),
            (CCMP_NE_IMM, 31, 0, 0b0000, 0b0110),
            (CCMP_NE_IMM, 0xffff_ffff_0000_001f, 0, 0b0000, 0b0110),
            (CCMP_NE_IMM, 0, 0, 0b0000, 0b1000),
            (CCMP_NE_IMM, 31, 0, 0b0100, 0b1010),
            (CCMN_HS, MAX, 1, 0b0010, 0b0110),
            (CCMN_HS, MAX64, 1, 0b0010, 0b1001),
            (CCMN_HS, MAX, 1, 0b1101, 0b0000),
            (CCMN_LT_IMM, 0x7fff_ffff, 0, 0b1000, 0b1001),
            (CCMN_LT_IMM, 0xffff_ffff, 0, 0b0001, 0b0110),
            (CCMN_LT_IMM, 0xffff_ffff, 0, 0b1001, 0b1111),
        ];
        for &(word, a, b, fin, fout) in cases {
            assert_eq!(
                run2(word, a, b, fin).1,
                fout,
                "{word:#010x} {a:#x} {b:#x} nzcv={fin:04b}"
            );
        }
    }

    #[test]
    fn conditional_select() {
        // (word, NZCV in, x0 out) with x1 = X1, x2 = X2
        let cases: &[(u32, u32, u64, &str)] = &[
            (0x9a82_0020, 0b0100, X1, "csel x0, x1, x2, eq (taken)"),
            (0x9a82_0020, 0b0000, X2, "csel x0, x1, x2, eq"),
            (
                0x1a82_1420,
                0b0000,
                0x89ab_cdef,
                "csinc w0, w1, w2, ne (taken)",
            ),
            (0x1a82_1420, 0b0100, 0xffff_1235, "csinc w0, w1, w2, ne"),
            (0xda82_b020, 0b1000, X1, "csinv x0, x1, x2, lt (taken)"),
            (0xda82_b020, 0b1001, !X2, "csinv x0, x1, x2, lt"),
            (
                0x5a82_a420,
                0b1001,
                0x89ab_cdef,
                "csneg w0, w1, w2, ge (taken)",
            ),
            (0x5a82_a420, 0b1000, 0x0000_edcc, "csneg w0, w1, w2, ge"),
            (0x9a9f_97e0, 0b0010, 1, "cset x0, hi"),
            (0x9a9f_97e0, 0b0110, 0, "cset x0, hi (Z set)"),
            (0x5a9f_23e0, 0b0000, 0xffff_ffff, "csetm w0, lo"),
            (0x5a9f_23e0, 0b0010, 0, "csetm w0, lo (C set)"),
        ];
        for &(word, fin, want, text) in cases {
            assert_eq!(run2(word, X1, X2, fin), (want, fin), "{text}");
        }
        // csinc x0, x1, x2 with Rm = all ones wraps to zero
        assert_eq!(run2(0x9a82_1420, X1, MAX, 0b0000).0, X1);
        assert_eq!(run2(0x9a82_1420, X1, MAX, 0b0100).0, 0);
    }

    #[test]
    fn data_processing_1_source() {
        let cases: &[(u32, u64, u64, &str)] = &[
            (0xdac0_0020, X1, 0xf7b3_d591_e6a2_c480, "rbit x0, x1"),
            (0x5ac0_0020, X1, 0xf7b3_d591, "rbit w0, w1"),
            (0xdac0_0420, X1, 0x2301_6745_ab89_efcd, "rev16 x0, x1"),
            (0x5ac0_0420, X1, 0xab89_efcd, "rev16 w0, w1"),
            (0x5ac0_0820, X1, 0xefcd_ab89, "rev w0, w1"),
            (0xdac0_0820, X1, 0x6745_2301_efcd_ab89, "rev32 x0, x1"),
            (0xdac0_0c20, X1, 0xefcd_ab89_6745_2301, "rev x0, x1"),
            (0xdac0_1020, X1, 7, "clz x0, x1"),
            (0xdac0_1020, 0, 64, "clz x0, xzr-like"),
            (0x5ac0_1020, 0xffff_ffff_0000_0000, 32, "clz w0, w1 (0)"),
            (0x5ac0_1020, X1, 0, "clz w0, w1"),
            (0xdac0_1420, X1, 6, "cls x0, x1"),
            (0xdac0_1420, MAX, 63, "cls x0, x1 (all ones)"),
            (0xdac0_1420, 0, 63, "cls x0, x1 (0)"),
            (0xdac0_1420, MIN64, 0, "cls x0, x1 (min)"),
            (0x5ac0_1420, 0xffff_fff0, 27, "cls w0, w1"),
            (0x5ac0_1420, 0x1_0000_0000, 31, "cls w0, w1 (0)"),
        ];
        for &(word, x1, want, text) in cases {
            assert_eq!(run2(word, x1, 0, 0).0, want, "{text}");
        }
    }

    #[test]
    fn divide_and_variable_shift() {
        let cases: &[(u32, u64, u64, u64, &str)] = &[
            (0x9ac2_0820, 100, 7, 14, "udiv x0, x1, x2"),
            (0x9ac2_0820, 100, 0, 0, "udiv by zero"),
            (0x1ac2_0820, 0x1_0000_0064, 7, 14, "udiv w0, w1, w2"),
            (
                0x9ac2_0c20,
                (-100i64) as u64,
                7,
                (-14i64) as u64,
                "sdiv x0, x1, x2",
            ),
            (0x9ac2_0c20, MIN64, MAX, MIN64, "sdiv MIN / -1"),
            (0x9ac2_0c20, 5, 0, 0, "sdiv by zero"),
            (
                0x1ac2_0c20,
                0x8000_0000,
                0xffff_ffff,
                0x8000_0000,
                "sdiv w MIN / -1",
            ),
            (0x1ac2_0c20, 0xffff_ff9c, 7, 0xffff_fff2, "sdiv w0, w1, w2"),
            (0x9ac2_2020, 1, 65, 2, "lsl x0, x1, x2 (65 mod 64)"),
            (
                0x1ac2_2420,
                0x8000_0000,
                33,
                0x4000_0000,
                "lsr w0, w1, w2 (33 mod 32)",
            ),
            (0x9ac2_2820, MIN64, 63, MAX, "asr x0, x1, x2"),
            (0x1ac2_2820, 0x8000_0000, 4, 0xf800_0000, "asr w0, w1, w2"),
            (0x9ac2_2c20, 1, 1, MIN64, "ror x0, x1, x2"),
            (0x1ac2_2c20, 0x1_0000_0001, 4, 0x1000_0000, "ror w0, w1, w2"),
        ];
        for &(word, a, b, want, text) in cases {
            assert_eq!(run2(word, a, b, 0).0, want, "{text}");
        }
    }

    /// The standard CRC check values: CRC-32 and CRC-32C of "123456789" (initial value and
    /// final XOR all ones) are 0xcbf43926 and 0xe3069283.
    #[test]
    fn crc32_check_values() {
        let data = b"123456789";
        let d8 = u64::from_le_bytes(data[..8].try_into().unwrap());
        let d4a = u32::from_le_bytes(data[..4].try_into().unwrap()) as u64;
        let d4b = u32::from_le_bytes(data[4..8].try_into().unwrap()) as u64;
        let d2a = u16::from_le_bytes(data[..2].try_into().unwrap()) as u64;
        let d2b = u16::from_le_bytes(data[2..4].try_into().unwrap()) as u64;
        let last = data[8] as u64;
        const MVN_W0: u32 = 0x2a20_03e0; // mvn w0, w0
        for (c, want) in [(0u32, 0xcbf4_3926u64), (0x1000, 0xe306_9283)] {
            let b = 0x1ac0_4000 | c; // crc32{c}b w0, w0, w1..
            let h = 0x1ac0_4400 | c;
            let w = 0x1ac0_4800 | c;
            let x = 0x9ac0_4c00 | c;
            let reg = |op: u32, m: u32| op | (m << 16);
            // crc32x over 8 bytes, then crc32b of the last byte
            let st = run(
                &[reg(x, 1), reg(b, 2), MVN_W0],
                &[(0, 0xffff_ffff), (1, d8), (2, last)],
            );
            assert_eq!(st.x[0], want, "x+b {c:#x}");
            // crc32w twice
            let st = run(
                &[reg(w, 1), reg(w, 2), reg(b, 3), MVN_W0],
                &[(0, 0xffff_ffff), (1, d4a), (2, d4b), (3, last)],
            );
            assert_eq!(st.x[0], want, "w+w+b {c:#x}");
            // crc32h, crc32h, crc32w, crc32b; upper register bits are ignored
            let st = run(
                &[reg(h, 1), reg(h, 2), reg(w, 3), reg(b, 4), MVN_W0],
                &[
                    (0, 0xdead_0000_ffff_ffff),
                    (1, 0xffff_0000 | d2a),
                    (2, d2b),
                    (3, 0xff00_0000_0000_0000 | d4b),
                    (4, 0xff00 | last),
                ],
            );
            assert_eq!(st.x[0], want, "h+h+w+b {c:#x}");
        }
    }

    #[test]
    fn multiply_accumulate() {
        let cases: &[(u32, u64, u64, u64, u64, &str)] = &[
            (
                0x9b02_0c20,
                X1,
                X2,
                5,
                0x15b3_a4f9_3d71_a291,
                "madd x0, x1, x2, x3",
            ),
            (0x1b02_0c20, X1, X2, 5, 0x3d71_a291, "madd w0, w1, w2, w3"),
            (
                0x9b02_8c20,
                X1,
                X2,
                5,
                0xea4c_5b06_c28e_5d79,
                "msub x0, x1, x2, x3",
            ),
            (0x1b02_7c20, X1, X2, 5, 0x3d71_a28c, "mul w0, w1, w2"),
            (
                0x9b22_0c20,
                0xfffffffe,
                0x8000_0000,
                0x1000,
                0x1_0000_1000,
                "smaddl",
            ),
            (
                0x9b22_8c20,
                0xfffffffe,
                0x8000_0000,
                0x1000,
                0xffff_ffff_0000_1000,
                "smsubl",
            ),
            (
                0x9ba2_0c20,
                0xfffffffe,
                0x8000_0000,
                0x1000,
                0x7fff_ffff_0000_1000,
                "umaddl",
            ),
            (
                0x9ba2_8c20,
                0xfffffffe,
                0x8000_0000,
                0x1000,
                0x8000_0001_0000_1000,
                "umsubl",
            ),
            (
                0x9bc2_7c20,
                0x8000_0000_0000_0003,
                MAX - 1,
                0,
                0x8000_0000_0000_0001,
                "umulh",
            ),
            (0x9b42_7c20, 0x8000_0000_0000_0003, MAX - 1, 0, 0, "smulh"),
            (0x9b42_7c20, MAX, 1, 0, MAX, "smulh -1 * 1"),
            (0x9bc2_7c20, MAX, 1, 0, 0, "umulh max * 1"),
        ];
        for &(word, a, b, c, want, text) in cases {
            assert_eq!(run(&[word], &[(1, a), (2, b), (3, c)]).x[0], want, "{text}");
        }
    }

    #[test]
    fn reserved_encodings_are_undefined() {
        for word in [
            0x8bc2_0020, // add (shifted register) with shift = ROR
            0x0a02_8020, // and w, imm6 = 32
            0x0b02_8020, // add w, imm6 = 32
            0x8b22_1420, // add (extended register), imm3 = 5
            0x8b62_0020, // add (extended register), opt = 01
            0xba82_0020, // conditional select with S = 1
            0x9a82_0820, // conditional select with op2<1> = 1
            0xfa42_0035, // ccmp with o3 = 1
            0xfa42_0425, // ccmp with o2 = 1
            0x9a02_0420, // adc with bits 15:10 != 0
            0x5ac0_0c20, // rev (64-bit opcode) with sf = 0
            0xdac0_1820, // 1-source opcode 000110
            0x1ac2_4c20, // crc32x with sf = 0
            0x9ac2_4020, // crc32b with sf = 1
            0x9ac2_1020, // 2-source opcode 000100
            0x1b22_0c20, // smaddl with sf = 0
            0x9b42_fc20, // smulh with o0 = 1
            0x9b62_0c20, // 3-source op31 = 011
        ] {
            assert_undefined(word);
        }
    }
}
