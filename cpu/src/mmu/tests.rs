//! Translation tables built in guest RAM, checked through [`SysMem`].

use super::walk::{desc, tcr};
use super::*;
use crate::model::CORTEX_A72;
use crate::sys::{sctlr, SysRegs};
use armboard_bus::{Bus, Device, Ram};
use std::sync::Mutex;

const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 16 << 20;
/// Page tables are allocated from here up.
const TABLES: u64 = 0x40c0_0000;
const DEV: u64 = 0x0900_0000;

/// Normal memory, accessed, inner shareable, EL1 read/write, global.
const KERNEL: u64 = desc::AF | (3 << 8);
/// As KERNEL, and EL0 read/write, not global.
const USER: u64 = KERNEL | desc::AP_EL0 | desc::NG;

/// A device that logs its accesses: (cpu, offset, size, value written or None for a read).
type Log = Arc<Mutex<Vec<(usize, u64, u8, Option<u64>)>>>;
struct Recorder(Log);
impl Device for Recorder {
    fn read(&mut self, o: u64, s: u8) -> u64 {
        self.read_from(0, o, s)
    }
    fn write(&mut self, o: u64, s: u8, v: u64) {
        self.write_from(0, o, s, v)
    }
    fn read_from(&mut self, cpu: usize, o: u64, s: u8) -> u64 {
        self.0.lock().unwrap().push((cpu, o, s, None));
        0xd0d0_0000 + o
    }
    fn write_from(&mut self, cpu: usize, o: u64, s: u8, v: u64) {
        self.0.lock().unwrap().push((cpu, o, s, Some(v)));
    }
}

struct Machine {
    ram: Arc<Ram>,
    space: Arc<AddressSpace>,
    broadcast: Arc<TlbBroadcast>,
    log: Log,
    /// Next free table address.
    next: u64,
}

impl Machine {
    fn new() -> Self {
        let log: Log = Arc::default();
        let mut bus = Bus::new();
        bus.insert(DEV, 0x1000, Box::new(Recorder(log.clone())))
            .unwrap();
        let ram = Arc::new(Ram::new(RAM_BASE, RAM_SIZE).unwrap());
        let space = Arc::new(AddressSpace::new(vec![ram.clone()], bus).unwrap());
        Self {
            ram,
            space,
            broadcast: Arc::new(TlbBroadcast::new()),
            log,
            next: TABLES,
        }
    }

    fn mem(&self, cpu: usize) -> SysMem {
        SysMem::new(
            self.space.clone(),
            cpu,
            Arc::new(|_| 1234),
            self.broadcast.clone(),
        )
    }

    fn alloc(&mut self, bytes: u64) -> u64 {
        let a = self.next.next_multiple_of(bytes.max(8));
        self.next = a + bytes;
        assert!(self.next <= RAM_BASE + RAM_SIZE);
        a
    }

    fn peek(&self, pa: u64) -> u64 {
        self.ram.load(pa, 8).unwrap()
    }

    fn poke(&self, pa: u64, v: u64) {
        self.ram.store(pa, 8, v).unwrap()
    }
}

/// The shape of one half's tables.
#[derive(Clone, Copy)]
struct Shape {
    grain: u32,
    inputsize: u32,
}

impl Shape {
    const K4_48: Shape = Shape {
        grain: 12,
        inputsize: 48,
    };
    fn stride(self) -> u32 {
        self.grain - 3
    }
    fn levels(self) -> u32 {
        (self.inputsize - self.grain).div_ceil(self.stride())
    }
    fn start(self) -> u32 {
        4 - self.levels()
    }
    fn shift(self, level: u32) -> u32 {
        self.grain + (3 - level) * self.stride()
    }
    fn bits(self, level: u32) -> u32 {
        if level == self.start() {
            self.inputsize - self.grain - (self.levels() - 1) * self.stride()
        } else {
            self.stride()
        }
    }
}

/// Page tables of one half rooted at `root`.
struct Tables {
    shape: Shape,
    root: u64,
}

impl Tables {
    fn new(m: &mut Machine, shape: Shape) -> Self {
        let bytes = 8u64 << shape.bits(shape.start());
        Tables {
            shape,
            root: m.alloc(bytes),
        }
    }

    /// Address of the descriptor for `va` at `level`, creating tables above it with
    /// `table_attrs`.
    fn slot(&self, m: &mut Machine, va: u64, level: u32, table_attrs: u64) -> u64 {
        let s = self.shape;
        let mut table = self.root;
        for l in s.start()..=level {
            let idx = (va >> s.shift(l)) & ((1 << s.bits(l)) - 1);
            let d = table + idx * 8;
            if l == level {
                return d;
            }
            let cur = m.peek(d);
            table = if cur & 3 == 3 {
                cur & ((1 << 48) - 1) & !((1u64 << s.grain) - 1)
            } else {
                let t = m.alloc(1 << s.grain);
                m.poke(d, t | 3 | table_attrs);
                t
            };
        }
        unreachable!()
    }

    /// Map `va` to `pa` with a block (level < 3) or page descriptor at `level`.
    fn map(&self, m: &mut Machine, va: u64, pa: u64, level: u32, attrs: u64) -> u64 {
        self.map_under(m, va, pa, level, attrs, 0)
    }

    fn map_under(
        &self,
        m: &mut Machine,
        va: u64,
        pa: u64,
        level: u32,
        attrs: u64,
        table_attrs: u64,
    ) -> u64 {
        let d = self.slot(m, va, level, table_attrs);
        let kind = if level == 3 { 3 } else { 1 };
        m.poke(d, pa | attrs | kind);
        d
    }
}

/// TCR for 4K granules and 48-bit VAs in both halves, 16-bit ASIDs in TTBR0, TBI0.
const TCR_4K: u64 = 16
    | (16 << tcr::T1SZ_SHIFT)
    | (2 << tcr::TG1_SHIFT)
    | (5 << tcr::IPS_SHIFT)
    | tcr::AS
    | tcr::TBI0;

fn state(tcr_el1: u64, ttbr0: u64, ttbr1: u64, el: u8) -> CpuState {
    let mut st = CpuState::new();
    st.sys = SysRegs::reset_el1(CORTEX_A72, 0x8000_0000);
    st.sys.sctlr_el1 |= sctlr::M;
    st.sys.tcr_el1 = tcr_el1;
    st.sys.ttbr0_el1 = ttbr0;
    st.sys.ttbr1_el1 = ttbr1;
    st.sys.el = el;
    st
}

