//! Instruction tests for loads and stores. Expected values follow the Arm ARM pseudocode;
//! the encodings were produced with `aarch64-linux-gnu-as`.

use crate::mem::{Access, Mem};
use crate::testing::{run_with, FlatMem, CODE, DATA};
use crate::{CpuState, FaultKind, MemFault, Stop};

/// Base address the tests point at (room for negative offsets below it).
const D: u64 = DATA + 0x100;
/// One past the end of the test memory.
const END: u64 = CODE + (128 << 10);

/// Run `words` with X registers `x` (31 = SP) and V registers `v` set, after `init` has
/// filled memory.
fn exec(
    words: &[u32],
    x: &[(usize, u64)],
    v: &[(usize, u128)],
    init: impl Fn(&mut FlatMem),
) -> (CpuState, FlatMem, Stop) {
    let mut st = CpuState::new();
    for &(r, val) in x {
        st.x[r] = val;
    }
    for &(r, val) in v {
        st.v[r] = val;
    }
    run_with(words, st, init)
}

/// As [`exec`], and the code must run to its end.
fn exec_ok(
    words: &[u32],
    x: &[(usize, u64)],
    v: &[(usize, u128)],
    init: impl Fn(&mut FlatMem),
) -> (CpuState, FlatMem) {
    let (st, mem, stop) = exec(words, x, v, init);
    assert_eq!(stop, Stop::Brk(0), "stopped at {:#x}", st.pc);
    (st, mem)
}

fn rd(mem: &mut FlatMem, addr: u64, size: u8) -> u64 {
    mem.read(addr, size).expect("mapped")
}

fn rd128(mem: &mut FlatMem, addr: u64) -> u128 {
    mem.read128(addr).expect("mapped")
}

fn put(mem: &mut FlatMem, addr: u64, bytes: &[u8]) {
    let o = (addr - mem.base) as usize;
    mem.data[o..o + bytes.len()].copy_from_slice(bytes);
}

/// Fill `len` bytes at `addr` with `first, first+1, ...`.
fn ramp(mem: &mut FlatMem, addr: u64, len: usize, first: u8) {
    let b: Vec<u8> = (0..len).map(|k| first.wrapping_add(k as u8)).collect();
    put(mem, addr, &b);
}

/// Little-endian value of `n` bytes of a ramp starting at `first`, from ramp offset `off`.
fn ramp_val(first: u8, off: usize, n: usize) -> u128 {
    (0..n).fold(0u128, |acc, k| {
        acc | (u128::from(first.wrapping_add((off + k) as u8)) << (8 * k))
    })
}

/// `count` copies of the `esize`-byte value `e`.
fn rep(e: u128, esize: usize, count: usize) -> u128 {
    (0..count).fold(0, |acc, k| acc | (e << (8 * esize * k)))
}

const X1: u64 = 0x1122_3344_5566_7788;

#[test]
fn ldr_str_unsigned_offset_all_sizes() {
    let code = [
        0xf9000401, // str x1, [x0, #8]
        0xf9400402, // ldr x2, [x0, #8]
        0x39000c01, // strb w1, [x0, #3]
        0x39400c03, // ldrb w3, [x0, #3]
        0x79000c01, // strh w1, [x0, #6]
        0x79400c04, // ldrh w4, [x0, #6]
        0xb9001401, // str w1, [x0, #20]
        0xb9401405, // ldr w5, [x0, #20]
    ];
    let junk = u64::MAX;
    let (st, mut mem) = exec_ok(
        &code,
        &[(0, D), (1, X1), (3, junk), (4, junk), (5, junk)],
        &[],
        |_| {},
    );
    assert_eq!(rd(&mut mem, D + 8, 8), X1);
    assert_eq!(st.x[2], X1);
    assert_eq!(rd(&mut mem, D + 2, 2), 0x8800, "strb writes one byte");
    assert_eq!(st.x[3], 0x88);
    assert_eq!(rd(&mut mem, D + 4, 4), 0x7788_0000, "strh writes two bytes");
    assert_eq!(st.x[4], 0x7788);
    assert_eq!(rd(&mut mem, D + 20, 8), 0x5566_7788);
    assert_eq!(st.x[5], 0x5566_7788, "32-bit load zero-extends");
}

