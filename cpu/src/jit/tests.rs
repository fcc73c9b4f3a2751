//! Linking policy: what compiled blocks may enter without the dispatcher.

use super::*;
use crate::a64::translate_block;
use crate::mem::{Mem, MemFault};
use crate::testing::FlatMem;
use std::time::Instant;

const ADD_X0_1: u32 = 0x9100_0400;
const BR_X1: u32 = 0xd61f_0020;
const LDR_X2_X3: u32 = 0xf940_0062;
const BRK_0: u32 = 0xd420_0000;
const BASE: u64 = 0x10_0000;

/// `b` from `from` to `to`.
fn b(from: u64, to: u64) -> u32 {
    0x1400_0000 | ((to.wrapping_sub(from) >> 2) as u32 & 0x03ff_ffff)
}

/// Four pages of code:
/// - BASE:          add; b BASE+0x104       (same page)
/// - BASE+0x104:    add; brk
/// - BASE+0x200:    add; b BASE+0x1000      (next page)
/// - BASE+0x300:    add; br x1
/// - BASE+0x1000:   add; brk
fn code() -> FlatMem {
    let mut m = FlatMem::new(BASE, 0x4000);
    m.load_words(BASE, &[ADD_X0_1, b(BASE + 4, BASE + 0x104)]);
    m.load_words(BASE + 0x104, &[ADD_X0_1, BRK_0]);
    m.load_words(BASE + 0x200, &[ADD_X0_1, b(BASE + 0x204, BASE + 0x1000)]);
    m.load_words(BASE + 0x300, &[ADD_X0_1, BR_X1]);
    m.load_words(BASE + 0x1000, &[ADD_X0_1, BRK_0]);
    m
}

fn compile_at<M: Mem>(jit: &mut Jit, mem: &mut M, pc: u64, link: LinkPolicy) -> BlockFn {
    let block = translate_block(mem, pc);
    let fast = mem.fast_path();
    jit.compile(&block, fast, link).expect("block compiles")
}

/// Enter `code` with x1 = `x1`; returns (exit code, x0, pc, instructions retired).
fn enter<M: Mem>(jit: &Jit, code: BlockFn, mem: &mut M, x1: u64) -> (u32, u64, u64, u64) {
    let mut st = CpuState::new();
    st.x[1] = x1;
    let mut ctx = JitCtx {
        failed: 0,
        limit: u64::MAX,
        state: &mut st,
        mem: mem as &mut dyn Mem as *mut dyn Mem,
        scratch: [0; 2],
        error: None,
    };
    // SAFETY: `code` is from `jit`'s current generation; the context points at `st` and
    // `mem`, borrowed exclusively for the call.
    let r = unsafe { jit.enter(code, ctx.state, &mut ctx) };
    (r, st.x[0], st.pc, st.retired)
}

const SYSTEM: LinkPolicy = LinkPolicy::SamePage { tag: 7 };

#[test]
fn policy_allows_links_only_within_the_first_instructions_page() {
    assert!(LinkPolicy::Any.may_link(0x1ffc, 0x9000));
    assert!(SYSTEM.may_link(0x1000, 0x1ffc));
    assert!(!SYSTEM.may_link(0x1ffc, 0x2000));
    assert!(!SYSTEM.may_link(0x2000, 0x1ffc));
    assert!(LinkPolicy::Any.indirect_table() && !SYSTEM.indirect_table());
}

#[test]
fn system_exit_chains_to_a_compiled_block_in_the_same_page() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    compile_at(&mut jit, &mut mem, BASE + 0x104, SYSTEM);
    let a = compile_at(&mut jit, &mut mem, BASE, SYSTEM);
    assert_eq!(enter(&jit, a, &mut mem, 0), (EXIT_BRK, 2, BASE + 0x108, 4));
}

