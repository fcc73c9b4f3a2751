//! Device-tree overlays and parameters, as the Pi firmware applies `dtoverlay=` and
//! `dtparam=` to the base DTB (Raspberry Pi documentation, "Device Trees, overlays, and
//! parameters"; the kernel's Documentation/devicetree/overlay-notes.rst).
//!
//! An overlay (`.dtbo`, compiled with `dtc -@`) is a tree of fragments:
//!
//! ```text
//! fragment@0 { target = <&label>;  or  target-path = "/soc/x";
//!              __overlay__ { properties and nodes merged into the target } }
//! __fixups__        { label = "/fragment@0:target:0", ...; }  uses of base labels
//! __local_fixups__  mirrors the tree: prop = <byte offsets of the overlay's own phandles>
//! __symbols__       { label = "/fragment@0/__overlay__/node"; }
//! __overrides__     { param = <&node>,"prop[type][offset][=literal]", ...; }
//! ```
//!
//! Applying one: the overlay's phandles are moved above the base's largest, its uses of base
//! labels are resolved through the base's `__symbols__`, its parameters are applied, then each
//! fragment's `__overlay__` is merged into its target and its symbols are added. Work is done on
//! copies, so an overlay that fails changes nothing.
//!
//! Parameters (`__overrides__`): a sequence of (phandle, string) targets. The string is a
//! property name followed by nothing (a string), `.N` `;N` `:N` `#N` (an 8/16/32/64-bit
//! integer at byte offset N), `?` or `!` (a boolean, inverted), `[` (a byte string), and an
//! optional `=literal`; phandle 0 means fragment operations (`+N` `-N` `=N` `!N`). `status`
//! takes booleans as okay/disabled, `bootargs` is appended to, `name` renames the node and
//! `reg` renames its unit address. Lookup tables (`{...}`) are not supported: reported.

use crate::fdt::{Fdt, Node};

/// A parameter assignment: name and optional value (`dtparam=audio=on`, `dtparam=spi`).
pub type Param = (String, Option<String>);

/// Applies `overlay` to `base` with `params` for the overlay's own `__overrides__`. Returns
/// one note per parameter (applied or why not). On error `base` is unchanged.
pub fn apply_overlay(
    base: &mut Fdt,
    overlay: &Fdt,
    params: &[Param],
) -> Result<Vec<String>, String> {
    let mut b = base.clone();
    let mut ov = overlay.clone();
    let delta = b.max_phandle();
    renumber(&mut ov.root, delta)?;
    if let Some(lf) = ov.root.child("__local_fixups__").cloned() {
        local_fixups(&mut ov.root, &lf, delta, "")?;
    }
    resolve_fixups(&mut ov, &mut b)?;

    let mut notes = Vec::new();
    for (name, value) in params {
        let decl = ov
            .root
            .child("__overrides__")
            .and_then(|o| o.prop(name))
            .map(<[u8]>::to_vec);
        let shown = show_param(name, value.as_deref());
        match decl {
            None => notes.push(format!(
                "{shown}: the overlay has no such parameter, ignored"
            )),
            Some(d) => match apply_decl(&d, value.as_deref(), &mut ov, Some(&mut b)) {
                Ok(()) => notes.push(format!("{shown}: applied")),
                Err(e) => notes.push(format!("{shown}: not applied: {e}")),
            },
        }
    }

    let mut targets: Vec<(String, String)> = Vec::new(); // (fragment name, target path)
    for frag in &ov.root.children {
        let Some(body) = frag.child("__overlay__") else {
            continue;
        };
        let path = fragment_target(frag, &ov, &b)?;
        let node = b
            .node_mut(&path)
            .ok_or_else(|| format!("{}: target {path} is not in the base tree", frag.name))?;
        merge(node, body);
        targets.push((frag.name.clone(), path));
    }

    if let Some(syms) = ov.root.child("__symbols__") {
        let mut add = Vec::new();
        for p in &syms.props {
            let Some(s) = ov
                .root
                .child("__symbols__")
                .and_then(|n| n.prop_str(&p.name))
            else {
                continue;
            };
            for (frag, target) in &targets {
                let prefix = format!("/{frag}/__overlay__");
                if let Some(rest) = s.strip_prefix(&prefix) {
                    if rest.is_empty() || rest.starts_with('/') {
                        let t = if target == "/" { "" } else { target.as_str() };
                        add.push((p.name.clone(), format!("{t}{rest}")));
                    }
                }
            }
        }
        if let Some(bs) = b.root.child_mut("__symbols__") {
            for (label, path) in add {
                bs.set_str(&label, if path.is_empty() { "/" } else { &path });
            }
        }
    }
    *base = b;
    Ok(notes)
}