#[test]
fn sign_extending_loads_to_w_and_x() {
    let code = [
        0x39800001, // ldrsb x1, [x0]
        0x39c00002, // ldrsb w2, [x0]
        0x79800403, // ldrsh x3, [x0, #2]
        0x79c00404, // ldrsh w4, [x0, #2]
        0xb9800405, // ldrsw x5, [x0, #4]
        0xb9400406, // ldr w6, [x0, #4]
        0x39400007, // ldrb w7, [x0]
    ];
    let (st, _) = exec_ok(&code, &[(0, D)], &[], |m| {
        put(m, D, &[0x80, 0, 0x01, 0x80, 0x02, 0, 0, 0x80])
    });
    assert_eq!(st.x[1], 0xffff_ffff_ffff_ff80);
    assert_eq!(st.x[2], 0xffff_ff80);
    assert_eq!(st.x[3], 0xffff_ffff_ffff_8001);
    assert_eq!(st.x[4], 0xffff_8001);
    assert_eq!(st.x[5], 0xffff_ffff_8000_0002);
    assert_eq!(st.x[6], 0x8000_0002);
    assert_eq!(st.x[7], 0x80);
}

#[test]
fn unscaled_unprivileged_and_prfum() {
    let code = [
        0xf81f8001, // stur x1, [x0, #-8]
        0xf85f8002, // ldur x2, [x0, #-8]
        0xb8001001, // stur w1, [x0, #1]
        0xb8401003, // ldur w3, [x0, #1]
        0x38401004, // ldurb w4, [x0, #1]
        0x789f9005, // ldursh x5, [x0, #-7]
        0xf8803000, // prfum pldl1keep, [x0, #3]
        0xf85f8806, // ldtr x6, [x0, #-8]
        0x381ff801, // sttrb w1, [x0, #-1]
        0x38dff807, // ldtrsb w7, [x0, #-1]
    ];
    let (st, mut mem) = exec_ok(&code, &[(0, D), (1, X1)], &[], |_| {});
    assert_eq!(st.x[2], X1);
    assert_eq!(st.x[3], 0x5566_7788);
    assert_eq!(st.x[4], 0x88);
    assert_eq!(st.x[5], 0x6677);
    assert_eq!(st.x[6], X1);
    assert_eq!(rd(&mut mem, D - 8, 8), 0x8822_3344_5566_7788, "sttrb");
    assert_eq!(st.x[7], 0xffff_ff88);
    assert_eq!(rd(&mut mem, D, 8), 0x55_6677_8800);
    assert_eq!(st.x[0], D, "no writeback");
}

#[test]
fn pre_and_post_index_write_back() {
    let code = [
        0xf8410c01, // ldr x1, [x0, #16]!
        0xf85f8402, // ldr x2, [x0], #-8
        0xf81f8c03, // str x3, [x0, #-8]!
        0x38003403, // strb w3, [x0], #3
        0x785fdc04, // ldrh w4, [x0, #-3]!
    ];
    let (st, mut mem) = exec_ok(&code, &[(0, D), (3, 0x1234)], &[], |m| {
        put(m, D + 16, &0xaaaa_u64.to_le_bytes())
    });
    assert_eq!(st.x[1], 0xaaaa);
    assert_eq!(st.x[2], 0xaaaa, "post-index loads from the old base");
    assert_eq!(rd(&mut mem, D, 8), 0x1234);
    assert_eq!(st.x[4], 0x1234);
    assert_eq!(st.x[0], D);
}

#[test]
fn register_offset_extends_and_scales() {
    let code = [
        0xf8627801, // ldr x1, [x0, x2, lsl #3]
        0xb8645803, // ldr w3, [x0, w4, uxtw #2]
        0xf866c805, // ldr x5, [x0, w6, sxtw]
        0x38626807, // ldrb w7, [x0, x2]
        0x7866f808, // ldrh w8, [x0, x6, sxtx #1]
        0xf8296801, // str x1, [x0, x9]
        0xf8a26800, // prfm pldl1keep, [x0, x2]
    ];
    let (st, mut mem) = exec_ok(
        &code,
        &[
            (0, D),
            (2, 2),
            (4, 0xffff_ffff_0000_0003),
            (6, 0xffff_ffff_ffff_fff8),
            (9, 40),
        ],
        &[],
        |m| ramp(m, D - 64, 128, 0),
    );
    // Byte at D + k holds 64 + k.
    let at = |k: i64, n: usize| ramp_val(0, (64 + k) as usize, n) as u64;
    assert_eq!(st.x[1], at(16, 8));
    assert_eq!(st.x[3], at(12, 4), "uxtw ignores the top half of Xm");
    assert_eq!(st.x[5], at(-8, 8), "sxtw");
    assert_eq!(st.x[7], at(2, 1));
    assert_eq!(st.x[8], at(-16, 2), "sxtx #1");
    assert_eq!(rd(&mut mem, D + 40, 8), at(16, 8));
}