fn fault(addr: u64, access: Access, kind: FaultKind, level: u8) -> MemFault {
    MemFault::at_level(addr, access, kind, level)
}

/// A machine with 4K/48-bit tables in both halves, and a SysMem synced to them at EL1.
fn four_k() -> (Machine, Tables, Tables, CpuState, SysMem) {
    let mut m = Machine::new();
    let lo = Tables::new(&mut m, Shape::K4_48);
    let hi = Tables::new(&mut m, Shape::K4_48);
    let st = state(TCR_4K, lo.root, hi.root, 1);
    let mut mem = m.mem(0);
    mem.sync(&st);
    (m, lo, hi, st, mem)
}

#[test]
fn mmu_off_is_identity_and_unbacked_pa_is_a_bus_fault() {
    let m = Machine::new();
    let mut mem = m.mem(0);
    mem.write(RAM_BASE + 0x10, 4, 0xaabb_ccdd).unwrap();
    assert_eq!(m.ram.load(RAM_BASE + 0x10, 4).unwrap(), 0xaabb_ccdd);
    assert_eq!(mem.read(RAM_BASE + 0x10, 2), Ok(0xccdd));
    assert_eq!(
        mem.read(0x8000_0000, 4),
        Err(MemFault::new(0x8000_0000, Access::Read, FaultKind::Bus))
    );
    assert_eq!(mem.counter(0), 1234);
}

#[test]
fn four_k_pages_and_blocks_translate_in_both_halves() {
    let (mut m, lo, hi, st, mut mem) = four_k();
    let uva = 0x0000_0040_1234_5000;
    lo.map(&mut m, uva, 0x4010_0000, 3, USER);
    let kva = 0xffff_0000_0020_0000;
    hi.map(&mut m, kva, 0x4020_0000, 2, KERNEL);
    let gva = 0xffff_0080_0000_0000;
    hi.map(&mut m, gva, 0x4000_0000, 1, KERNEL);

    mem.write(uva + 0x18, 8, 0x1111).unwrap();
    assert_eq!(m.peek(0x4010_0018), 0x1111);
    mem.write(kva + 0x1_2340, 8, 0x2222).unwrap();
    assert_eq!(m.peek(0x4021_2340), 0x2222);
    assert_eq!(mem.read(gva + 0x21_2340, 8), Ok(0x2222));
    assert_eq!(
        mem.translate(&st, gva + 0x3fff_fff8, Access::Read, false),
        Ok(0x7fff_fff8)
    );
    assert_eq!(
        mem.translate(&st, uva + 0x7, Access::Write, true),
        Ok(0x4010_0007)
    );
    assert_eq!(mem.translate_exec(kva + 0x40), Ok(0x4020_0040));
}

#[test]
fn descriptor_bits_51_to_48_are_not_output_address() {
    // Linux sets bit 51 (DBM, its "writable" marker) in every writable kernel page, and
    // v8.0 has no 52-bit PAs: the page must still map its 48-bit output address.
    let (mut m, _lo, hi, _st, mut mem) = four_k();
    let kva = 0xffff_0000_0030_0000;
    hi.map(&mut m, kva, 0x4030_0000, 3, KERNEL | (1 << 51));
    mem.write(kva + 8, 8, 0x5151).unwrap();
    assert_eq!(m.peek(0x4030_0008), 0x5151);
}

#[test]
fn sixty_four_k_granule_with_42_bit_vas() {
    let mut m = Machine::new();
    let shape = Shape {
        grain: 16,
        inputsize: 42,
    };
    assert_eq!(shape.start(), 2);
    let lo = Tables::new(&mut m, shape);
    let hi = Tables::new(&mut m, shape);
    // TG0 = 01 and TG1 = 11 both mean 64K.
    let t = 22 | (22 << tcr::T1SZ_SHIFT) | (1 << tcr::TG0_SHIFT) | (3 << tcr::TG1_SHIFT);
    let st = state(t | (5 << tcr::IPS_SHIFT), lo.root, hi.root, 1);
    let mut mem = m.mem(0);
    mem.sync(&st);
    let page = 0x12_3456_0000;
    lo.map(&mut m, page, 0x4040_0000, 3, KERNEL);
    // A 512 MiB block at level 2.
    let block = 0x2_0000_0000;
    lo.map(&mut m, block, 0x6000_0000, 2, KERNEL);
    let kpage = 0xffff_ffc0_0001_0000;
    hi.map(&mut m, kpage, 0x4050_0000, 3, KERNEL);

    mem.write(page + 0xfff8, 8, 0x6464).unwrap();
    assert_eq!(m.peek(0x4040_fff8), 0x6464);
    assert_eq!(
        mem.translate(&st, block + 0x1234_5678, Access::Read, false),
        Ok(0x7234_5678)
    );
    mem.write(kpage + 0x8000, 4, 7).unwrap();
    assert_eq!(m.peek(0x4050_8000), 7);
    // Above 42 bits is outside the range: a level-0 translation fault.
    assert_eq!(
        mem.read(0x400_0000_0000, 1),
        Err(fault(0x400_0000_0000, Access::Read, FaultKind::Unmapped, 0))
    );
}

#[test]
fn sixteen_k_granule_with_47_and_48_bit_vas() {
    let mut m = Machine::new();
    let s47 = Shape {
        grain: 14,
        inputsize: 47,
    };
    let s48 = Shape {
        grain: 14,
        inputsize: 48,
    };
    assert_eq!((s47.start(), s48.start(), s48.bits(0)), (1, 0, 1));
    let lo = Tables::new(&mut m, s47);
    let hi = Tables::new(&mut m, s48);
    // TG0 = 10 and TG1 = 01 both mean 16K.
    let t = 17 | (16 << tcr::T1SZ_SHIFT) | (2 << tcr::TG0_SHIFT) | (1 << tcr::TG1_SHIFT);
    let st = state(t | (5 << tcr::IPS_SHIFT), lo.root, hi.root, 1);
    let mut mem = m.mem(0);
    mem.sync(&st);
    let page = 0x7fff_1234_c000;
    lo.map(&mut m, page, 0x4060_4000, 3, KERNEL);
    // 32 MiB blocks at level 2.
    let block = 0x0000_1000_0200_0000;
    lo.map(&mut m, block, 0x4200_0000, 2, KERNEL);
    let kva = 0xffff_8000_0000_4000;
    hi.map(&mut m, kva, 0x4070_0000, 3, KERNEL);

    mem.write(page + 0x3ffc, 4, 0x1616).unwrap();
    assert_eq!(m.ram.load(0x4060_7ffc, 4).unwrap(), 0x1616);
    assert_eq!(
        mem.translate(&st, block + 0x1ab_cdef, Access::Read, false),
        Ok(0x43ab_cdef)
    );
    mem.write(kva + 8, 8, 5).unwrap();
    assert_eq!(m.peek(0x4070_0008), 5);
}