/// Applies base-DTB parameter `name` through the tree's `__overrides__`.
pub fn apply_dtparam(base: &mut Fdt, name: &str, value: Option<&str>) -> Result<(), String> {
    let ov = base
        .root
        .child("__overrides__")
        .ok_or("the base DTB has no __overrides__ node (not a Raspberry Pi firmware DTB)")?;
    let decl = ov
        .prop(name)
        .ok_or_else(|| format!("the base DTB's __overrides__ has no parameter {name:?}"))?
        .to_vec();
    let mut b = base.clone();
    apply_decl(&decl, value, &mut b, None)?;
    *base = b;
    Ok(())
}

/// `name=value` or `name`, for notes.
pub fn show_param(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{name}={v}"),
        None => name.to_string(),
    }
}

fn for_each_node(
    n: &mut Node,
    f: &mut dyn FnMut(&mut Node) -> Result<(), String>,
) -> Result<(), String> {
    f(n)?;
    for c in &mut n.children {
        for_each_node(c, f)?;
    }
    Ok(())
}

/// Moves every phandle of the overlay up by `delta`.
fn renumber(root: &mut Node, delta: u32) -> Result<(), String> {
    for_each_node(root, &mut |n| {
        for prop in ["phandle", "linux,phandle"] {
            if let Some(v) = n.prop_u32(prop) {
                if v != 0 && v != u32::MAX {
                    let nv = v
                        .checked_add(delta)
                        .filter(|&x| x != u32::MAX)
                        .ok_or("phandles overflow when renumbered above the base's")?;
                    n.set_u32(prop, nv);
                }
            }
        }
        Ok(())
    })
}

fn add_at(value: &mut [u8], off: usize, delta: u32, what: &str) -> Result<(), String> {
    let cell = off
        .checked_add(4)
        .and_then(|e| value.get_mut(off..e))
        .ok_or_else(|| format!("__local_fixups__: offset {off} is outside {what}"))?;
    let v = u32::from_be_bytes([cell[0], cell[1], cell[2], cell[3]]).wrapping_add(delta);
    cell.copy_from_slice(&v.to_be_bytes());
    Ok(())
}

/// Adds `delta` to the phandle uses `fix` (a `__local_fixups__` subtree) lists for `node`.
fn local_fixups(node: &mut Node, fix: &Node, delta: u32, path: &str) -> Result<(), String> {
    for fp in &fix.props {
        let Some(offsets) = fix.prop_cells(&fp.name) else {
            return Err(format!(
                "__local_fixups__{path}: {} is not a cell list",
                fp.name
            ));
        };
        let what = format!("{path}/{}", fp.name);
        let target = node
            .props
            .iter_mut()
            .find(|p| p.name == fp.name)
            .ok_or_else(|| format!("__local_fixups__ names missing property {what}"))?;
        for off in offsets {
            add_at(&mut target.value, off as usize, delta, &what)?;
        }
    }
    for fc in &fix.children {
        let child = node
            .child_mut(&fc.name)
            .ok_or_else(|| format!("__local_fixups__ names missing node {path}/{}", fc.name))?;
        local_fixups(child, fc, delta, &format!("{path}/{}", fc.name))?;
    }
    Ok(())
}