#[test]
fn literal_loads_gpr_and_fp() {
    let code = [
        0x58000101, // ldr x1, lit0
        0x180000e2, // ldr w2, lit0
        0x98000143, // ldrsw x3, lit1
        0xd80000a0, // prfm pldl1keep, lit0
        0x9c000080, // ldr q0, lit0
        0x5c000061, // ldr d1, lit0
        0x1c0000c2, // ldr s2, lit1
        0x14000007, // b over
        0x44332211, // lit0: .quad 0x8877665544332211
        0x88776655, //
        0xbbaa9900, //       .quad 0xffeeddccbbaa9900
        0xffeeddcc, //
        0x80000001, // lit1: .word 0x80000001
        0x00000000, //
        0xd503201f, // over: nop
    ];
    let ones = u128::MAX;
    let (st, _) = exec_ok(&code, &[], &[(0, ones), (1, ones), (2, ones)], |_| {});
    assert_eq!(st.x[1], 0x8877_6655_4433_2211);
    assert_eq!(st.x[2], 0x4433_2211);
    assert_eq!(st.x[3], 0xffff_ffff_8000_0001);
    assert_eq!(st.v[0], 0xffee_ddcc_bbaa_9900_8877_6655_4433_2211);
    assert_eq!(st.v[1], 0x8877_6655_4433_2211, "D load clears the rest");
    assert_eq!(st.v[2], 0x8000_0001);
}

#[test]
fn sp_as_base_register() {
    let code = [
        0xf81f0fe1, // str x1, [sp, #-16]!
        0xf84107e2, // ldr x2, [sp], #16
        0xa9be7bfd, // stp x29, x30, [sp, #-32]!
        0xa8c213e3, // ldp x3, x4, [sp], #32
    ];
    let sp = D + 0x100;
    let (st, mut mem) = exec_ok(
        &code,
        &[(31, sp), (1, 0x1111), (29, 0x2929), (30, 0x3030)],
        &[],
        |_| {},
    );
    assert_eq!(st.x[2], 0x1111);
    assert_eq!((st.x[3], st.x[4]), (0x2929, 0x3030));
    assert_eq!(rd(&mut mem, sp - 32, 8), 0x2929);
    assert_eq!(rd(&mut mem, sp - 24, 8), 0x3030);
    assert_eq!(st.x[31], sp);
}

/// Rt == Rn with writeback is CONSTRAINED UNPREDICTABLE; we suppress the writeback of loads
/// and store the old register value.
#[test]
fn writeback_overlapping_the_transfer_register() {
    let code = [
        0xf8408400, // ldr x0, [x0], #8
        0xf8008c21, // str x1, [x1, #8]!
        0xa9c10c42, // ldp x2, x3, [x2, #16]!
    ];
    let (st, mut mem) = exec_ok(&code, &[(0, D), (1, D + 0x40), (2, D + 0x80)], &[], |m| {
        put(m, D, &0x5555_u64.to_le_bytes());
        put(m, D + 0x90, &0x77_u64.to_le_bytes());
        put(m, D + 0x98, &0x88_u64.to_le_bytes());
    });
    assert_eq!(st.x[0], 0x5555);
    assert_eq!(rd(&mut mem, D + 0x48, 8), D + 0x40);
    assert_eq!(st.x[1], D + 0x48);
    assert_eq!((st.x[2], st.x[3]), (0x77, 0x88));
}

#[test]
fn load_store_pairs() {
    let code = [
        0xa9010801, // stp x1, x2, [x0, #16]
        0xa9411003, // ldp x3, x4, [x0, #16]
        0x29bf0801, // stp w1, w2, [x0, #-8]!
        0x28c11805, // ldp w5, w6, [x0], #8
        0x697f2007, // ldpsw x7, x8, [x0, #-8]
        0xa8020402, // stnp x2, x1, [x0, #32]
        0xa8422809, // ldnp x9, x10, [x0, #32]
        0x297f300b, // ldp w11, w12, [x0, #-8]
    ];
    let (x1, x2) = (0xffff_ffff_8000_0001, 0x0000_0002_7fff_fffe);
    let (st, mut mem) = exec_ok(&code, &[(0, D), (1, x1), (2, x2)], &[], |_| {});
    assert_eq!(rd(&mut mem, D + 16, 8), x1);
    assert_eq!(rd(&mut mem, D + 24, 8), x2);
    assert_eq!((st.x[3], st.x[4]), (x1, x2));
    assert_eq!(rd(&mut mem, D - 8, 8), 0x7fff_fffe_8000_0001);
    assert_eq!((st.x[5], st.x[6]), (0x8000_0001, 0x7fff_fffe));
    assert_eq!((st.x[7], st.x[8]), (0xffff_ffff_8000_0001, 0x7fff_fffe));
    assert_eq!((st.x[9], st.x[10]), (x2, x1));
    assert_eq!((st.x[11], st.x[12]), (0x8000_0001, 0x7fff_fffe));
    assert_eq!(st.x[0], D);
}

