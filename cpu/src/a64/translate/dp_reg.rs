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

fn width(i: Insn) -> Width {
    if i.sf() {
        Width::W64
    } else {
        Width::W32
    }
}

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
    let w = width(i);
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
    let w = width(i);
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
    let w = width(i);
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
    let w = width(i);
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
    let w = width(i);
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
    let w = width(i);
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
    let w = width(i);
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
    let w = width(i);
    let op = if i.bit(10) { BinOp::SDiv } else { BinOp::UDiv };
    let n = t.get_x(i.rn());
    let m = t.get_x(i.rm());
    let r = t.bin(op, w, n, m);
    t.set_x(i.rd(), r);
    Flow::Next
}

/// LSLV/LSRV/ASRV/RORV: the amount is Rm modulo the width.
fn shiftv(t: &mut Translator, i: Insn) -> Flow {
    let w = width(i);
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
    let w = width(i);
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