#[test]
fn each_invalid_level_faults_at_its_level() {
    let (mut m, lo, _hi, _st, mut mem) = four_k();
    let va = 0x0000_0012_3456_7000u64;
    let r = |mem: &mut SysMem| mem.read(va, 8);
    assert_eq!(
        r(&mut mem),
        Err(fault(va, Access::Read, FaultKind::Unmapped, 0))
    );
    for level in 1..=3 {
        // Create the tables above `level`, leave `level`'s descriptor invalid.
        lo.slot(&mut m, va, level, 0);
        assert_eq!(
            r(&mut mem),
            Err(fault(va, Access::Read, FaultKind::Unmapped, level as u8))
        );
    }
    // A level-3 descriptor with the block encoding is reserved.
    let d = lo.slot(&mut m, va, 3, 0);
    m.poke(d, 0x4010_0000 | KERNEL | 1);
    assert_eq!(
        r(&mut mem),
        Err(fault(va, Access::Read, FaultKind::Unmapped, 3))
    );
    // A block at level 0 is not allowed with 4K granules.
    let big = 0x0000_8000_0000_0000 - 0x1000;
    let d0 = lo.slot(&mut m, big, 0, 0);
    m.poke(d0, KERNEL | 1);
    assert_eq!(
        mem.read(big, 1),
        Err(fault(big, Access::Read, FaultKind::Unmapped, 0))
    );
    m.poke(d, 0x4010_0000 | KERNEL | 3);
    assert_eq!(r(&mut mem), Ok(0));
}

#[test]
fn range_epd_af_walk_abort_and_address_size_faults() {
    let (mut m, lo, hi, mut st, mut mem) = four_k();
    // Neither half: bits 63:48 neither all zeros nor all ones (and TBI1 is off).
    for va in [0x0001_0000_0000_0000u64, 0xfeff_0000_0000_0000] {
        assert_eq!(
            mem.read(va, 1),
            Err(fault(va, Access::Read, FaultKind::Unmapped, 0))
        );
    }
    let va = 0xffff_0000_0040_0000u64;
    hi.map(&mut m, va, 0x4040_0000, 3, KERNEL & !desc::AF);
    assert_eq!(
        mem.write(va, 8, 1),
        Err(fault(va, Access::Write, FaultKind::AccessFlag, 3))
    );
    let blk = 0xffff_0000_0060_0000u64;
    hi.map(&mut m, blk, 0x4060_0000, 2, KERNEL & !desc::AF);
    assert_eq!(
        mem.fetch(blk + 4),
        Err(fault(blk + 4, Access::Exec, FaultKind::AccessFlag, 2))
    );
    // A table pointing outside RAM: external abort on the walk at the level that read it.
    let ext = 0xffff_0000_0080_0000u64;
    let d = hi.slot(&mut m, ext, 2, 0);
    m.poke(d, 0x8000_0000 | 3);
    assert_eq!(
        mem.read(ext, 1),
        Err(fault(ext, Access::Read, FaultKind::Bus, 3))
    );
    // An output address beyond the 44-bit PA size (A72): address size, reported as
    // translation fault at that level.
    let far = 0xffff_0000_00a0_0000u64;
    hi.map(&mut m, far, 1 << 44, 3, KERNEL);
    assert_eq!(
        mem.read(far, 1),
        Err(fault(far, Access::Read, FaultKind::Unmapped, 3))
    );
    // EPD0: no walks in the lower half.
    let uva = 0x1000u64;
    lo.map(&mut m, uva, 0x4010_0000, 3, USER);
    assert_eq!(mem.read(uva, 1), Ok(0));
    st.sys.tcr_el1 |= tcr::EPD0;
    mem.sync(&st);
    assert_eq!(
        mem.read(uva, 1),
        Err(fault(uva, Access::Read, FaultKind::Unmapped, 0))
    );
}

#[test]
fn permissions_at_el0_and_el1() {
    let (mut m, lo, _hi, mut st, mut mem) = four_k();
    let base = 0x10_0000u64;
    // (name, attrs, (EL1 r w x), (EL0 r w x))
    let cases: [(&str, u64, [bool; 3], [bool; 3]); 7] = [
        ("AP=00", KERNEL, [true, true, true], [false, false, true]),
        (
            "AP=01: EL1 may not execute EL0-writable",
            KERNEL | desc::AP_EL0,
            [true, true, false],
            [true, true, true],
        ),
        (
            "AP=10",
            KERNEL | desc::AP_RO,
            [true, false, true],
            [false, false, true],
        ),
        (
            "AP=11",
            KERNEL | desc::AP_RO | desc::AP_EL0,
            [true, false, true],
            [true, false, true],
        ),
        (
            "UXN",
            KERNEL | desc::AP_RO | desc::AP_EL0 | desc::UXN,
            [true, false, true],
            [true, false, false],
        ),
        (
            "PXN",
            KERNEL | desc::AP_RO | desc::AP_EL0 | desc::PXN,
            [true, false, false],
            [true, false, true],
        ),
        (
            "user data",
            KERNEL | desc::AP_EL0 | desc::PXN | desc::UXN,
            [true, true, false],
            [true, true, false],
        ),
    ];
    for (k, (_, attrs, _, _)) in cases.iter().enumerate() {
        lo.map(&mut m, base + k as u64 * 0x1000, 0x4010_0000, 3, *attrs);
    }
    for el in [1u8, 0] {
        st.sys.el = el;
        mem.sync(&st);
        for (k, (name, _, el1, el0)) in cases.iter().enumerate() {
            let va = base + k as u64 * 0x1000;
            let want = if el == 1 { el1 } else { el0 };
            let got = [
                mem.read(va, 4).is_ok(),
                mem.write(va, 4, 0).is_ok(),
                mem.fetch(va).is_ok(),
            ];
            assert_eq!(&got, want, "{name} at EL{el}");
            if !want[1] {
                assert_eq!(
                    mem.write(va, 4, 0),
                    Err(fault(va, Access::Write, FaultKind::Permission, 3)),
                    "{name} at EL{el}"
                );
            }
            // AT agrees with the accesses.
            assert_eq!(
                mem.translate(&st, va, Access::Write, el == 0).is_ok(),
                want[1]
            );
        }
    }
}

