//! Flattened device trees (the Devicetree Specification, chapter 5): an in-memory tree that
//! is parsed from a DTB, built or changed, and serialized again.
//!
//! ```text
//! header (40 bytes, big-endian u32s)   magic d00dfeed, totalsize, off_dt_struct,
//!                                      off_dt_strings, off_mem_rsvmap, version,
//!                                      last_comp_version, boot_cpuid_phys,
//!                                      size_dt_strings, size_dt_struct
//! memory reservation block             (u64 address, u64 size) pairs, ending with (0, 0)
//! structure block                      BEGIN_NODE name | PROP len nameoff value |
//!                                      END_NODE | NOP ... END, 4-byte aligned tokens
//! strings block                        NUL-terminated property names
//! ```
//!
//! Parsing checks every offset and length against the blob: a malformed DTB is an
//! [`FdtError`], never a panic. [`Fdt::patch_for_boot`] does what a boot loader does to a
//! board's DTB: `/chosen` bootargs, initrd and stdout-path, and `/memory`.

use std::collections::HashMap;
use std::ops::Range;

/// First word of every DTB.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;
/// The version written; 16 and 17 are read.
const VERSION: u32 = 17;
const LAST_COMP_VERSION: u32 = 16;
/// Deeper trees are rejected (real ones are a handful of levels deep).
pub const MAX_DEPTH: usize = 64;

/// Why a DTB could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdtError {
    #[error("not a device tree blob: {0}")]
    NotFdt(String),
    #[error("malformed device tree at offset {offset:#x}: {why}")]
    Malformed { offset: usize, why: String },
    #[error("device tree version {0} is not supported (16 and 17 are)")]
    Version(u32),
    #[error("device tree too large to serialize ({0} bytes)")]
    TooLarge(usize),
    #[error("bad node name {0:?}")]
    BadName(String),
    #[error("{0}")]
    Patch(String),
}

/// A property: a name and its raw (big-endian) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prop {
    pub name: String,
    pub value: Vec<u8>,
}

/// A node: its unit name (`cpu@0`; the root's is empty), properties and children, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub props: Vec<Prop>,
    pub children: Vec<Node>,
}

/// Encodes u32 cells big-endian.
pub fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// Encodes u64 values as pairs of cells.
pub fn cells64(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// Encodes a string list (`"a\0b\0"`).
pub fn strings(v: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in v {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out
}

impl Node {
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            ..Node::default()
        }
    }

    /// The raw value of property `name`.
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_slice())
    }

    /// The value as one u32 cell, if it is exactly that.
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let v = self.prop(name)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    /// The value as big-endian u32 cells, if its length is a multiple of 4.
    pub fn prop_cells(&self, name: &str) -> Option<Vec<u32>> {
        let v = self.prop(name)?;
        (v.len() % 4 == 0).then(|| {
            v.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
    }

    /// The value as a string list (each NUL-terminated, valid UTF-8).
    pub fn prop_strs(&self, name: &str) -> Option<Vec<&str>> {
        let v = self.prop(name)?;
        let body = v.strip_suffix(&[0])?;
        body.split(|&b| b == 0)
            .map(|s| std::str::from_utf8(s).ok())
            .collect()
    }

    /// The value as one string.
    pub fn prop_str(&self, name: &str) -> Option<&str> {
        match self.prop_strs(name)?.as_slice() {
            [s] => Some(s),
            _ => None,
        }
    }

    /// Sets property `name` (replacing its value, or appending it).
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) -> &mut Node {
        let value = value.into();
        match self.props.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.props.push(Prop {
                name: name.to_string(),
                value,
            }),
        }
        self
    }

    pub fn set_empty(&mut self, name: &str) -> &mut Node {
        self.set(name, Vec::new())
    }

    pub fn set_u32(&mut self, name: &str, v: u32) -> &mut Node {
        self.set(name, cells(&[v]))
    }

    pub fn set_cells(&mut self, name: &str, v: &[u32]) -> &mut Node {
        self.set(name, cells(v))
    }

    pub fn set_u64s(&mut self, name: &str, v: &[u64]) -> &mut Node {
        self.set(name, cells64(v))
    }

    pub fn set_str(&mut self, name: &str, s: &str) -> &mut Node {
        self.set(name, strings(&[s]))
    }

    pub fn set_strs(&mut self, name: &str, v: &[&str]) -> &mut Node {
        self.set(name, strings(v))
    }

    /// Removes property `name`; true if it was there.
    pub fn remove_prop(&mut self, name: &str) -> bool {
        let before = self.props.len();
        self.props.retain(|p| p.name != name);
        self.props.len() != before
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// Appends `node` as the last child and returns it.
    pub fn add_child(&mut self, node: Node) -> &mut Node {
        self.children.push(node);
        let last = self.children.len() - 1;
        &mut self.children[last]
    }

    /// The child called `name`, added empty if missing.
    pub fn child_or_add(&mut self, name: &str) -> &mut Node {
        match self.children.iter().position(|c| c.name == name) {
            Some(i) => &mut self.children[i],
            None => self.add_child(Node::new(name)),
        }
    }

    /// Visits this node and its descendants depth-first with their paths.
    fn walk<'a>(&'a self, path: &str, f: &mut dyn FnMut(&str, &'a Node)) {
        f(if path.is_empty() { "/" } else { path }, self);
        for c in &self.children {
            c.walk(&format!("{path}/{}", c.name), f);
        }
    }
}