#[test]
fn simd_fp_pairs() {
    let code = [
        0xad000400, // stp q0, q1, [x0]
        0xad400c02, // ldp q2, q3, [x0]
        0x6d820400, // stp d0, d1, [x0, #32]!
        0x2cfc1404, // ldp s4, s5, [x0], #-32
        0x6d421c06, // ldp d6, d7, [x0, #32]
        0xac402408, // ldnp q8, q9, [x0]
        0x2c3f0400, // stnp s0, s1, [x0, #-8]
    ];
    let q0 = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
    let q1 = 0x1f1e_1d1c_1b1a_1918_1716_1514_1312_1110u128;
    let ones = u128::MAX;
    let v: Vec<(usize, u128)> = [(0, q0), (1, q1)]
        .into_iter()
        .chain((4..10).map(|r| (r, ones)))
        .collect();
    let (st, mut mem) = exec_ok(&code, &[(0, D)], &v, |_| {});
    assert_eq!(rd128(&mut mem, D), q0);
    assert_eq!(rd128(&mut mem, D + 16), q1);
    assert_eq!((st.v[2], st.v[3]), (q0, q1));
    assert_eq!(rd(&mut mem, D + 32, 8), q0 as u64);
    assert_eq!(rd(&mut mem, D + 40, 8), q1 as u64);
    assert_eq!((st.v[4], st.v[5]), (0x0302_0100, 0x0706_0504));
    assert_eq!(st.v[6], q0 as u64 as u128);
    assert_eq!(st.v[7], q1 as u64 as u128);
    assert_eq!((st.v[8], st.v[9]), (q0, q1));
    assert_eq!(rd(&mut mem, D - 8, 8), 0x1312_1110_0302_0100);
    assert_eq!(st.x[0], D);
}

#[test]
fn simd_fp_single_registers() {
    let code = [
        0x3d800400, // str q0, [x0, #16]
        0x3dc00401, // ldr q1, [x0, #16]
        0x3d404002, // ldr b2, [x0, #16]
        0x7c411003, // ldur h3, [x0, #17]
        0xbd401404, // ldr s4, [x0, #20]
        0xfd400c05, // ldr d5, [x0, #24]
        0x3cc0f006, // ldur q6, [x0, #15]
        0xfc217800, // str d0, [x0, x1, lsl #3]
        0x3ce06827, // ldr q7, [x1, x0]
        0x3ce27808, // ldr q8, [x0, x2, lsl #4]
        0x3c1ffc00, // str b0, [x0, #-1]!
        0x7c001400, // str h0, [x0], #1
        0xbc5ffc09, // ldr s9, [x0, #-1]!
    ];
    let q0 = ramp_val(0x10, 0, 16);
    let v: Vec<(usize, u128)> = std::iter::once((0, q0))
        .chain((1..10).map(|r| (r, u128::MAX)))
        .collect();
    let (st, mut mem) = exec_ok(&code, &[(0, D), (1, 4), (2, 1)], &v, |_| {});
    assert_eq!(st.v[1], q0);
    assert_eq!(st.v[2], 0x10);
    assert_eq!(st.v[3], 0x1211);
    assert_eq!(st.v[4], 0x1716_1514);
    assert_eq!(st.v[5], 0x1f1e_1d1c_1b1a_1918);
    assert_eq!(st.v[6], q0 << 8);
    assert_eq!(rd(&mut mem, D + 32, 8), q0 as u64);
    assert_eq!(st.v[7], 0x1312_1110 << 96);
    assert_eq!(st.v[8], q0);
    assert_eq!(rd(&mut mem, D - 1, 2), 0x1110);
    assert_eq!(st.v[9], 0x1110);
    assert_eq!(st.x[0], D - 1);
}