#[test]
fn wxn_and_hierarchical_table_permissions() {
    let (mut m, lo, _hi, mut st, mut mem) = four_k();
    let rw = 0x20_0000u64;
    lo.map(&mut m, rw, 0x4010_0000, 3, KERNEL);
    let ro = rw + 0x1000;
    lo.map(&mut m, ro, 0x4010_0000, 3, KERNEL | desc::AP_RO);
    assert!(mem.fetch(rw).is_ok());
    st.sys.sctlr_el1 |= sctlr::WXN;
    mem.sync(&st);
    assert_eq!(
        mem.fetch(rw),
        Err(fault(rw, Access::Exec, FaultKind::Permission, 3))
    );
    assert!(mem.fetch(ro).is_ok());
    st.sys.sctlr_el1 &= !sctlr::WXN;
    mem.sync(&st);

    // Each table attribute, set in the level-2 table descriptor of its own 2 MiB region.
    let all = KERNEL | desc::AP_EL0;
    let cases = [
        (desc::AP_TABLE_RO, "APTable[1]"),
        (desc::AP_TABLE_NO_EL0, "APTable[0]"),
        (desc::PXN_TABLE, "PXNTable"),
        (desc::UXN_TABLE, "UXNTable"),
    ];
    for (k, &(bit, _)) in cases.iter().enumerate() {
        let va = 0x4000_0000 + ((k as u64) << 21);
        // Level-3 table under a level-2 table descriptor carrying the attribute.
        let d2 = lo.slot(&mut m, va, 2, 0);
        let t = m.alloc(0x1000);
        m.poke(d2, t | 3 | bit);
        lo.map(&mut m, va, 0x4010_0000, 3, all);
    }
    let va = |k: u64| 0x4000_0000 + (k << 21);
    // APTable[1]: no writes at any EL; EL1 may execute (no longer EL0-writable).
    assert_eq!(
        mem.write(va(0), 1, 0),
        Err(fault(va(0), Access::Write, FaultKind::Permission, 3))
    );
    assert!(mem.fetch(va(0)).is_ok());
    // APTable[0]: EL0 gets nothing, EL1 keeps read/write.
    assert!(mem.write(va(1), 1, 0).is_ok());
    // PXNTable: EL1 may not execute.
    assert!(mem.fetch(va(2)).is_err());
    st.sys.el = 0;
    mem.sync(&st);
    assert_eq!(
        mem.read(va(1), 1),
        Err(fault(va(1), Access::Read, FaultKind::Permission, 3))
    );
    assert!(mem.fetch(va(2)).is_ok());
    // UXNTable: EL0 may not execute.
    assert!(mem.fetch(va(3)).is_err());
    assert!(mem.write(va(3), 1, 0).is_ok());
}

#[test]
fn el_change_does_not_reuse_el1_permissions() {
    let (mut m, _lo, hi, mut st, mut mem) = four_k();
    let va = 0xffff_0000_0000_3000u64;
    hi.map(&mut m, va, 0x4010_0000, 3, KERNEL);
    assert!(mem.read(va, 8).is_ok());
    st.sys.el = 0;
    mem.sync(&st);
    assert_eq!(
        mem.read(va, 8),
        Err(fault(va, Access::Read, FaultKind::Permission, 3))
    );
    st.sys.el = 1;
    mem.sync(&st);
    assert!(mem.read(va, 8).is_ok());
}

#[test]
fn top_byte_is_ignored_with_tbi0_only() {
    let (mut m, lo, hi, mut st, mut mem) = four_k();
    let va = 0x0000_0040_0000_1000u64;
    lo.map(&mut m, va, 0x4010_0000, 3, USER);
    let tagged = va | 0x5a00_0000_0000_0000;
    mem.write(tagged + 8, 8, 99).unwrap();
    assert_eq!(m.peek(0x4010_0008), 99);
    assert_eq!(mem.read(va + 8, 8), Ok(99));
    assert_eq!(
        mem.translate(&st, tagged, Access::Read, true),
        Ok(0x4010_0000)
    );
    // TBI1 is off: a tagged upper-half address is out of range.
    let kva = 0xffff_0000_0000_1000u64;
    hi.map(&mut m, kva, 0x4010_0000, 3, KERNEL);
    let ktag = kva & 0x5aff_ffff_ffff_ffff;
    assert_eq!(
        mem.read(ktag, 8),
        Err(fault(ktag, Access::Read, FaultKind::Unmapped, 0))
    );
    // Without TBI0 the tag makes the address invalid, even though the entry is cached.
    st.sys.tcr_el1 &= !tcr::TBI0;
    mem.sync(&st);
    assert_eq!(
        mem.read(tagged, 8),
        Err(fault(tagged, Access::Read, FaultKind::Unmapped, 0))
    );
    assert_eq!(mem.read(va + 8, 8), Ok(99));
}

const ASID1: u64 = 1 << 48;
const ASID2: u64 = 2 << 48;