#[test]
fn system_exit_is_linked_when_its_same_page_target_is_compiled_later() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    let a = compile_at(&mut jit, &mut mem, BASE, SYSTEM);
    assert_eq!(
        enter(&jit, a, &mut mem, 0),
        (EXIT_CONTINUE, 1, BASE + 0x104, 2)
    );
    compile_at(&mut jit, &mut mem, BASE + 0x104, SYSTEM);
    assert_eq!(enter(&jit, a, &mut mem, 0), (EXIT_BRK, 2, BASE + 0x108, 4));
}

#[test]
fn system_exit_to_another_page_returns_to_the_dispatcher() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    compile_at(&mut jit, &mut mem, BASE + 0x1000, SYSTEM);
    let a = compile_at(&mut jit, &mut mem, BASE + 0x200, SYSTEM);
    assert_eq!(
        enter(&jit, a, &mut mem, 0),
        (EXIT_CONTINUE, 1, BASE + 0x1000, 2)
    );
    // User mode chains the same exit.
    let mut jit = Jit::new(&intr).unwrap();
    compile_at(&mut jit, &mut mem, BASE + 0x1000, LinkPolicy::Any);
    let a = compile_at(&mut jit, &mut mem, BASE + 0x200, LinkPolicy::Any);
    assert_eq!(enter(&jit, a, &mut mem, 0), (EXIT_BRK, 2, BASE + 0x1004, 4));
}

#[test]
fn system_exit_does_not_link_to_a_block_of_another_translation() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    compile_at(
        &mut jit,
        &mut mem,
        BASE + 0x104,
        LinkPolicy::SamePage { tag: 1 },
    );
    let a = compile_at(&mut jit, &mut mem, BASE, LinkPolicy::SamePage { tag: 2 });
    assert_eq!(
        enter(&jit, a, &mut mem, 0),
        (EXIT_CONTINUE, 1, BASE + 0x104, 2)
    );
}

#[test]
fn system_indirect_branch_returns_to_the_dispatcher() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    compile_at(&mut jit, &mut mem, BASE + 0x104, SYSTEM);
    let a = compile_at(&mut jit, &mut mem, BASE + 0x300, SYSTEM);
    let r = enter(&jit, a, &mut mem, BASE + 0x104);
    assert_eq!(r, (EXIT_CONTINUE, 1, BASE + 0x104, 2));
    // User mode finds the target in the indirect-branch table.
    let mut jit = Jit::new(&intr).unwrap();
    compile_at(&mut jit, &mut mem, BASE + 0x104, LinkPolicy::Any);
    let a = compile_at(&mut jit, &mut mem, BASE + 0x300, LinkPolicy::Any);
    let r = enter(&jit, a, &mut mem, BASE + 0x104);
    assert_eq!(r, (EXIT_BRK, 2, BASE + 0x108, 4));
}

/// A memory without a fast window (as system mode's is) that counts its data accesses.
struct Counting {
    inner: FlatMem,
    reads: u32,
}

impl Mem for Counting {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, MemFault> {
        self.reads += 1;
        self.inner.read(addr, size)
    }
    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemFault> {
        self.inner.write(addr, size, value)
    }
    fn fetch(&mut self, addr: u64) -> Result<u32, MemFault> {
        self.inner.fetch(addr)
    }
    fn cmpxchg(&mut self, addr: u64, size: u8, old: u64, new: u64) -> Result<bool, MemFault> {
        self.inner.cmpxchg(addr, size, old, new)
    }
    fn cmpxchg128(&mut self, addr: u64, old: u128, new: u128) -> Result<bool, MemFault> {
        self.inner.cmpxchg128(addr, old, new)
    }
}

#[test]
fn loads_without_a_fast_window_call_the_memory() {
    let mut inner = FlatMem::new(BASE, 0x4000);
    inner.load_words(BASE, &[LDR_X2_X3, BRK_0]);
    let mut mem = Counting { inner, reads: 0 };
    assert!(mem.fast_path().is_none());
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    let a = compile_at(&mut jit, &mut mem, BASE, SYSTEM);
    // x3 = 0: the load faults through the memory's read.
    let (r, ..) = enter(&jit, a, &mut mem, 0);
    assert_eq!((r, mem.reads), (EXIT_FAULT, 1));
}