/// The phandle of the base node at `path`, given one if it has none.
fn phandle_of(b: &mut Fdt, path: &str) -> Option<u32> {
    if let Some(p) = b.node(path)?.prop_u32("phandle") {
        return Some(p);
    }
    let next = b.max_phandle().checked_add(1)?;
    b.node_mut(path)?.set_u32("phandle", next);
    Some(next)
}

/// Writes the base's phandles into the overlay's uses of base labels (`__fixups__`).
fn resolve_fixups(ov: &mut Fdt, b: &mut Fdt) -> Result<(), String> {
    let Some(fix) = ov.root.child("__fixups__").cloned() else {
        return Ok(());
    };
    if fix.props.is_empty() {
        return Ok(());
    }
    let labels: Vec<&str> = fix.props.iter().map(|p| p.name.as_str()).collect();
    if b.node("/__symbols__").is_none() {
        return Err(format!(
            "it refers to {} in the base DTB, which has no __symbols__ (compiled without -@), \
             so the reference cannot be resolved",
            labels.join(", ")
        ));
    }
    for p in &fix.props {
        let label = &p.name;
        let path = b
            .node("/__symbols__")
            .and_then(|s| s.prop_str(label))
            .map(str::to_string)
            .ok_or_else(|| format!("label {label} is not in the base DTB's __symbols__"))?;
        let ph = phandle_of(b, &path)
            .ok_or_else(|| format!("label {label} names {path}, which is not in the base DTB"))?;
        let uses = fix
            .prop_strs(label)
            .ok_or_else(|| format!("__fixups__ {label} is not a string list"))?;
        for u in uses {
            let mut it = u.rsplitn(3, ':');
            let (Some(off), Some(prop), Some(npath)) = (it.next(), it.next(), it.next()) else {
                return Err(format!("__fixups__ {label}: bad entry {u:?}"));
            };
            let off: usize = off
                .parse()
                .map_err(|_| format!("__fixups__ {label}: bad offset in {u:?}"))?;
            let node = ov
                .node_mut(npath)
                .ok_or_else(|| format!("__fixups__ {label}: no node {npath} in the overlay"))?;
            let v = node
                .props
                .iter_mut()
                .find(|p| p.name == prop)
                .ok_or_else(|| format!("__fixups__ {label}: no property {npath}:{prop}"))?;
            let cell = off
                .checked_add(4)
                .and_then(|e| v.value.get_mut(off..e))
                .ok_or_else(|| {
                    format!("__fixups__ {label}: offset {off} outside {npath}:{prop}")
                })?;
            cell.copy_from_slice(&ph.to_be_bytes());
        }
    }
    Ok(())
}

fn path_of_phandle(t: &Fdt, ph: u32) -> Option<String> {
    t.find(|n| n.prop_u32("phandle") == Some(ph) || n.prop_u32("linux,phandle") == Some(ph))
}

/// The base path a fragment applies to.
fn fragment_target(frag: &Node, ov: &Fdt, b: &Fdt) -> Result<String, String> {
    if let Some(ph) = frag.prop_u32("target") {
        if let Some(p) = path_of_phandle(b, ph) {
            return Ok(p);
        }
        if path_of_phandle(ov, ph).is_some() {
            return Err(format!(
                "{}: targets a node of the overlay itself (intra-overlay fragments are not \
                 supported)",
                frag.name
            ));
        }
        return Err(format!(
            "{}: target phandle {ph:#x} is not in the base DTB",
            frag.name
        ));
    }
    if let Some(tp) = frag.prop_str("target-path") {
        let path = if tp.starts_with('/') {
            tp.to_string()
        } else {
            b.node("/aliases")
                .and_then(|a| a.prop_str(tp))
                .map(str::to_string)
                .ok_or_else(|| format!("{}: target-path {tp:?} is not an alias", frag.name))?
        };
        if b.node(&path).is_none() {
            return Err(format!(
                "{}: target-path {path} is not in the base DTB",
                frag.name
            ));
        }
        return Ok(path);
    }
    Err(format!("{}: no target or target-path", frag.name))
}