#[test]
fn faulting_load_leaves_registers_unchanged() {
    // ldr x1, [x0, #8]! with x0 unmapped: nothing written, pc at the load.
    let (st, _, stop) = exec(&[0xf8408c01], &[(0, 0x1000), (1, 0x42)], &[], |_| {});
    assert_eq!(
        stop,
        Stop::Fault(MemFault::new(0x1008, Access::Read, FaultKind::Unmapped))
    );
    assert_eq!((st.x[0], st.x[1], st.pc), (0x1000, 0x42, CODE));

    // mov x5, #1; ldp x1, x2, [x0] with the second word past the end of memory.
    let (st, _, stop) = exec(
        &[0xd2800025, 0xa9400801],
        &[(0, END - 8), (1, 0x11), (2, 0x22)],
        &[],
        |_| {},
    );
    assert!(matches!(stop, Stop::Fault(f) if f.addr == END));
    assert_eq!((st.x[1], st.x[2], st.x[5]), (0x11, 0x22, 1));
    assert_eq!(st.pc, CODE + 4, "fault reported at the ldp");

    // ldp q1, q2, [x0] across the end.
    let (st, _, stop) = exec(&[0xad400801], &[(0, END - 24)], &[(1, 7), (2, 8)], |_| {});
    assert!(matches!(stop, Stop::Fault(_)));
    assert_eq!((st.v[1], st.v[2]), (7, 8));

    // str x1, [x0], #8 to nothing: no writeback.
    let (st, _, stop) = exec(&[0xf8008401], &[(0, 0x2000)], &[], |_| {});
    assert!(matches!(stop, Stop::Fault(f) if f.access == Access::Write));
    assert_eq!(st.x[0], 0x2000);
}

#[test]
fn faulting_structure_loads_leave_registers_unchanged() {
    let v: Vec<(usize, u128)> = (0..8).map(|r| (r, r as u128 + 100)).collect();
    for (word, base) in [
        (0x4cdf2000, END - 48), // ld1 {v0.16b-v3.16b}, [x0], #64
        (0x4dff4802, END - 2),  // ld2 {v2.h, v3.h}[5], [x0], #4
        (0x4de2e804, END - 12), // ld4r {v4.4s-v7.4s}, [x0], x2
    ] {
        let (st, _, stop) = exec(&[word], &[(0, base), (2, 16)], &v, |_| {});
        assert!(matches!(stop, Stop::Fault(f) if f.addr == END), "{word:#x}");
        assert_eq!(st.x[0], base, "{word:#x}");
        for (r, val) in &v {
            assert_eq!(st.v[*r], *val, "{word:#x} v{r}");
        }
    }
}

#[test]
fn ldxr_stxr_success_failure_and_clrex() {
    let code = [
        0xc85f7c01, // ldxr x1, [x0]
        0xc8027c03, // stxr w2, x3, [x0]
        0xc8047c05, // stxr w4, x5, [x0]
        0x085f7c06, // ldxrb w6, [x0]
        0xd5033f5f, // clrex
        0x08077c05, // stxrb w7, w5, [x0]
        0x485ffc08, // ldaxrh w8, [x0]
        0x4809fc03, // stlxrh w9, w3, [x0]
    ];
    let junk = 0xdead;
    let (st, mut mem) = exec_ok(
        &code,
        &[
            (0, D),
            (2, junk),
            (3, 0x5678),
            (4, junk),
            (5, 0x9999_9999),
            (7, junk),
            (9, junk),
        ],
        &[],
        |m| put(m, D, &0x1234_u64.to_le_bytes()),
    );
    assert_eq!(st.x[1], 0x1234);
    assert_eq!(st.x[2], 0, "stxr after ldxr succeeds");
    assert_eq!(
        st.x[4], 1,
        "second stxr fails: the first cleared the monitor"
    );
    assert_eq!(st.x[6], 0x78);
    assert_eq!(st.x[7], 1, "stxrb after clrex fails");
    assert_eq!(st.x[8], 0x5678);
    assert_eq!(st.x[9], 0);
    assert_eq!(rd(&mut mem, D, 8), 0x5678);
}

#[test]
fn stxr_without_ldxr_fails_and_leaves_memory() {
    // stxr w2, x3, [x0]
    let (st, mut mem) = exec_ok(&[0xc8027c03], &[(0, D), (2, 0xdead), (3, 7)], &[], |m| {
        put(m, D, &[0xaa])
    });
    assert_eq!(st.x[2], 1);
    assert_eq!(rd(&mut mem, D, 8), 0xaa);
}