#[test]
fn asid_tagged_entries_survive_ttbr0_switches_and_tlbi_forms_remove_them() {
    let (mut m, a, hi, mut st, mut mem) = four_k();
    let b = Tables::new(&mut m, Shape::K4_48);
    let (uva, uvb) = (0x40_0000u64, 0x40_1000u64);
    let kva = 0xffff_0000_0000_5000u64;
    let da = a.map(&mut m, uva, 0x4010_0000, 3, USER);
    let db = a.map(&mut m, uvb, 0x4011_0000, 3, USER);
    b.map(&mut m, uva, 0x4020_0000, 3, USER);
    let dk = hi.map(&mut m, kva, 0x4030_0000, 3, KERNEL);
    for (pa, v) in [(0x4010_0000, 0xa), (0x4011_0000, 0xa2), (0x4020_0000, 0xb)] {
        m.poke(pa, v);
    }
    m.poke(0x4030_0000, 0xc);
    m.poke(0x4040_0000, 0xd);
    let retarget = |m: &Machine, d: u64, attrs: u64, pa: u64| m.poke(d, pa | attrs | 3);

    let switch = |mem: &mut SysMem, st: &mut CpuState, ttbr0: u64| {
        st.sys.ttbr0_el1 = ttbr0;
        mem.sync(st);
    };
    switch(&mut mem, &mut st, a.root | ASID1);
    assert_eq!(mem.read(uva, 8), Ok(0xa));
    assert_eq!(mem.read(uvb, 8), Ok(0xa2));
    assert_eq!(mem.read(kva, 8), Ok(0xc));
    // Retarget all three in memory without maintenance: cached translations stay in use.
    for (d, attrs) in [(da, USER), (db, USER), (dk, KERNEL)] {
        retarget(&m, d, attrs, 0x4040_0000);
    }
    assert_eq!(mem.read(uva, 8), Ok(0xa));
    switch(&mut mem, &mut st, b.root | ASID2);
    assert_eq!(mem.read(uva, 8), Ok(0xb), "other ASID: its own tables");
    assert_eq!(
        mem.read(kva, 8),
        Ok(0xc),
        "global entry shared by all ASIDs"
    );
    switch(&mut mem, &mut st, a.root | ASID1);
    assert_eq!(
        mem.read(uvb, 8),
        Ok(0xa2),
        "ASID 1's entry survived the switches"
    );

    // TLBI by VA in another ASID drops the global entry, not ASID 1's.
    mem.tlbi(&st, Tlbi::Va { va: kva, asid: 2 });
    mem.tlbi(&st, Tlbi::Va { va: uvb, asid: 2 });
    assert_eq!(mem.read(uvb, 8), Ok(0xa2));
    assert_eq!(mem.read(kva, 8), Ok(0xd));
    // TLBI ASIDE1 drops ASID 1's entries, not global ones.
    retarget(&m, dk, KERNEL, 0x4030_0000);
    mem.tlbi(&st, Tlbi::Asid(1));
    assert_eq!(mem.read(uvb, 8), Ok(0xd));
    assert_eq!(mem.read(kva, 8), Ok(0xd));
    retarget(&m, db, USER, 0x4011_0000);
    mem.tlbi(&st, Tlbi::Va { va: uvb, asid: 1 });
    assert_eq!(mem.read(uvb, 8), Ok(0xa2));
    mem.tlbi(&st, Tlbi::VaAllAsids { va: kva });
    assert_eq!(mem.read(kva, 8), Ok(0xc));
    retarget(&m, db, USER, 0x4040_0000);
    retarget(&m, dk, KERNEL, 0x4040_0000);
    mem.tlbi(&st, Tlbi::All);
    assert_eq!(mem.read(uvb, 8), Ok(0xd));
    assert_eq!(mem.read(kva, 8), Ok(0xd));
}

#[test]
fn tlbi_by_va_anywhere_in_a_block_removes_all_of_it() {
    let (mut m, _lo, hi, st, mut mem) = four_k();
    let blk = 0xffff_0000_0020_0000u64;
    let d = hi.map(&mut m, blk, 0x4020_0000, 2, KERNEL);
    m.poke(0x4020_0000, 1);
    m.poke(0x4040_0000, 2);
    assert_eq!(mem.read(blk, 8), Ok(1));
    m.poke(d, 0x4040_0000 | KERNEL | 1);
    assert_eq!(mem.read(blk, 8), Ok(1));
    mem.tlbi(
        &st,
        Tlbi::VaAllAsids {
            va: blk + 0x1f_f000,
        },
    );
    assert_eq!(mem.read(blk, 8), Ok(2));
}

#[test]
fn tlbi_on_one_cpu_flushes_the_others_before_their_next_access() {
    let (mut m, _lo, hi, st, mut cpu0) = four_k();
    let mut cpu1 = m.mem(1);
    cpu1.sync(&st);
    let va = 0xffff_0000_0000_7000u64;
    let d = hi.map(&mut m, va, 0x4010_0000, 3, KERNEL);
    m.poke(0x4020_0000, 0x22);
    assert_eq!(cpu0.read(va, 8), Ok(0));
    assert_eq!(cpu1.read(va, 8), Ok(0));
    m.poke(d, 0x4020_0000 | KERNEL | 3);
    cpu1.tlbi(&st, Tlbi::VaAllAsids { va });
    assert_eq!(cpu0.read(va, 8), Ok(0x22));
    assert_eq!(cpu1.read(va, 8), Ok(0x22));

    // More operations than the log holds: the lagging CPU flushes everything.
    let other = 0xffff_0000_0000_9000u64;
    let d2 = hi.map(&mut m, other, 0x4010_0000, 3, KERNEL);
    assert_eq!(cpu0.read(other, 8), Ok(0));
    m.poke(d2, 0x4020_0000 | KERNEL | 3);
    for k in 0..100u64 {
        cpu1.tlbi(
            &st,
            Tlbi::Va {
                va: k << 12,
                asid: 3,
            },
        );
    }
    assert_eq!(cpu0.read(other, 8), Ok(0x22));
}

#[test]
fn mmu_on_off_and_tcr_changes_drop_cached_translations() {
    let (mut m, lo, _hi, mut st, mut mem) = four_k();
    let va = 0x4010_0000u64;
    lo.map(&mut m, va, 0x4020_0000, 3, KERNEL);
    m.poke(0x4010_0000, 1);
    m.poke(0x4020_0000, 2);
    assert_eq!(mem.read(va, 8), Ok(2));
    st.sys.sctlr_el1 &= !sctlr::M;
    mem.sync(&st);
    assert_eq!(mem.read(va, 8), Ok(1));
    st.sys.sctlr_el1 |= sctlr::M;
    mem.sync(&st);
    assert_eq!(mem.read(va, 8), Ok(2));
    st.sys.tcr_el1 |= tcr::EPD0;
    mem.sync(&st);
    assert!(mem.read(va, 8).is_err());
}

#[test]
fn mmio_goes_to_the_device_and_unbacked_pas_fault() {
    let (mut m, _lo, hi, _st, mut mem) = four_k();
    let dva = 0xffff_0000_1000_0000u64;
    hi.map(&mut m, dva, DEV, 3, KERNEL | desc::PXN | desc::UXN);
    let nva = dva + 0x1000;
    hi.map(&mut m, nva, 0x2000_0000, 3, KERNEL);
    let mut mem1 = m.mem(3);
    mem1.sync(&_st);
    assert_eq!(mem.read(dva + 0x18, 4), Ok(0xd0d0_0018));
    mem1.write(dva + 0x20, 2, 0xbeef).unwrap();
    assert_eq!(
        *m.log.lock().unwrap(),
        vec![(0, 0x18, 4, None), (3, 0x20, 2, Some(0xbeef))]
    );
    assert_eq!(
        mem.cmpxchg(dva, 8, 0, 1),
        Err(MemFault::new(dva, Access::Write, FaultKind::Bus))
    );
    assert_eq!(
        mem.read(nva + 4, 4),
        Err(MemFault::new(nva + 4, Access::Read, FaultKind::Bus))
    );
    assert_eq!(
        mem.write(nva, 8, 1),
        Err(MemFault::new(nva, Access::Write, FaultKind::Bus))
    );
}