/// Merges `src`'s properties and children into `dst`.
fn merge(dst: &mut Node, src: &Node) {
    for p in &src.props {
        if (p.name == "phandle" || p.name == "linux,phandle") && dst.prop(&p.name).is_some() {
            continue;
        }
        dst.set(&p.name, p.value.clone());
    }
    for c in &src.children {
        match dst.child_mut(&c.name) {
            Some(d) => merge(d, c),
            None => {
                dst.add_child(c.clone());
            }
        }
    }
}

/// A parameter value as a boolean.
fn truthy(v: Option<&str>) -> Result<bool, String> {
    let Some(v) = v else { return Ok(true) };
    match v.to_ascii_lowercase().as_str() {
        "" | "y" | "yes" | "on" | "true" | "okay" | "enable" | "enabled" => Ok(true),
        "n" | "no" | "off" | "false" | "disabled" | "disable" => Ok(false),
        s => parse_int(s)
            .map(|n| n != 0)
            .ok_or_else(|| format!("{v:?} is not a boolean")),
    }
}

/// A decimal, 0x-hex or negative integer, or a boolean word as 1/0.
fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else {
        body.parse::<u64>().ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn int_value(v: Option<&str>) -> Result<u64, String> {
    let v = v.unwrap_or("1");
    parse_int(v)
        .or_else(|| truthy(Some(v)).ok().map(u64::from))
        .ok_or_else(|| format!("{v:?} is not an integer"))
}

/// One target of a declaration.
enum Target<'a> {
    Fragments(&'a str),
    Prop {
        phandle: u32,
        spec: &'a str,
        /// The cell after a spec ending in `=` (`"prop:0=",<42>`).
        cell: Option<u32>,
    },
}

fn parse_decl(d: &[u8]) -> Result<Vec<Target<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < d.len() {
        let ph = d
            .get(at..at + 4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .ok_or("a declaration is cut short (expected a phandle)")?;
        at += 4;
        let rest = d.get(at..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or("a declaration's string is not NUL-terminated")?;
        let spec = std::str::from_utf8(&rest[..len]).map_err(|_| "a declaration is not UTF-8")?;
        at += len + 1;
        if spec.contains('{') {
            return Err(format!("lookup table in {spec:?} is not supported"));
        }
        if ph == 0 {
            out.push(Target::Fragments(spec));
            continue;
        }
        let mut cell = None;
        if spec.ends_with('=') && !spec.contains('[') && int_kind(spec).is_some() {
            let c = d
                .get(at..at + 4)
                .ok_or("a literal cell is missing after \"=\"")?;
            cell = Some(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            at += 4;
        }
        out.push(Target::Prop {
            phandle: ph,
            spec,
            cell,
        });
    }
    Ok(out)
}

/// The integer width of a spec (`prop:4` -> 4 bytes), if it is an integer one.
fn int_kind(spec: &str) -> Option<usize> {
    let i = spec
        .char_indices()
        .find(|&(i, c)| matches!(c, '.' | ';' | ':') || (c == '#' && i > 0))?
        .0;
    Some(match spec.as_bytes()[i] {
        b'.' => 1,
        b';' => 2,
        b':' => 4,
        _ => 8,
    })
}

/// Applies a parsed declaration. Targets are looked up in `tree` first, then `other`.
fn apply_decl(
    decl: &[u8],
    value: Option<&str>,
    tree: &mut Fdt,
    mut other: Option<&mut Fdt>,
) -> Result<(), String> {
    let targets = parse_decl(decl)?;
    if targets.is_empty() {
        return Err("the declaration is empty".into());
    }
    for t in targets {
        match t {
            Target::Fragments(ops) => fragment_ops(tree, ops, value)?,
            Target::Prop {
                phandle,
                spec,
                cell,
            } => {
                let (t, path) = match path_of_phandle(tree, phandle) {
                    Some(p) => (&mut *tree, p),
                    None => match other.as_deref_mut() {
                        Some(o) => {
                            let p = path_of_phandle(o, phandle).ok_or_else(|| {
                                format!("target phandle {phandle:#x} is not in the tree")
                            })?;
                            (o, p)
                        }
                        None => {
                            return Err(format!("target phandle {phandle:#x} is not in the tree"))
                        }
                    },
                };
                let node = t
                    .node_mut(&path)
                    .ok_or_else(|| format!("{path} vanished"))?;
                set_target(node, spec, cell, value).map_err(|e| format!("{path}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// Fragment operations `+N -N =N !N`.
fn fragment_ops(tree: &mut Fdt, ops: &str, value: Option<&str>) -> Result<(), String> {
    let on = truthy(value)?;
    let b = ops.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let op = b[i];
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: u32 = ops[start..i]
            .parse()
            .map_err(|_| format!("bad fragment operation {ops:?}"))?;
        let enable = match op {
            b'+' => true,
            b'-' => false,
            b'=' => on,
            b'!' => !on,
            _ => return Err(format!("bad fragment operation {ops:?}")),
        };
        let frag = tree
            .root
            .children
            .iter_mut()
            .find(|c| c.name == format!("fragment@{n}") || c.name == format!("fragment-{n}"))
            .ok_or_else(|| format!("no fragment {n}"))?;
        let (from, to) = if enable {
            ("__dormant__", "__overlay__")
        } else {
            ("__overlay__", "__dormant__")
        };
        if let Some(c) = frag.child_mut(from) {
            c.name = to.to_string();
        }
    }
    Ok(())
}

fn parse_bytes(s: &str) -> Result<Vec<u8>, String> {
    let hex: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    if !hex.len().is_multiple_of(2) {
        return Err(format!("{s:?} is not a byte string"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s:?} is not a byte string"))
        })
        .collect()
}

/// Applies one `prop[type][offset][=literal]` target to `node`.
fn set_target(
    node: &mut Node,
    spec: &str,
    cell: Option<u32>,
    value: Option<&str>,
) -> Result<(), String> {
    let split = spec
        .char_indices()
        .find(|&(i, c)| matches!(c, '.' | ';' | ':' | '?' | '!' | '[' | '=') || (c == '#' && i > 0))
        .map_or(spec.len(), |(i, _)| i);
    let prop = &spec[..split];
    let rest = &spec[split..];
    if prop.is_empty() {
        return Err(format!("no property name in {spec:?}"));
    }
    let (kind, rest) = match rest.chars().next() {
        Some(c @ ('.' | ';' | ':' | '#' | '?' | '!' | '[')) => (Some(c), &rest[1..]),
        _ => (None, rest),
    };
    let (offset_str, literal) = match rest.split_once('=') {
        Some((o, l)) => (o, Some(l)),
        None => (rest, None),
    };
    let cell_lit = cell.map(|c| c.to_string());
    let input: Option<&str> = match (literal, &cell_lit) {
        (_, Some(c)) => Some(c.as_str()),
        (Some(l), None) => Some(l),
        (None, None) => value,
    };
    match kind {
        Some(k @ ('.' | ';' | ':' | '#')) => {
            let width = match k {
                '.' => 1,
                ';' => 2,
                ':' => 4,
                _ => 8,
            };
            let off: usize = if offset_str.is_empty() {
                0
            } else {
                offset_str
                    .parse()
                    .map_err(|_| format!("bad offset in {spec:?}"))?
            };
            let v = int_value(input)?;
            let end = off
                .checked_add(width)
                .filter(|&e| e <= 1 << 16)
                .ok_or("offset too large")?;
            let mut val = node.prop(prop).map(<[u8]>::to_vec).unwrap_or_default();
            if val.len() < end {
                val.resize(end, 0);
            }
            val[off..end].copy_from_slice(&v.to_be_bytes()[8 - width..]);
            if prop == "reg" && off == 0 {
                rename_unit(node, v);
            }
            node.set(prop, val);
        }
        Some(k @ ('?' | '!')) => {
            let mut on = truthy(input)?;
            if k == '!' {
                on = !on;
            }
            if on {
                node.set_empty(prop);
            } else {
                node.remove_prop(prop);
            }
        }
        Some('[') => {
            let bytes = parse_bytes(input.unwrap_or(""))?;
            node.set(prop, bytes);
        }
        _ => {
            let s = input.unwrap_or("");
            match prop {
                "status" => {
                    let st = if truthy(Some(s))? { "okay" } else { "disabled" };
                    node.set_str("status", st);
                }
                "bootargs" => {
                    let old = node.prop_str("bootargs").unwrap_or("").to_string();
                    let new = if old.is_empty() {
                        s.to_string()
                    } else {
                        format!("{old} {s}")
                    };
                    node.set_str("bootargs", &new);
                }
                "name" => {
                    if s.is_empty() || s.contains('/') {
                        return Err(format!("{s:?} is not a node name"));
                    }
                    node.name = s.to_string();
                }
                _ => {
                    node.set_str(prop, s);
                }
            }
        }
    }
    Ok(())
}

fn rename_unit(node: &mut Node, v: u64) {
    if let Some((base, _)) = node.name.split_once('@') {
        node.name = format!("{base}@{v:x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::{cells, strings};

    fn decl(parts: &[(u32, &str)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (ph, s) in parts {
            v.extend(cells(&[*ph]));
            v.extend(strings(&[s]));
        }
        v
    }

    fn base() -> Fdt {
        let mut f = Fdt::new();
        let n = f.root.add_child(Node::new("uart@7e201000"));
        n.set_u32("phandle", 5)
            .set_str("status", "disabled")
            .set_cells("reg", &[0x7e20_1000, 0x200]);
        let ovr = f.root.add_child(Node::new("__overrides__"));
        ovr.set("uart0", decl(&[(5, "status")]));
        ovr.set("uart_reg", decl(&[(5, "reg:0")]));
        ovr.set("flag", decl(&[(5, "dma-coherent?")]));
        ovr.set("mac", decl(&[(5, "local-mac-address[")]));
        ovr.set("table", decl(&[(5, "x{a=b}")]));
        f
    }

    #[test]
    fn base_parameters_set_strings_ints_bools_and_bytes() {
        let mut f = base();
        apply_dtparam(&mut f, "uart0", Some("on")).unwrap();
        apply_dtparam(&mut f, "flag", None).unwrap();
        apply_dtparam(&mut f, "mac", Some("b8:27:eb:01:02:03")).unwrap();
        apply_dtparam(&mut f, "uart_reg", Some("0x7e215040")).unwrap();
        let n = f.node("/uart@7e215040").expect("reg renamed the node");
        assert_eq!(n.prop_str("status"), Some("okay"));
        assert_eq!(n.prop("dma-coherent"), Some(&[][..]));
        assert_eq!(
            n.prop("local-mac-address"),
            Some(&[0xb8, 0x27, 0xeb, 1, 2, 3][..])
        );
        assert_eq!(n.prop_cells("reg"), Some(vec![0x7e21_5040, 0x200]));
        assert!(apply_dtparam(&mut f, "table", Some("a"))
            .unwrap_err()
            .contains("lookup"));
        assert!(apply_dtparam(&mut f, "nope", None)
            .unwrap_err()
            .contains("no parameter"));
        assert!(apply_dtparam(&mut f, "uart0", Some("maybe")).is_err());
        let mut plain = Fdt::new();
        assert!(apply_dtparam(&mut plain, "audio", Some("on"))
            .unwrap_err()
            .contains("no __overrides__"));
    }

    #[test]
    fn truncated_declarations_are_errors() {
        let mut f = base();
        let mut d = decl(&[(5, "status")]);
        d.pop();
        f.root.child_mut("__overrides__").unwrap().set("bad", d);
        assert!(apply_dtparam(&mut f, "bad", None).is_err());
        f.root
            .child_mut("__overrides__")
            .unwrap()
            .set("short", vec![0, 0]);
        assert!(apply_dtparam(&mut f, "short", None).is_err());
    }
}