/// Poll `jit` until `n` answers came back (10 s at most); returns them by key.
fn answers(jit: &mut Jit, n: usize) -> HashMap<u64, Option<BlockFn>> {
    let mut got = HashMap::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while got.len() < n && Instant::now() < deadline {
        jit.poll(|k, c| {
            got.insert(k, c);
        });
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    got
}

#[test]
fn worker_compiles_in_the_background_and_links_when_polled() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::with_worker(&intr).unwrap();
    let fast = mem.fast_path();
    let target = translate_block(&mut mem, BASE + 0x104);
    let source = translate_block(&mut mem, BASE);
    assert_eq!(jit.request(11, &[&target], fast, SYSTEM), Request::Queued);
    assert_eq!(jit.request(10, &[&source], fast, SYSTEM), Request::Queued);
    assert!(jit.busy());
    let got = answers(&mut jit, 2);
    assert!(!jit.busy());
    let a = got[&10].expect("compiled");
    assert!(got[&11].is_some());
    // Linked at the dispatcher: the source chains into its same-page target.
    assert_eq!(enter(&jit, a, &mut mem, 0), (EXIT_BRK, 2, BASE + 0x108, 4));
    assert_eq!((jit.stats.blocks, jit.stats.queued), (2, 2));
}

#[test]
fn code_finished_for_a_flushed_generation_is_thrown_away() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::with_worker(&intr).unwrap();
    let b = translate_block(&mut mem, BASE);
    assert_eq!(
        jit.request(1, &[&b], mem.fast_path(), LinkPolicy::Any),
        Request::Queued
    );
    jit.flush();
    assert!(!jit.busy());
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while jit.stats.discarded == 0 && Instant::now() < deadline {
        jit.poll(|k, _| panic!("block {k} installed after the flush"));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!((jit.stats.discarded, jit.stats.blocks), (1, 0));
}

#[test]
fn inline_jit_answers_requests_at_once() {
    let mut mem = code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    let b = translate_block(&mut mem, BASE + 0x104);
    let r = jit.request(1, &[&b], mem.fast_path(), LinkPolicy::Any);
    let Request::Ready(Some(code)) = r else {
        panic!("not compiled at once: {r:?}")
    };
    assert!(!jit.busy());
    assert_eq!(
        enter(&jit, code, &mut mem, 0),
        (EXIT_BRK, 1, BASE + 0x108, 2)
    );
}

/// Flags computed lazily (conditions read from the operands, NZCV packed only when stored)
/// match the interpreter: every condition after every flag-setting form, at both widths, on
/// operands at the carry/overflow edges, read by CSEL, CSINC and B.cond, with and without a
/// store (whose slow path must see the packed flags) between the setter and the readers.
#[test]
fn lazy_flags_match_the_interpreter_for_every_condition() {
    use crate::testing::{run_with, DATA};
    let setters = [
        0xeb01_0002u32, // subs x2, x0, x1
        0x6b01_0002,    // subs w2, w0, w1
        0xab01_0002,    // adds x2, x0, x1
        0x2b01_0002,    // adds w2, w0, w1
        0xea01_0002,    // ands x2, x0, x1
        0x6a01_0002,    // ands w2, w0, w1
        0xf100_041f,    // cmp x0, #1
        0x7100_041f,    // cmp w0, #1
        0xb100_041f,    // cmn x0, #1
        0xba01_0002,    // adcs x2, x0, x1
        0x7a01_0002,    // sbcs w2, w0, w1
        0x7201_001f,    // tst w0, #0x80000000
    ];
    let edges = [
        (0u64, 0u64),
        (1, 2),
        (2, 1),
        (5, 5),
        (i64::MIN as u64, 1),
        (i64::MAX as u64, u64::MAX),
        (0xdead_0000_7fff_ffff, 1),
        (0x8000_0000, 0xffff_ffff_8000_0000),
        (u64::MAX, 1),
        (u64::MAX, u64::MAX),
    ];
    const STR_X2_X5: u32 = 0xf900_00a2;
    for &op in &setters {
        for cond in 0..16u32 {
            for store in [false, true] {
                let mut words = vec![op];
                if store {
                    words.push(STR_X2_X5);
                }
                words.extend([
                    0x9a81_0004 | cond << 12, // csel x4, x0, x1, cond
                    0x9a9f_07e3 | cond << 12, // csinc x3, xzr, xzr, cond
                    0x5400_0040 | cond,       // b.cond .+8
                    0xd420_0000,              // brk #0
                ]);
                for &(a, b) in &edges {
                    for c in [0u32, 0x2000_0000] {
                        let mut st = CpuState::new();
                        st.x[0] = a;
                        st.x[1] = b;
                        st.x[5] = DATA;
                        st.nzcv = c;
                        run_with(&words, st, |_| {});
                    }
                }
            }
        }
    }
}