#[test]
fn page_crossing_accesses_split_and_a_fault_writes_nothing() {
    let (mut m, _lo, hi, _st, mut mem) = four_k();
    let va = 0xffff_0000_0100_0000u64;
    // Two virtually adjacent pages on physically distant frames, then an unmapped page.
    hi.map(&mut m, va, 0x4050_0000, 3, KERNEL);
    hi.map(&mut m, va + 0x1000, 0x4010_0000, 3, KERNEL);
    hi.map(&mut m, va + 0x2000, 0x4060_0000, 3, KERNEL | desc::AP_RO);
    hi.map(&mut m, va + 0x4000, 0x4070_0000, 3, KERNEL);
    mem.write(va + 0xffc, 8, 0x8877_6655_4433_2211).unwrap();
    assert_eq!(m.ram.load(0x4050_0ffc, 4).unwrap(), 0x4433_2211);
    assert_eq!(m.ram.load(0x4010_0000, 4).unwrap(), 0x8877_6655);
    assert_eq!(mem.read(va + 0xffc, 8), Ok(0x8877_6655_4433_2211));
    mem.write128(va + 0xff8, 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100)
        .unwrap();
    assert_eq!(
        mem.read128(va + 0xff8),
        Ok(0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100)
    );
    assert_eq!(m.peek(0x4010_0000), 0x0f0e_0d0c_0b0a_0908);

    // Into a read-only page: permission fault on the second page, first page untouched.
    let before = m.peek(0x4010_0ff8);
    assert_eq!(
        mem.write(va + 0x1ffc, 8, u64::MAX),
        Err(fault(va + 0x2000, Access::Write, FaultKind::Permission, 3))
    );
    assert_eq!(
        mem.write128(va + 0x1ff8, u128::MAX),
        Err(fault(va + 0x2000, Access::Write, FaultKind::Permission, 3))
    );
    assert_eq!(m.peek(0x4010_0ff8), before);
    // Into an unmapped page, and from one.
    assert_eq!(
        mem.write(va + 0x4ffe, 4, u64::MAX),
        Err(fault(va + 0x5000, Access::Write, FaultKind::Unmapped, 3))
    );
    assert_eq!(m.ram.load(0x4070_0ffe, 2).unwrap(), 0);
    assert_eq!(
        mem.write(va + 0x3ffe, 4, u64::MAX),
        Err(fault(va + 0x3ffe, Access::Write, FaultKind::Unmapped, 3))
    );
    assert_eq!(m.ram.load(0x4070_0000, 2).unwrap(), 0);
    // DC ZVA-style zeroing across pages: all pages checked first.
    assert_eq!(
        mem.zero(va + 0x1fc0, 0x80),
        Err(fault(va + 0x2000, Access::Write, FaultKind::Permission, 3))
    );
    assert_eq!(m.peek(0x4010_0ff8), before);
    mem.zero(va + 0xfc0, 0x80).unwrap();
    assert_eq!(m.peek(0x4010_0000), 0);
    assert_eq!(m.peek(0x4050_0ff8), 0);
}

#[test]
fn atomics_and_zeroing_in_ram() {
    let (mut m, _lo, hi, _st, mut mem) = four_k();
    let va = 0xffff_0000_0200_0000u64;
    hi.map(&mut m, va, 0x4050_0000, 3, KERNEL);
    m.poke(0x4050_0010, 5);
    assert_eq!(mem.cmpxchg(va + 0x10, 8, 4, 9), Ok(false));
    assert_eq!(mem.cmpxchg(va + 0x10, 8, 5, 9), Ok(true));
    assert_eq!(m.peek(0x4050_0010), 9);
    assert_eq!(mem.cmpxchg128(va + 0x10, 9, 3 << 64 | 1), Ok(true));
    assert_eq!(mem.read128(va + 0x10), Ok(3 << 64 | 1));
    assert_eq!(mem.cmpxchg128(va + 0x10, 9, 0), Ok(false));
    mem.zero(va, 64).unwrap();
    assert_eq!(mem.read128(va + 0x10), Ok(0));
}

/// A few instructions at EL1 with the MMU on, under both engines: loads and stores land at
/// the physical addresses the tables say, and a store to an unmapped address stops with the
/// translation fault at that instruction.
#[test]
fn cpu_runs_with_the_mmu_on_under_interp_and_jit() {
    use crate::engine::{Cpu, EngineKind, Stop};
    for kind in [EngineKind::Interp, EngineKind::Jit] {
        let (mut m, lo, hi, st, mut mem) = four_k();
        let code = 0xffff_0000_0010_0000u64;
        hi.map(&mut m, code, 0x4010_0000, 3, KERNEL | desc::AP_RO);
        let data = 0xffff_0000_0020_0000u64;
        hi.map(&mut m, data, 0x4030_0000, 3, KERNEL | desc::PXN | desc::UXN);
        let user = 0x0000_0000_0050_0000u64;
        lo.map(&mut m, user, 0x4050_0000, 3, USER | desc::PXN | desc::UXN);
        let words = [
            0xf900_0001u32, // str x1, [x0]
            0xf940_0402,    // ldr x2, [x0, #8]
            0x9100_0443,    // add x3, x2, #1
            0xf900_0803,    // str x3, [x0, #16]
            0xf940_00a4,    // ldr x4, [x5]
            0xf900_00c1,    // str x1, [x6]
            0xd420_0000,    // brk #0
        ];
        for (k, w) in words.iter().enumerate() {
            m.ram
                .store(0x4010_0000 + 4 * k as u64, 4, *w as u64)
                .unwrap();
        }
        m.poke(0x4030_0008, 41);
        m.poke(0x4050_0008, 77);

        let mut cpu = Cpu::with_engine(CORTEX_A72, kind);
        cpu.state = st.clone();
        cpu.state.pc = code;
        cpu.state.x[0] = data;
        cpu.state.x[1] = 0x1234_5678_9abc_def0;
        // A tagged user pointer (TBI0).
        cpu.state.x[5] = (user + 8) | 0x5a00_0000_0000_0000;
        let hole = 0xffff_0000_0030_0000u64;
        cpu.state.x[6] = hole;
        mem.sync(&cpu.state);
        let stop = cpu.run(&mut mem);
        assert_eq!(
            stop,
            Stop::Fault(fault(hole, Access::Write, FaultKind::Unmapped, 3)),
            "{kind:?}"
        );
        assert_eq!(cpu.state.pc, code + 20, "{kind:?}");
        assert_eq!(m.peek(0x4030_0000), 0x1234_5678_9abc_def0, "{kind:?}");
        assert_eq!(cpu.state.x[2], 41, "{kind:?}");
        assert_eq!(m.peek(0x4030_0010), 42, "{kind:?}");
        assert_eq!(cpu.state.x[4], 77, "{kind:?}");

        // Map the hole and resume at the faulting store.
        hi.map(&mut m, hole, 0x4060_0000, 3, KERNEL | desc::PXN | desc::UXN);
        assert_eq!(cpu.run(&mut mem), Stop::Brk(0), "{kind:?}");
        assert_eq!(m.peek(0x4060_0000), 0x1234_5678_9abc_def0, "{kind:?}");
    }
}

