//! Criterion benches of the CPU's tiers: decode throughput over a mix of real encodings,
//! translation (block building) throughput, and execution throughput of small guest loops
//! (an integer loop and a memory copy loop) on the interpreter and on the tiered engine, and
//! the JIT's compile time per block.
//!
//! `cargo bench --bench interp` (add `-- decode` etc. to pick some). The whole-program
//! comparison against QEMU is `benches/compare.sh`.

use armboard_cpu::a64::{decode, translate_block};
use armboard_cpu::engine::EngineKind;
use armboard_cpu::testing::{FlatMem, CODE, DATA};
use armboard_cpu::{model, Cpu, CpuState, Stop};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

/// A mix of common encodings (what compilers emit: loads/stores, arithmetic, branches, a
/// little FP and SIMD), assembled with aarch64-linux-gnu-as.
const MIX: &[u32] = &[
    0xf9400420, // ldr x0, [x1, #8]
    0xb8647862, // ldr w2, [x3, x4, lsl #2]
    0xf9000be5, // str x5, [sp, #16]
    0xa9be7bfd, // stp x29, x30, [sp, #-32]!
    0xa8c27bfd, // ldp x29, x30, [sp], #32
    0x91000400, // add x0, x0, #1
    0x8b030041, // add x1, x2, x3
    0xcb060ca4, // sub x4, x5, x6, lsl #3
    0x71001107, // subs w7, w8, #4
    0xeb01001f, // cmp x0, x1
    0x3100045f, // cmn w2, #1
    0xaa0403e3, // mov x3, x4
    0x52800c85, // mov w5, #100
    0xf2a24686, // movk x6, #0x1234, lsl #16
    0x92401d07, // and x7, x8, #0xff
    0x2a0b0149, // orr w9, w10, w11
    0xcace15ac, // eor x12, x13, x14, ror #5
    0x7219001f, // tst w0, #0x80
    0xd37cec41, // lsl x1, x2, #4
    0x53077c83, // lsr w3, w4, #7
    0x937ffcc5, // asr x5, x6, #63
    0xd3431d07, // ubfx x7, x8, #3, #5
    0x131e1549, // sbfiz w9, w10, #2, #6
    0x9a820020, // csel x0, x1, x2, eq
    0x1a9f07e3, // cset w3, ne
    0x9a86b4a4, // csinc x4, x5, x6, lt
    0x9b092907, // madd x7, x8, x9, x10
    0x1b0d7d8b, // mul w11, w12, w13
    0x9ad009ee, // udiv x14, x15, x16
    0x54000200, // b.eq .+64
    0x54ffff01, // b.ne .-32
    0xb4000080, // cbz x0, .+16
    0x35ffffc1, // cbnz w1, .-8
    0x36180062, // tbz x2, #3, .+12
    0x14000040, // b .+256
    0x97ffff00, // bl .-1024
    0xd65f03c0, // ret
    0xd61f0200, // br x16
    0xd63f0100, // blr x8
    0x90000000, // adrp x0, .+4096
    0x100000a1, // adr x1, .+20
    0x38401462, // ldrb w2, [x3], #1
    0x381ffca4, // strb w4, [x5, #-1]!
    0x794004e6, // ldrh w6, [x7, #2]
    0xb9800528, // ldrsw x8, [x9, #4]
    0xf85f816a, // ldur x10, [x11, #-8]
    0x3dc00420, // ldr q0, [x1, #16]
    0xfd000041, // str d1, [x2]
    0x1e622820, // fadd d0, d1, d2
    0x1e250883, // fmul s3, s4, s5
    0x1e6720c0, // fcmp d6, d7
    0x9e780020, // fcvtzs x0, d1
    0x9e620062, // scvtf d2, x3
    0x9e6700a4, // fmov d4, x5
    0x4ea28420, // add v0.4s, v1.4s, v2.4s
    0x6e251c83, // eor v3.16b, v4.16b, v5.16b
    0x4e080ce6, // dup v6.2d, x7
    0x0e0c3d28, // umov w8, v9.s[1]
    0x6e6c8d6a, // cmeq v10.8h, v11.8h, v12.8h
    0x4cdf7000, // ld1 {v0.16b}, [x0], #16
    0xd4000001, // svc #0
    0xd503201f, // nop
    0xdac01041, // clz x1, x2
    0x5ac00883, // rev w3, w4
];

fn decode_mix(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(MIX.len() as u64));
    g.bench_function("mix", |b| {
        b.iter(|| {
            MIX.iter()
                .filter(|&&w| decode(black_box(w)).is_some())
                .count()
        })
    });
    g.finish();
}