#[test]
fn exclusive_pairs() {
    let code = [
        0xc87f0801, // ldxp x1, x2, [x0]
        0xc8231404, // stxp w3, x4, x5, [x0]
        0x887f9c06, // ldaxp w6, w7, [x0]
        0x88289005, // stlxp w8, w5, w4, [x0]
        0x885f7c09, // ldxr w9, [x0]
        0x880a7fe5, // stxr w10, w5, [sp]
    ];
    let (x4, x5) = (0xaaaa_bbbb_cccc_dddd, 0x1111_2222_3333_4444);
    let (st, mut mem) = exec_ok(
        &code,
        &[(0, D), (3, 9), (4, x4), (5, x5), (8, 9), (31, D + 0x100)],
        &[],
        |m| {
            put(m, D, &0x1111_u64.to_le_bytes());
            put(m, D + 8, &0x2222_u64.to_le_bytes());
        },
    );
    assert_eq!((st.x[1], st.x[2]), (0x1111, 0x2222));
    assert_eq!(st.x[3], 0);
    assert_eq!((st.x[6], st.x[7]), (0xcccc_dddd, 0xaaaa_bbbb));
    assert_eq!(st.x[8], 0);
    assert_eq!(rd(&mut mem, D, 8), 0xcccc_dddd_3333_4444);
    assert_eq!(rd(&mut mem, D + 8, 8), x5);
    assert_eq!(st.x[9], 0x3333_4444);
    assert_eq!(st.x[10], 1, "stxr to another address fails");
    assert_eq!(rd(&mut mem, D + 0x100, 8), 0);
}

#[test]
fn misaligned_exclusive_and_ordered_accesses_fault() {
    for (word, base) in [
        (0xc85f7c01, D + 4), // ldxr x1, [x0]
        (0x88dffc01, D + 2), // ldar w1, [x0]
        (0xc89ffc01, D + 4), // stlr x1, [x0]
        (0xc87f8801, D + 8), // ldaxp x1, x2, [x0] (16-byte aligned)
    ] {
        let (st, _, stop) = exec(&[word], &[(0, base), (1, 0x77)], &[], |_| {});
        assert!(
            matches!(stop, Stop::Fault(f) if f.kind == FaultKind::Alignment && f.addr == base),
            "{word:#x}: {stop:?}"
        );
        assert_eq!(st.x[1], 0x77);
        assert!(!st.monitor.valid);
    }
}

#[test]
fn load_acquire_store_release() {
    let code = [
        0xc89ffc01, // stlr x1, [x0]
        0xc8dffc02, // ldar x2, [x0]
        0x089ffc03, // stlrb w3, [x0]
        0x08dffc04, // ldarb w4, [x0]
        0xc8dffc05, // ldar x5, [x0]
        0x489ffd43, // stlrh w3, [x10]
        0x48dffd46, // ldarh w6, [x10]
        0x889ffd61, // stlr w1, [x11]
        0x88dffd67, // ldar w7, [x11]
    ];
    let (st, mut mem) = exec_ok(
        &code,
        &[
            (0, D),
            (1, X1),
            (3, 0xffff_ffff),
            (10, D + 16),
            (11, D + 32),
        ],
        &[],
        |_| {},
    );
    assert_eq!(st.x[2], X1);
    assert_eq!(st.x[4], 0xff);
    assert_eq!(st.x[5], 0x1122_3344_5566_77ff);
    assert_eq!(st.x[6], 0xffff);
    assert_eq!(st.x[7], 0x5566_7788);
    assert_eq!(rd(&mut mem, D + 32, 8), 0x5566_7788);
}

#[test]
fn ld1_ld4_multiple_structures() {
    let code = [
        0x4c407000, // ld1 {v0.16b}, [x0]
        0x4c402801, // ld1 {v1.4s-v4.4s}, [x0]
        0x0c406005, // ld1 {v5.8b-v7.8b}, [x0]
        0x4c408808, // ld2 {v8.4s, v9.4s}, [x0]
        0x0c40400a, // ld3 {v10.8b-v12.8b}, [x0]
        0x4c40040d, // ld4 {v13.8h-v16.8h}, [x0]
        0x4c40ac1f, // ld1 {v31.2d, v0.2d}, [x0]
    ];
    let v: Vec<(usize, u128)> = (0..32).map(|r| (r, u128::MAX)).collect();
    let (st, _) = exec_ok(&code, &[(0, D)], &v, |m| ramp(m, D, 64, 0));
    let m = |off: usize, n: usize| ramp_val(0, off, n);
    for r in 0..4 {
        assert_eq!(st.v[1 + r], m(16 * r, 16), "ld1 4 regs v{}", 1 + r);
    }
    for r in 0..3 {
        assert_eq!(st.v[5 + r], m(8 * r, 8), "ld1 8b clears the top");
    }
    // ld2 .4s: v8 gets words 0,2,4,6 and v9 words 1,3,5,7.
    let de = |s: usize, nsel: usize, esize: usize, count: usize| {
        (0..count).fold(0u128, |acc, e| {
            acc | (m((e * nsel + s) * esize, esize) << (8 * esize * e))
        })
    };
    assert_eq!(st.v[8], de(0, 2, 4, 4));
    assert_eq!(st.v[9], de(1, 2, 4, 4));
    for s in 0..3 {
        assert_eq!(st.v[10 + s], de(s, 3, 1, 8), "ld3 v{}", 10 + s);
    }
    for s in 0..4 {
        assert_eq!(st.v[13 + s], de(s, 4, 2, 8), "ld4 v{}", 13 + s);
    }
    assert_eq!(st.v[31], m(0, 16), "register list wraps from v31 to v0");
    assert_eq!(st.v[0], m(16, 16));
}