#[test]
fn vcpus_on_threads_share_the_broadcast() {
    fn send<T: Send>(_: &T) {}
    let (mut m, _lo, hi, st, mut cpu0) = four_k();
    send(&cpu0);
    let va = 0xffff_0000_0000_b000u64;
    let d = hi.map(&mut m, va, 0x4010_0000, 3, KERNEL);
    m.poke(0x4020_0000, 0x22);
    let mut cpu1 = m.mem(1);
    cpu1.sync(&st);
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 0..2000u64 {
                assert!(cpu0.read(va, 8).is_ok());
                cpu0.tlbi(
                    &st,
                    Tlbi::Va {
                        va: k << 12,
                        asid: 0,
                    },
                );
            }
        });
        s.spawn(|| {
            for k in 0..2000u64 {
                assert!(cpu1.read(va, 8).is_ok());
                cpu1.tlbi(&st, Tlbi::VaAllAsids { va: (k + 7) << 12 });
            }
        });
    });
    m.poke(d, 0x4020_0000 | KERNEL | 3);
    cpu1.tlbi(&st, Tlbi::VaAllAsids { va });
    assert_eq!(cpu0.read(va, 8), Ok(0x22));
}

#[test]
fn zeroing_at_the_top_of_the_address_space_does_not_overflow() {
    let (mut m, _lo, hi, _st, mut mem) = four_k();
    let top = 0xffff_ffff_ffff_f000u64;
    hi.map(&mut m, top, 0x4050_0000, 3, KERNEL);
    m.poke(0x4050_0fc0, 7);
    mem.zero(top + 0xfc0, 0x40).unwrap();
    assert_eq!(m.peek(0x4050_0fc0), 0);
}

/// EL0 and EL1 may read and execute, nobody writes; global.
const SHARED_CODE: u64 = desc::AF | (3 << 8) | desc::AP_EL0 | desc::AP_RO;

/// A CPU compiling every block (so loads and stores run in compiled code, probing the inline
/// TLB) with `words` at physical `pa`.
fn jit_cpu(m: &Machine, pa: u64, words: &[u32], st: &CpuState) -> crate::engine::Cpu {
    use crate::engine::{Cpu, EngineKind};
    for (k, w) in words.iter().enumerate() {
        m.ram.store(pa + 4 * k as u64, 4, *w as u64).unwrap();
    }
    let mut cpu = Cpu::with_engine(CORTEX_A72, EngineKind::Jit);
    cpu.state = st.clone();
    cpu
}

/// Run from `pc` with x9 = `n` loop iterations until the next stop.
fn run_loop(
    cpu: &mut crate::engine::Cpu,
    mem: &mut SysMem,
    pc: u64,
    n: u64,
) -> crate::engine::Stop {
    cpu.state.pc = pc;
    cpu.state.x[9] = n;
    mem.sync(&cpu.state);
    cpu.run(mem)
}

/// `ldr x2, [x0]; str x3, [x1]; ldr w4, [x0, #8]; str w4, [x1, #8]` looped x9 times.
const LOOP: [u32; 7] = [
    0xf940_0002, // ldr x2, [x0]
    0xf900_0023, // str x3, [x1]
    0xb940_0804, // ldr w4, [x0, #8]
    0xb900_0824, // str w4, [x1, #8]
    0xf100_0529, // subs x9, x9, #1
    0x54ff_ff61, // b.ne loop
    0xd420_0000, // brk #0
];