/// A device tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fdt {
    pub root: Node,
    /// The memory reservation block: (address, size).
    pub reserved: Vec<(u64, u64)>,
    pub boot_cpuid_phys: u32,
}

/// What [`Fdt::patch_for_boot`] writes.
#[derive(Clone, Debug, Default)]
pub struct BootParams<'a> {
    /// `/chosen` bootargs (left as they are when None).
    pub bootargs: Option<&'a str>,
    /// `/chosen` linux,initrd-start and -end; None removes them.
    pub initrd: Option<Range<u64>>,
    /// RAM as (base, size) regions: the tree's memory nodes are replaced by one
    /// `/memory@<base>` holding these (left as they are when empty).
    pub memory: &'a [(u64, u64)],
    /// `/chosen` stdout-path when the tree has none (when None: the `serial0` alias, else
    /// the first PL011's path).
    pub stdout_path: Option<&'a str>,
}

impl Fdt {
    /// An empty tree: a root node only.
    pub fn new() -> Fdt {
        Fdt::default()
    }

    /// The node at `path` (`/`, `/chosen`, `/cpus/cpu@0`).
    pub fn node(&self, path: &str) -> Option<&Node> {
        let mut n = &self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child(part)?;
        }
        Some(n)
    }

    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let mut n = &mut self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child_mut(part)?;
        }
        Some(n)
    }

    /// The path of the first node (depth-first) for which `pred` holds.
    pub fn find(&self, pred: impl Fn(&Node) -> bool) -> Option<String> {
        let mut found = None;
        self.root.walk("", &mut |p, n| {
            if found.is_none() && pred(n) {
                found = Some(p.to_string());
            }
        });
        found
    }

    /// The path of the first node whose `compatible` list has `compat`.
    pub fn find_compatible(&self, compat: &str) -> Option<String> {
        self.find(|n| {
            n.prop_strs("compatible")
                .is_some_and(|c| c.contains(&compat))
        })
    }

    /// The largest `phandle` in the tree (0 if none), so new ones can be allocated above.
    pub fn max_phandle(&self) -> u32 {
        let mut max = 0;
        self.root.walk("", &mut |_, n| {
            for p in ["phandle", "linux,phandle"] {
                if let Some(v) = n.prop_u32(p) {
                    max = max.max(v);
                }
            }
        });
        max
    }

    /// Parses a DTB. Bytes after `totalsize` are ignored.
    pub fn parse(blob: &[u8]) -> Result<Fdt, FdtError> {
        if blob.len() < HEADER_LEN {
            return Err(FdtError::NotFdt(format!(
                "{} bytes, shorter than the 40-byte header",
                blob.len()
            )));
        }
        let h = |i: usize| be32(blob, i * 4).unwrap_or(0);
        if h(0) != FDT_MAGIC {
            return Err(FdtError::NotFdt(format!(
                "magic is {:#010x}, not {FDT_MAGIC:#010x}",
                h(0)
            )));
        }
        let total = h(1) as usize;
        let (off_struct, off_strings, off_rsv) = (h(2) as usize, h(3) as usize, h(4) as usize);
        let (version, last_comp) = (h(5), h(6));
        if version < 16 || last_comp > VERSION {
            return Err(FdtError::Version(version));
        }
        if total > blob.len() || total < HEADER_LEN {
            return Err(FdtError::NotFdt(format!(
                "totalsize {total} but the blob is {} bytes",
                blob.len()
            )));
        }
        let blob = &blob[..total];
        let bad = |offset: usize, why: &str| FdtError::Malformed {
            offset,
            why: why.to_string(),
        };
        let size_strings = h(8) as usize;
        let size_struct = if version >= 17 {
            h(9) as usize
        } else {
            total.saturating_sub(off_struct)
        };
        let strings_blk = off_strings
            .checked_add(size_strings)
            .and_then(|e| blob.get(off_strings..e))
            .ok_or_else(|| bad(12, "strings block outside the blob"))?;
        let struct_blk = off_struct
            .checked_add(size_struct)
            .and_then(|e| blob.get(off_struct..e))
            .ok_or_else(|| bad(8, "structure block outside the blob"))?;
        if off_struct % 4 != 0 {
            return Err(bad(8, "structure block not 4-byte aligned"));
        }

        let mut reserved = Vec::new();
        let mut at = off_rsv;
        loop {
            let (Some(addr), Some(size)) = (be64(blob, at), be64(blob, at.saturating_add(8)))
            else {
                return Err(bad(at, "memory reservation block runs off the end"));
            };
            if addr == 0 && size == 0 {
                break;
            }
            reserved.push((addr, size));
            at += 16;
        }

        let root = parse_struct(struct_blk, strings_blk).map_err(|e| match e {
            FdtError::Malformed { offset, why } => FdtError::Malformed {
                offset: offset + off_struct,
                why,
            },
            e => e,
        })?;
        Ok(Fdt {
            root,
            reserved,
            boot_cpuid_phys: h(7),
        })
    }

    /// Serializes the tree (version 17).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FdtError> {
        let mut strings = StringTable::default();
        let mut st = Vec::new();
        write_node(&self.root, true, &mut st, &mut strings, 0)?;
        st.extend_from_slice(&FDT_END.to_be_bytes());

        let off_rsv = HEADER_LEN; // 8-byte aligned
        let rsv_len = (self.reserved.len() + 1) * 16;
        let off_struct = off_rsv + rsv_len;
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.bytes.len();
        let too_large = || FdtError::TooLarge(total);
        let u = |v: usize| u32::try_from(v).map_err(|_| too_large());
        let mut out = Vec::with_capacity(total);
        for v in [
            FDT_MAGIC,
            u(total)?,
            u(off_struct)?,
            u(off_strings)?,
            u(off_rsv)?,
            VERSION,
            LAST_COMP_VERSION,
            self.boot_cpuid_phys,
            u(strings.bytes.len())?,
            u(st.len())?,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for &(a, s) in self.reserved.iter().chain(std::iter::once(&(0, 0))) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&st);
        out.extend_from_slice(&strings.bytes);
        Ok(out)
    }

    /// The root's `#address-cells` and `#size-cells` (the spec's defaults 2 and 1 when absent).
    pub fn root_cells(&self) -> (u32, u32) {
        (
            self.root.prop_u32("#address-cells").unwrap_or(2),
            self.root.prop_u32("#size-cells").unwrap_or(1),
        )
    }

    /// Sets `/chosen` bootargs, initrd and (if absent) stdout-path, and replaces `/memory`,
    /// as a boot loader does with a board's DTB.
    pub fn patch_for_boot(&mut self, p: &BootParams) -> Result<(), FdtError> {
        let (acells, scells) = self.root_cells();
        let stdout = match p.stdout_path {
            Some(s) => Some(s.to_string()),
            None => self
                .node("/aliases")
                .and_then(|a| a.prop_str("serial0"))
                .map(|_| "serial0".to_string())
                .or_else(|| self.find_compatible("arm,pl011")),
        };
        // Encode everything first, so a value that does not fit changes nothing.
        let mut reg = Vec::new();
        for &(base, size) in p.memory {
            reg.extend(encode_cells(base, acells, "memory base")?);
            reg.extend(encode_cells(size, scells, "memory size")?);
        }
        let initrd = match &p.initrd {
            Some(r) => Some((
                encode_cells(r.start, acells, "initrd start")?,
                encode_cells(r.end, acells, "initrd end")?,
            )),
            None => None,
        };
        if let Some(&(base, _)) = p.memory.first() {
            self.root.children.retain(|c| {
                !(c.name == "memory"
                    || c.name.starts_with("memory@")
                    || c.prop_str("device_type") == Some("memory"))
            });
            let mut mem = Node::new(format!("memory@{base:x}"));
            mem.set_str("device_type", "memory").set("reg", reg);
            self.root.add_child(mem);
        }
        let chosen = self.root.child_or_add("chosen");
        if let Some(args) = p.bootargs {
            chosen.set_str("bootargs", args);
        }
        match initrd {
            Some((start, end)) => {
                chosen.set("linux,initrd-start", start);
                chosen.set("linux,initrd-end", end);
            }
            None => {
                chosen.remove_prop("linux,initrd-start");
                chosen.remove_prop("linux,initrd-end");
            }
        }
        if chosen.prop("stdout-path").is_none() {
            if let Some(s) = stdout {
                chosen.set_str("stdout-path", &s);
            }
        }
        Ok(())
    }
}