#[test]
fn st2_st4_multiple_structures() {
    let code = [
        0x4c008400, // st2 {v0.8h, v1.8h}, [x0]
        0x4c004822, // st3 {v2.4s-v4.4s}, [x1]
        0x0c000045, // st4 {v5.8b-v8.8b}, [x2]
        0x0c007c69, // st1 {v9.1d}, [x3]
    ];
    let v: Vec<(usize, u128)> = (0..10)
        .map(|r| (r, ramp_val(0x10 * r as u8, 0, 16)))
        .collect();
    let (_, mut mem) = exec_ok(
        &code,
        &[(0, D), (1, D + 0x40), (2, D + 0x80), (3, D + 0xc0)],
        &v,
        |_| {},
    );
    let el = |r: usize, e: usize, esize: usize| {
        (v[r].1 >> (8 * esize * e)) as u64 & ((1u64 << (8 * esize)) - 1)
    };
    for e in 0..8 {
        for s in 0..2 {
            assert_eq!(rd(&mut mem, D + 2 * (2 * e + s) as u64, 2), el(s, e, 2));
        }
    }
    for e in 0..4 {
        for s in 0..3 {
            let a = D + 0x40 + 4 * (3 * e + s) as u64;
            assert_eq!(rd(&mut mem, a, 4), el(2 + s, e, 4));
        }
    }
    for e in 0..8 {
        for s in 0..4 {
            let a = D + 0x80 + (4 * e + s) as u64;
            assert_eq!(rd(&mut mem, a, 1), el(5 + s, e, 1));
        }
    }
    assert_eq!(rd(&mut mem, D + 0xc0, 8), v[9].1 as u64);
    assert_eq!(rd(&mut mem, D + 0xc8, 8), 0, "st1 .1d writes 8 bytes");
}

#[test]
fn structure_post_index_immediate_and_register() {
    let code = [
        0x4cdfa000, // ld1 {v0.16b, v1.16b}, [x0], #32
        0x0cc18002, // ld2 {v2.8b, v3.8b}, [x0], x1
        0x4c9f7840, // st1 {v0.4s}, [x2], #16
        0x0c817841, // st1 {v1.2s}, [x2], x1
    ];
    let (st, mut mem) = exec_ok(&code, &[(0, D), (1, 100), (2, D + 0x100)], &[], |m| {
        ramp(m, D, 64, 0)
    });
    assert_eq!(st.v[0], ramp_val(0, 0, 16));
    assert_eq!(st.v[1], ramp_val(0, 16, 16));
    let even = (0..8).fold(0u128, |a, e| a | ((32 + 2 * e as u128) << (8 * e)));
    assert_eq!(st.v[2], even);
    assert_eq!(st.v[3], even + 0x0101_0101_0101_0101);
    assert_eq!(st.x[0], D + 32 + 100);
    assert_eq!(rd128(&mut mem, D + 0x100), st.v[0]);
    assert_eq!(rd(&mut mem, D + 0x110, 8), st.v[1] as u64);
    assert_eq!(rd(&mut mem, D + 0x118, 8), 0);
    assert_eq!(st.x[2], D + 0x110 + 100);
}