/// Translate blocks over a code area filled with the mix minus its block-ending instructions
/// (so blocks are long), and over the mix as it is (short blocks ending at branches).
fn translate(c: &mut Criterion) {
    // Words that do not end a block: translated before a NOP, the block goes on past them.
    let straight: Vec<u32> = MIX
        .iter()
        .copied()
        .filter(|&w| {
            let mut m = FlatMem::new(CODE, 4096);
            m.load_words(CODE, &[w, 0xd503_201f, 0xd420_0000]);
            translate_block(&mut m, CODE).len > 1
        })
        .collect();
    let mut g = c.benchmark_group("translate");
    for (name, words) in [("straight", straight), ("mix", MIX.to_vec())] {
        let mut mem = FlatMem::new(CODE, 64 << 10);
        let reps = (32 << 10) / (4 * words.len());
        let code: Vec<u32> = words
            .iter()
            .copied()
            .cycle()
            .take(reps * words.len())
            .collect();
        mem.load_words(CODE, &code);
        let end = CODE + 4 * code.len() as u64;
        // Count the guest instructions one pass translates.
        let mut insns = 0u64;
        let mut pc = CODE;
        while pc < end {
            let b = translate_block(&mut mem, pc);
            insns += u64::from(b.len.max(1));
            pc += 4 * u64::from(b.len.max(1));
        }
        g.throughput(Throughput::Elements(insns));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut pc = CODE;
                while pc < end {
                    let blk = translate_block(&mut mem, pc);
                    pc += 4 * u64::from(blk.len.max(1));
                    black_box(&blk);
                }
            })
        });
    }
    g.finish();
}

/// An integer loop: 0x4000 iterations of add/eor/add/subs/b.ne.
const INT_LOOP: &[u32] = &[
    0xd2880000, // movz x0, #0x4000
    0xd2800001, // mov x1, #0
    0x8b000021, // 1: add x1, x1, x0
    0xca000c22, // eor x2, x1, x0, lsl #3
    0x8b421c21, // add x1, x1, x2, lsr #7
    0xf1000400, // subs x0, x0, #1
    0x54ffff81, // b.ne 1b
    0xd4200000, // brk #0
];
const INT_LOOP_INSNS: u64 = 2 + 0x4000 * 5;

/// A memory copy loop: x2 iterations of ldp/stp (post-index, 16 bytes)/subs/b.ne.
const COPY_LOOP: &[u32] = &[
    0xa8c11003, // 1: ldp x3, x4, [x0], #16
    0xa8811023, // stp x3, x4, [x1], #16
    0xf1000442, // subs x2, x2, #1
    0x54ffffa1, // b.ne 1b
    0xd4200000, // brk #0
];
const COPY_BYTES: u64 = 16 << 10;

fn copy_state() -> CpuState {
    let mut st = CpuState::new();
    st.x[0] = DATA;
    st.x[1] = DATA + COPY_BYTES;
    st.x[2] = COPY_BYTES / 16;
    st
}

/// Run `code` from `state` to its BRK on `cpu` (reused, so translated code stays cached).
fn run_loop(cpu: &mut Cpu, mem: &mut FlatMem, state: &CpuState) -> Stop {
    cpu.state = state.clone();
    cpu.state.pc = CODE;
    cpu.run(mem)
}

fn execute(c: &mut Criterion) {
    let mut g = c.benchmark_group("execute");
    g.sample_size(20);
    let loops: [(&str, &[u32], CpuState, u64); 2] = [
        ("int_loop", INT_LOOP, CpuState::new(), INT_LOOP_INSNS),
        ("copy_loop", COPY_LOOP, copy_state(), 4 * COPY_BYTES / 16),
    ];
    for (name, code, state, insns) in loops {
        for engine in [EngineKind::Interp, EngineKind::Tiered] {
            let mut mem = FlatMem::new(CODE, 128 << 10);
            mem.load_words(CODE, code);
            let mut cpu = Cpu::with_engine(model::CORTEX_A72, engine);
            let stop = run_loop(&mut cpu, &mut mem, &state);
            if stop != Stop::Brk(0) {
                eprintln!("execute/{name}/{engine:?}: skipped, the loop stops with {stop:?}");
                continue;
            }
            g.throughput(Throughput::Elements(insns));
            g.bench_with_input(
                BenchmarkId::new(name, format!("{engine:?}")),
                &state,
                |b, st| b.iter(|| run_loop(&mut cpu, &mut mem, st)),
            );
        }
    }
    g.finish();
}

/// Cranelift compile time per block: a typical 5-instruction block (loads, arithmetic,
/// compare and branch) and a 32-instruction straight-line block from the mix.
fn jit_compile(c: &mut Criterion) {
    let small = [
        0xf940_0420u32,
        0x8b02_0020,
        0xf100_041f,
        0xb900_0062,
        0x54ff_ff61,
    ];
    let big: Vec<u32> = MIX.iter().copied().cycle().take(32).collect();
    let interrupt = std::sync::atomic::AtomicBool::new(false);
    let mut jit = armboard_cpu::jit::Jit::new(&interrupt).expect("cranelift supports this host");
    let mut g = c.benchmark_group("jit_compile");
    for (name, words) in [("block5", small.to_vec()), ("mix32", big)] {
        let mut mem = FlatMem::new(CODE, 64 << 10);
        mem.load_words(CODE, &words);
        let block = translate_block(&mut mem, CODE);
        let fast = armboard_cpu::Mem::fast_path(&mem);
        g.bench_function(name, |b| {
            b.iter(|| {
                if jit.wants_flush() {
                    jit.flush();
                }
                black_box(jit.compile(&block, fast, armboard_cpu::jit::LinkPolicy::Any))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode_mix, translate, execute, jit_compile);
criterion_main!(benches);