/// `v` as `n` big-endian cells (n is 1 or 2, as #address-cells and #size-cells are).
pub fn encode_cells(v: u64, n: u32, what: &str) -> Result<Vec<u8>, FdtError> {
    match n {
        1 => u32::try_from(v)
            .map(|c| cells(&[c]))
            .map_err(|_| FdtError::Patch(format!("{what} {v:#x} does not fit in one 32-bit cell"))),
        2 => Ok(cells64(&[v])),
        _ => Err(FdtError::Patch(format!(
            "{what}: {n} cells are not supported (1 or 2 are)"
        ))),
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at.checked_add(4)?)?))
}

fn align4(v: usize) -> usize {
    v.saturating_add(3) & !3
}

/// A NUL-terminated string at `at` in `b`.
fn cstr(b: &[u8], at: usize) -> Option<&str> {
    let rest = b.get(at..)?;
    let len = rest.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&rest[..len]).ok()
}

/// Parses the structure block into the root node.
fn parse_struct(st: &[u8], strs: &[u8]) -> Result<Node, FdtError> {
    let bad = |offset: usize, why: &str| FdtError::Malformed {
        offset,
        why: why.to_string(),
    };
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut at = 0usize;
    loop {
        let tok = be32(st, at).ok_or_else(|| bad(at, "structure block ends without FDT_END"))?;
        let tok_at = at;
        at += 4;
        match tok {
            FDT_BEGIN_NODE => {
                if root.is_some() {
                    return Err(bad(tok_at, "a second root node"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(tok_at, "nodes nested too deeply"));
                }
                let name = cstr(st, at).ok_or_else(|| bad(at, "unterminated node name"))?;
                at = align4(at + name.len() + 1);
                stack.push(Node::new(name));
            }
            FDT_END_NODE => {
                let n = stack
                    .pop()
                    .ok_or_else(|| bad(tok_at, "FDT_END_NODE without a node"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(n),
                    None => root = Some(n),
                }
            }
            FDT_PROP => {
                let len = be32(st, at).ok_or_else(|| bad(at, "truncated property"))? as usize;
                let nameoff =
                    be32(st, at + 4).ok_or_else(|| bad(at, "truncated property"))? as usize;
                at += 8;
                let value = at
                    .checked_add(len)
                    .and_then(|e| st.get(at..e))
                    .ok_or_else(|| bad(at, "property value runs off the structure block"))?;
                let name = cstr(strs, nameoff)
                    .ok_or_else(|| bad(tok_at, "property name offset outside the strings"))?;
                let node = stack
                    .last_mut()
                    .ok_or_else(|| bad(tok_at, "property outside any node"))?;
                node.props.push(Prop {
                    name: name.to_string(),
                    value: value.to_vec(),
                });
                at = align4(at + len);
            }
            FDT_NOP => {}
            FDT_END => {
                if !stack.is_empty() {
                    return Err(bad(tok_at, "FDT_END inside a node"));
                }
                return root.ok_or_else(|| bad(tok_at, "no root node"));
            }
            t => return Err(bad(tok_at, &format!("unknown token {t:#x}"))),
        }
    }
}

#[derive(Default)]
struct StringTable {
    bytes: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl StringTable {
    fn offset(&mut self, s: &str) -> Result<u32, FdtError> {
        if let Some(&o) = self.offsets.get(s) {
            return Ok(o);
        }
        let o =
            u32::try_from(self.bytes.len()).map_err(|_| FdtError::TooLarge(self.bytes.len()))?;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.offsets.insert(s.to_string(), o);
        Ok(o)
    }
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

fn write_node(
    n: &Node,
    is_root: bool,
    out: &mut Vec<u8>,
    strings: &mut StringTable,
    depth: usize,
) -> Result<(), FdtError> {
    if depth >= MAX_DEPTH {
        return Err(FdtError::BadName(format!("{}: nested too deeply", n.name)));
    }
    if n.name.contains('\0') || n.name.contains('/') || (n.name.is_empty() != is_root) {
        return Err(FdtError::BadName(n.name.clone()));
    }
    out.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
    out.extend_from_slice(n.name.as_bytes());
    out.push(0);
    pad4(out);
    for p in &n.props {
        if p.name.is_empty() || p.name.contains('\0') {
            return Err(FdtError::BadName(format!(
                "{}: property {:?}",
                n.name, p.name
            )));
        }
        let len = u32::try_from(p.value.len()).map_err(|_| FdtError::TooLarge(p.value.len()))?;
        out.extend_from_slice(&FDT_PROP.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&strings.offset(&p.name)?.to_be_bytes());
        out.extend_from_slice(&p.value);
        pad4(out);
    }
    for c in &n.children {
        write_node(c, false, out, strings, depth + 1)?;
    }
    out.extend_from_slice(&FDT_END_NODE.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fdt {
        let mut f = Fdt::new();
        f.reserved.push((0x4800_0000, 0x1000));
        f.root
            .set_u32("#address-cells", 2)
            .set_u32("#size-cells", 2)
            .set_str("compatible", "linux,dummy-virt");
        let uart = f.root.add_child(Node::new("pl011@9000000"));
        uart.set_strs("compatible", &["arm,pl011", "arm,primecell"])
            .set_u64s("reg", &[0x900_0000, 0x1000])
            .set_u32("phandle", 0x8001);
        let mut cpus = Node::new("cpus");
        cpus.set_u32("#address-cells", 1).set_u32("#size-cells", 0);
        cpus.add_child(Node::new("cpu@0"))
            .set_u32("reg", 0)
            .set_empty("x");
        f.root.add_child(cpus);
        f.root
            .add_child(Node::new("memory@40000000"))
            .set_str("device_type", "memory")
            .set_u64s("reg", &[0x4000_0000, 0x800_0000]);
        f
    }

    #[test]
    fn write_then_parse_round_trips() {
        let f = sample();
        let blob = f.to_bytes().unwrap();
        assert_eq!(be32(&blob, 0), Some(FDT_MAGIC));
        assert_eq!(be32(&blob, 4), Some(blob.len() as u32));
        let g = Fdt::parse(&blob).unwrap();
        assert_eq!(g, f);
        assert_eq!(g.to_bytes().unwrap(), blob);
        assert_eq!(g.node("/cpus/cpu@0").unwrap().prop_u32("reg"), Some(0));
        assert_eq!(g.node("/cpus/cpu@0").unwrap().prop("x"), Some(&[][..]));
        assert_eq!(
            g.node("/pl011@9000000").unwrap().prop_strs("compatible"),
            Some(vec!["arm,pl011", "arm,primecell"])
        );
        assert_eq!(g.max_phandle(), 0x8001);
        assert_eq!(
            g.find_compatible("arm,pl011").as_deref(),
            Some("/pl011@9000000")
        );
        assert!(g.node("/nope").is_none());
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        let blob = sample().to_bytes().unwrap();
        // Every truncation, and every single-byte corruption, parses or errs; none panics.
        for n in 0..blob.len() {
            let mut cut = blob[..n].to_vec();
            if cut.len() >= 8 {
                cut[4..8].copy_from_slice(&(n as u32).to_be_bytes());
            }
            assert!(Fdt::parse(&cut).is_err(), "truncated to {n} parsed");
        }
        for i in 0..blob.len() {
            for x in [0x00, 0x01, 0x7f, 0xff] {
                let mut b = blob.clone();
                b[i] ^= x;
                let _ = Fdt::parse(&b);
            }
        }
        assert!(matches!(
            Fdt::parse(b"hello world, not a dtb at all!!!!!!!!!!!!!!!"),
            Err(FdtError::NotFdt(_))
        ));
        let mut old = blob.clone();
        old[20..24].copy_from_slice(&15u32.to_be_bytes());
        assert_eq!(Fdt::parse(&old), Err(FdtError::Version(15)));
    }

    #[test]
    fn patch_sets_chosen_and_replaces_memory() {
        let mut f = sample();
        f.patch_for_boot(&BootParams {
            bootargs: Some("console=ttyAMA0 rdinit=/init"),
            initrd: Some(0x4800_0000..0x4810_0000),
            memory: &[(0x4000_0000, 0x4000_0000)],
            stdout_path: None,
        })
        .unwrap();
        let g = Fdt::parse(&f.to_bytes().unwrap()).unwrap();
        let chosen = g.node("/chosen").unwrap();
        assert_eq!(
            chosen.prop_str("bootargs"),
            Some("console=ttyAMA0 rdinit=/init")
        );
        assert_eq!(chosen.prop_str("stdout-path"), Some("/pl011@9000000"));
        assert_eq!(
            chosen.prop("linux,initrd-start"),
            Some(&cells64(&[0x4800_0000])[..])
        );
        assert_eq!(
            chosen.prop("linux,initrd-end"),
            Some(&cells64(&[0x4810_0000])[..])
        );
        let mems: Vec<&Node> = g
            .root
            .children
            .iter()
            .filter(|c| c.name.starts_with("memory"))
            .collect();
        assert_eq!(mems.len(), 1);
        assert_eq!(
            mems[0].prop("reg"),
            Some(&cells64(&[0x4000_0000, 0x4000_0000])[..])
        );
        // No initrd: stale initrd properties go; stdout-path already set stays.
        f.patch_for_boot(&BootParams {
            stdout_path: Some("/other"),
            ..BootParams::default()
        })
        .unwrap();
        let chosen = f.node("/chosen").unwrap();
        assert!(chosen.prop("linux,initrd-start").is_none());
        assert_eq!(chosen.prop_str("stdout-path"), Some("/pl011@9000000"));
        assert_eq!(
            chosen.prop_str("bootargs"),
            Some("console=ttyAMA0 rdinit=/init")
        );
        // One-cell sizes: a 4 GiB region does not fit.
        f.root.set_u32("#size-cells", 1);
        let e = f.patch_for_boot(&BootParams {
            memory: &[(0x4000_0000, 1 << 32)],
            ..BootParams::default()
        });
        assert!(matches!(e, Err(FdtError::Patch(_))));
        assert!(
            f.node("/memory@40000000").is_some(),
            "a failed patch changes nothing"
        );
    }

    #[test]
    fn writer_rejects_bad_names() {
        let mut f = Fdt::new();
        f.root.add_child(Node::new("a/b"));
        assert!(matches!(f.to_bytes(), Err(FdtError::BadName(_))));
        let mut f = Fdt::new();
        f.root.add_child(Node::new(""));
        assert!(matches!(f.to_bytes(), Err(FdtError::BadName(_))));
    }
}