#[test]
fn single_structure_lanes_and_replicate() {
    let code = [
        0x0d409000, // ld1 {v0.s}[1], [x0]
        0x4d401c01, // ld1 {v1.b}[15], [x0]
        0x4d604802, // ld2 {v2.h, v3.h}[5], [x0]
        0x4d40a404, // ld3 {v4.d-v6.d}[1], [x0]
        0x4d60b007, // ld4 {v7.s-v10.s}[3], [x0]
        0x4d40c80b, // ld1r {v11.4s}, [x0]
        0x0d40c00c, // ld1r {v12.8b}, [x0]
        0x4d60cc0d, // ld2r {v13.2d, v14.2d}, [x0]
        0x0d60e40f, // ld4r {v15.4h-v18.4h}, [x0]
        0x0d009020, // st1 {v0.s}[1], [x1]
        0x4d204862, // st2 {v2.h, v3.h}[5], [x3]
        0x0ddf8413, // ld1 {v19.d}[0], [x0], #8
        0x0dc2e014, // ld3r {v20.8b-v22.8b}, [x0], x2
    ];
    let ones = u128::MAX;
    let v: Vec<(usize, u128)> = (0..32).map(|r| (r, ones)).collect();
    let (st, mut mem) = exec_ok(
        &code,
        &[(0, D), (1, D + 0x80), (2, 5), (3, D + 0xa0)],
        &v,
        |m| ramp(m, D, 64, 0x40),
    );
    let m = |off: usize, n: usize| ramp_val(0x40, off, n);
    let lane = |e: u128, esize: usize, idx: usize| {
        let sh = 8 * esize * idx;
        (ones & !(((1u128 << (8 * esize)) - 1) << sh)) | (e << sh)
    };
    assert_eq!(st.v[0], lane(m(0, 4), 4, 1));
    assert_eq!(st.v[1], lane(m(0, 1), 1, 15));
    assert_eq!(st.v[2], lane(m(0, 2), 2, 5));
    assert_eq!(st.v[3], lane(m(2, 2), 2, 5));
    for s in 0..3 {
        assert_eq!(st.v[4 + s], lane(m(8 * s, 8), 8, 1));
    }
    for s in 0..4 {
        assert_eq!(st.v[7 + s], lane(m(4 * s, 4), 4, 3));
    }
    assert_eq!(st.v[11], rep(m(0, 4), 4, 4));
    assert_eq!(st.v[12], 0x4040_4040_4040_4040, "ld1r .8b clears the top");
    assert_eq!(st.v[13], rep(m(0, 8), 8, 2));
    assert_eq!(st.v[14], rep(m(8, 8), 8, 2));
    for s in 0..4 {
        assert_eq!(st.v[15 + s], rep(m(2 * s, 2), 2, 4));
    }
    assert_eq!(
        rd(&mut mem, D + 0x80, 8),
        m(0, 4) as u64,
        "st1 lane writes 4 bytes"
    );
    assert_eq!(rd(&mut mem, D + 0xa0, 8), m(0, 4) as u64, "st2 lane");
    assert_eq!(st.v[19], lane(m(0, 8), 8, 0));
    for s in 0..3 {
        assert_eq!(st.v[20 + s], rep(m(8 + s, 1), 1, 8));
    }
    assert_eq!(st.x[0], D + 8 + 5);
}

#[test]
fn unallocated_and_later_encodings_are_undefined() {
    for word in [
        0x48207c82, // casp x0, x1, x2, x3, [x4] (v8.1)
        0xf8bfc020, // ldapr x0, [x1] (v8.3)
        0xf8200041, // ldadd x0, x1, [x2] (v8.1)
        0xc89f7c20, // stllr x0, [x1] (v8.1)
        0xc8df7c20, // ldlar x0, [x1] (v8.1)
        0xc8a07c41, // cas x0, x1, [x2] (v8.1)
        0xf8200420, // ldraa x0, [x1] (v8.3)
        0x69000440, // stgp x0, x1, [x2] (v8.5)
        0xd9400020, // ldapur x0, [x1] (v8.4)
        0xb9c00000, // ldr (unsigned offset) size=10 opc=11
        0xf8800400, // prfm post-indexed (unallocated)
        0x68400000, // ldnp with opc=01 (no LDNPSW)
        0xf8600800, // register offset with option=000
        0x7cc00000, // SIMD&FP unscaled size=01 opc=11
        0x3c400800, // unprivileged SIMD&FP
        0xdc000000, // ldr (literal, SIMD&FP) opc=11
        0xec400000, // ldp (SIMD&FP) opc=11
        0x0c408c00, // ld2 {.1d} (multiple structures)
        0x0c405000, // multiple structures opcode 0101
        0x0d00c000, // st1r (replicate has no store)
        0x0d40d000, // ld1r with S=1
        0x0d404400, // ld1 {v.h} lane with size<0>=1
        0x0d408c00, // 32-bit lane, size=11
    ] {
        let (st, _, stop) = exec(&[word], &[], &[], |_| {});
        assert_eq!(stop, Stop::Undefined(word), "{word:#010x}");
        assert_eq!(st.pc, CODE);
    }
}