/// Compiled loads and stores hit the inline TLB (few accesses reach the memory) and still see
/// every change of translation: a PTE change with TLBI, an ASID switch, a return to the old
/// ASID, an EL change that removes permission, and a TLBI broadcast by another vCPU.
#[test]
fn compiled_accesses_follow_tlbi_asid_el_and_other_cpus() {
    use crate::engine::Stop;
    let (mut m, a, _hi, mut st, mut mem) = four_k();
    let b = Tables::new(&mut m, Shape::K4_48);
    let code = 0x10_0000u64;
    let (src, dst, kdst) = (0x20_0000u64, 0x30_0000u64, 0x40_0000u64);
    for t in [&a, &b] {
        t.map(&mut m, code, 0x4010_0000, 3, SHARED_CODE);
        t.map(&mut m, kdst, 0x4048_0000, 3, KERNEL | desc::PXN | desc::UXN);
    }
    let dsrc = a.map(&mut m, src, 0x4020_0000, 3, USER | desc::PXN | desc::UXN);
    a.map(&mut m, dst, 0x4030_0000, 3, USER | desc::PXN | desc::UXN);
    b.map(&mut m, src, 0x4021_0000, 3, USER | desc::PXN | desc::UXN);
    b.map(&mut m, dst, 0x4031_0000, 3, USER | desc::PXN | desc::UXN);
    for (pa, v) in [
        (0x4020_0000, 0x11),
        (0x4021_0000, 0x22),
        (0x4022_0000, 0x33),
    ] {
        m.poke(pa, v);
        m.poke(pa + 8, v << 8);
    }
    st.sys.ttbr0_el1 = a.root | ASID1;
    let mut cpu = jit_cpu(&m, 0x4010_0000, &LOOP, &st);
    cpu.state.x[0] = src;
    cpu.state.x[1] = dst;
    cpu.state.x[3] = 0xfeed;
    let expect = |m: &Machine, cpu: &crate::engine::Cpu, v: u64, dpa: u64, what: &str| {
        assert_eq!(cpu.state.x[2], v, "{what}: loaded");
        assert_eq!(m.peek(dpa), 0xfeed, "{what}: stored");
        assert_eq!(m.peek(dpa + 8), v << 8, "{what}: stored");
        m.poke(dpa, 0);
        m.poke(dpa + 8, 0);
    };

    let before = mem.slow_accesses();
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 100), Stop::Brk(0));
    expect(&m, &cpu, 0x11, 0x4030_0000, "first run");
    let slow = mem.slow_accesses() - before;
    assert!(slow <= 8, "{slow} of 400 accesses missed the inline TLB");

    // PTE change: visible once invalidated.
    m.poke(dsrc, 0x4022_0000 | USER | desc::PXN | desc::UXN | 3);
    mem.tlbi(&cpu.state, Tlbi::Va { va: src, asid: 1 });
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x33, 0x4030_0000, "after TLBI VA");

    // Another ASID maps the same VAs elsewhere; switching back finds ASID 1's pages again.
    cpu.state.sys.ttbr0_el1 = b.root | ASID2;
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x22, 0x4031_0000, "ASID 2");
    cpu.state.sys.ttbr0_el1 = a.root | ASID1;
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x33, 0x4030_0000, "back to ASID 1");

    // A kernel-only page: stored to at EL1, a permission fault at EL0 in the same code.
    cpu.state.x[1] = kdst;
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x33, 0x4048_0000, "kernel page at EL1");
    cpu.state.sys.el = 0;
    assert_eq!(
        run_loop(&mut cpu, &mut mem, code, 3),
        Stop::Fault(fault(kdst, Access::Write, FaultKind::Permission, 3))
    );
    assert_eq!(cpu.state.pc, code + 4);
    assert_eq!(m.peek(0x4048_0000), 0);
    cpu.state.x[1] = dst;
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x33, 0x4030_0000, "user pages at EL0");
    cpu.state.sys.el = 1;

    // Another vCPU retargets the page and broadcasts the TLBI.
    let mut cpu1 = m.mem(1);
    cpu1.sync(&cpu.state);
    m.poke(dsrc, 0x4020_0000 | USER | desc::PXN | desc::UXN | 3);
    cpu1.tlbi(&cpu.state, Tlbi::VaAllAsids { va: src });
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x11, 0x4030_0000, "after another CPU's TLBI");

    // MMU off: identity.
    cpu.state.sys.sctlr_el1 &= !sctlr::M;
    cpu.state.x[0] = 0x4021_0000;
    cpu.state.x[1] = 0x4031_0000;
    assert_eq!(run_loop(&mut cpu, &mut mem, 0x4010_0000, 3), Stop::Brk(0));
    expect(&m, &cpu, 0x22, 0x4031_0000, "MMU off");
}

/// Compiled accesses to a device page always reach the device, however often they repeat.
#[test]
fn compiled_accesses_to_mmio_never_take_the_fast_path() {
    use crate::engine::Stop;
    let (mut m, a, _hi, mut st, mut mem) = four_k();
    let code = 0x10_0000u64;
    let dev = 0x50_0000u64;
    a.map(&mut m, code, 0x4010_0000, 3, SHARED_CODE);
    a.map(&mut m, dev, DEV, 3, KERNEL | desc::PXN | desc::UXN);
    st.sys.ttbr0_el1 = a.root | ASID1;
    let mut cpu = jit_cpu(&m, 0x4010_0000, &LOOP, &st);
    cpu.state.x[0] = dev;
    cpu.state.x[1] = dev + 0x100;
    cpu.state.x[3] = 0xfeed;
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 10), Stop::Brk(0));
    let log = m.log.lock().unwrap();
    let mut want = Vec::new();
    for _ in 0..10 {
        want.extend([
            (0, 0, 8, None),
            (0, 0x100, 8, Some(0xfeed)),
            (0, 8, 4, None),
            (0, 0x108, 4, Some(0xd0d0_0008)),
        ]);
    }
    assert_eq!(*log, want);
    assert_eq!(cpu.state.x[2], 0xd0d0_0000);
}

/// Accesses that cross into the next page split across the two frames in compiled code too,
/// even after both pages are in the inline TLB.
#[test]
fn compiled_page_crossing_accesses_go_to_both_frames() {
    use crate::engine::Stop;
    let (mut m, a, _hi, mut st, mut mem) = four_k();
    let code = 0x10_0000u64;
    let v = 0x60_0000u64;
    a.map(&mut m, code, 0x4010_0000, 3, SHARED_CODE);
    let (f1, f2, f3) = (0x4050_0000u64, 0x4020_0000u64, 0x4070_0000u64);
    for (k, f) in [f1, f2, f3].into_iter().enumerate() {
        a.map(
            &mut m,
            v + 0x1000 * k as u64,
            f,
            3,
            KERNEL | desc::PXN | desc::UXN,
        );
    }
    st.sys.ttbr0_el1 = a.root | ASID1;
    let words = [
        0xf900_0003u32, // str x3, [x0]          (v + 0xff8, in the first page)
        0xf800_4003,    // stur x3, [x0, #4]     (crosses)
        0xf840_4002,    // ldur x2, [x0, #4]     (crosses)
        0x3dc0_0000,    // ldr q0, [x0]          (crosses)
        0x3c80_8020,    // stur q0, [x1, #8]     (crosses into the third page)
        0xf100_0529,    // subs x9, x9, #1
        0x54ff_ff41,    // b.ne loop
        0xd420_0000,    // brk #0
    ];
    let mut cpu = jit_cpu(&m, 0x4010_0000, &words, &st);
    cpu.state.x[0] = v + 0xff8;
    cpu.state.x[1] = v + 0x1ff0;
    cpu.state.x[3] = 0x8877_6655_4433_2211;
    assert_eq!(run_loop(&mut cpu, &mut mem, code, 5), Stop::Brk(0));
    assert_eq!(m.peek(f1 + 0xff8), 0x4433_2211_4433_2211);
    assert_eq!(m.ram.load(f2, 4).unwrap(), 0x8877_6655);
    assert_eq!(cpu.state.x[2], 0x8877_6655_4433_2211);
    assert_eq!(
        cpu.state.v[0],
        0x0000_0000_8877_6655_4433_2211_4433_2211u128
    );
    assert_eq!(m.peek(f2 + 0xff8), 0x4433_2211_4433_2211);
    assert_eq!(m.peek(f3), 0x8877_6655);
    // Nothing ran past the first frames' ends.
    assert_eq!(m.peek(f1 + 0x1000), 0);
    assert_eq!(m.peek(f2 + 0x1000), 0);
}