/// `b.eq` from `from` to `to`.
fn b_eq(from: u64, to: u64) -> u32 {
    0x5400_0000 | (((to.wrapping_sub(from) >> 2) as u32 & 0x7_ffff) << 5)
}

/// A counted loop of two blocks and its exit, compiled as one region:
/// - BASE:        add x0, x0, #1; cmp x0, #10; b.eq BASE+0x200
/// - BASE+0xc:    add x2, x2, #3; b BASE
/// - BASE+0x200:  brk #0
fn region_code() -> (FlatMem, [Block; 3]) {
    const CMP_X0_10: u32 = 0xf100_281f;
    const ADD_X2_3: u32 = 0x9100_0c42;
    let mut m = FlatMem::new(BASE, 0x4000);
    m.load_words(
        BASE,
        &[
            ADD_X0_1,
            CMP_X0_10,
            b_eq(BASE + 8, BASE + 0x200),
            ADD_X2_3,
            b(BASE + 0x10, BASE),
        ],
    );
    m.load_words(BASE + 0x200, &[BRK_0]);
    let blocks = [BASE, BASE + 0xc, BASE + 0x200].map(|pc| translate_block(&mut m, pc));
    (m, blocks)
}

#[test]
fn a_region_runs_its_loop_inside_one_function() {
    for link in [LinkPolicy::Any, SYSTEM] {
        let (mut mem, [h, n, e]) = region_code();
        let intr = AtomicBool::new(false);
        let mut jit = Jit::new(&intr).unwrap();
        let fast = mem.fast_path();
        let code = jit.compile_region(&[&h, &n, &e], fast, link).unwrap();
        // Ten passes through the head, nine through the body, then the exit block: nothing
        // else is compiled, so every branch stayed inside the region.
        assert_eq!(
            enter(&jit, code, &mut mem, 0),
            (EXIT_BRK, 10, BASE + 0x200, 10 * 3 + 9 * 2 + 1)
        );
        assert_eq!(jit.stats.blocks, 1);
        // An interrupt stops it at the back-edge, at the head's pc.
        intr.store(true, Ordering::Relaxed);
        assert_eq!(enter(&jit, code, &mut mem, 0), (EXIT_CONTINUE, 1, BASE, 5));
    }
}

#[test]
fn a_region_leaves_through_exit_slots_to_blocks_outside_it() {
    let (mut mem, [h, n, e]) = region_code();
    let intr = AtomicBool::new(false);
    let mut jit = Jit::new(&intr).unwrap();
    let fast = mem.fast_path();
    // Without its exit block the region returns at BASE+0x200, until that is compiled.
    let code = jit
        .compile_region(&[&h, &n], fast, LinkPolicy::Any)
        .unwrap();
    assert_eq!(
        enter(&jit, code, &mut mem, 0),
        (EXIT_CONTINUE, 10, BASE + 0x200, 48)
    );
    jit.compile(&e, fast, LinkPolicy::Any).unwrap();
    assert_eq!(
        enter(&jit, code, &mut mem, 0),
        (EXIT_BRK, 10, BASE + 0x200, 49)
    );
}
