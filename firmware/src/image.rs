//! The arm64 Linux kernel `Image` (Documentation/arch/arm64/booting.rst), and the wrappers
//! distributions ship it in: a gzip (or zstd, xz) compressed `Image`, as Debian's
//! `/boot/vmlinuz-*`, and the EFI "zboot" image (a PE file with `zimg` at offset 4 whose
//! payload is a compressed `Image`).
//!
//! The header, 64 bytes at the start of the `Image`, all little-endian:
//!
//! ```text
//! 0x00  u32 code0, u32 code1   executable code (on EFI-stub kernels code0 starts with "MZ")
//! 0x08  u64 text_offset        load offset from a 2 MiB aligned base
//! 0x10  u64 image_size         effective size (text, data and bss); 0 on pre-3.17 kernels
//! 0x18  u64 flags              bit 0 big-endian, bits 1-2 page size, bit 3 placement
//! 0x20  u64 res2, res3, res4
//! 0x38  u32 magic              "ARM\x64"
//! 0x3c  u32 res5               PE header offset on EFI-stub kernels
//! ```
//!
//! [`plan_boot`] places kernel, initrd and device tree in RAM the way QEMU's direct kernel
//! boot does (hw/arm/boot.c), so guests see the same addresses as under QEMU.

use std::io::{Cursor, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// `"ARM\x64"` at offset 0x38.
pub const ARM64_MAGIC: [u8; 4] = *b"ARM\x64";
/// Size of the `Image` header.
pub const HEADER_SIZE: usize = 64;
/// The kernel is placed `text_offset` bytes above a base aligned to this.
pub const BASE_ALIGN: u64 = 2 << 20;
/// text_offset of kernels whose header has `image_size` 0 (before Linux 3.17).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// The most a device tree may occupy (booting.rst: "must not exceed 2 megabytes").
pub const DTB_MAX: u64 = 2 << 20;
/// Upper bound on a decompressed kernel, so a crafted file cannot exhaust host memory.
pub const MAX_IMAGE: u64 = 1 << 30;

/// Why a file is not a kernel we can boot.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{what} is {len} bytes: too short for an arm64 Image header (64 bytes)")]
    TooShort { what: String, len: usize },
    #[error(
        "not an arm64 Linux Image: no \"ARM\\x64\" magic at offset 0x38 ({found}); \
         expected an Image, a gzip/zstd/xz compressed Image or an EFI zboot vmlinuz"
    )]
    NotImage { found: String },
    #[error("big-endian arm64 kernels are not supported (Image flags bit 0 is set)")]
    BigEndian,
    #[error("bad Image header: {0}")]
    BadHeader(String),
    #[error("EFI zboot image: {0}")]
    BadZboot(String),
    #[error("kernel compressed with {0}, which armboard cannot decompress (gzip, zstd, xz and lzma are supported)")]
    UnsupportedCompression(String),
    #[error("decompressing the {format} kernel: {msg}")]
    Decompress { format: String, msg: String },
    #[error("kernel wrapped more than {0} times (compressed inside compressed): refusing")]
    TooDeep(usize),
    #[error("does not fit in RAM: {0}")]
    NoRoom(String),
}

/// How the file held the `Image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrapping {
    /// A plain `Image`.
    Plain,
    /// A compressed `Image` ("gzip", "zstd", "xz").
    Compressed(String),
    /// An EFI zboot PE image with a payload compressed with the named method.
    Zboot(String),
}

/// The page size the kernel was built for (Image flags bits 1-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Unspecified,
    K4,
    K16,
    K64,
}

impl PageSize {
    /// Bytes, when specified.
    pub fn bytes(self) -> Option<u64> {
        match self {
            PageSize::Unspecified => None,
            PageSize::K4 => Some(4 << 10),
            PageSize::K16 => Some(16 << 10),
            PageSize::K64 => Some(64 << 10),
        }
    }
}

/// A decompressed arm64 `Image` with its header decoded.
#[derive(Clone, Debug)]
pub struct KernelImage {
    /// The `Image` itself, ready to copy to its load address.
    pub bytes: Vec<u8>,
    /// Offset of the load address above a 2 MiB aligned base.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running (at least `bytes.len()`; includes bss).
    pub image_size: u64,
    /// Raw header flags.
    pub flags: u64,
    /// How the input file held the `Image`.
    pub wrapping: Wrapping,
}

impl KernelImage {
    /// Reads `path` and unwraps it to an `Image`.
    pub fn load(path: impl AsRef<Path>) -> Result<KernelImage, ImageError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ImageError::Io(path.to_path_buf(), e))?;
        KernelImage::from_bytes(bytes)
    }

    /// Unwraps `bytes` (an `Image`, a compressed `Image` or an EFI zboot image).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<KernelImage, ImageError> {
        const MAX_DEPTH: usize = 3;
        let mut bytes = bytes;
        let mut wrapping = Wrapping::Plain;
        for _ in 0..MAX_DEPTH {
            if has_image_magic(&bytes) {
                return KernelImage::parse(bytes, wrapping);
            }
            let (inner, w) = unwrap_once(&bytes)?;
            // The outermost wrapping is the one worth reporting.
            if wrapping == Wrapping::Plain {
                wrapping = w;
            }
            bytes = inner;
        }
        if has_image_magic(&bytes) {
            return KernelImage::parse(bytes, wrapping);
        }
        Err(ImageError::TooDeep(MAX_DEPTH))
    }

    fn parse(bytes: Vec<u8>, wrapping: Wrapping) -> Result<KernelImage, ImageError> {
        if bytes.len() < HEADER_SIZE {
            return Err(ImageError::TooShort {
                what: "the Image".into(),
                len: bytes.len(),
            });
        }
        let mut text_offset = le64(&bytes, 0x08);
        let mut image_size = le64(&bytes, 0x10);
        let flags = le64(&bytes, 0x18);
        if image_size == 0 {
            // booting.rst: with image_size 0, text_offset is 0x80000 whatever the field says.
            text_offset = LEGACY_TEXT_OFFSET;
        } else if flags & 1 != 0 {
            return Err(ImageError::BigEndian);
        }
        if text_offset >= BASE_ALIGN {
            return Err(ImageError::BadHeader(format!(
                "text_offset {text_offset:#x} is not below the 2 MiB base alignment"
            )));
        }
        if image_size > MAX_IMAGE {
            return Err(ImageError::BadHeader(format!(
                "image_size {image_size:#x} is larger than {MAX_IMAGE:#x}"
            )));
        }
        image_size = image_size.max(bytes.len() as u64);
        Ok(KernelImage {
            bytes,
            text_offset,
            image_size,
            flags,
            wrapping,
        })
    }

    /// The page size the kernel expects.
    pub fn page_size(&self) -> PageSize {
        match (self.flags >> 1) & 3 {
            1 => PageSize::K4,
            2 => PageSize::K16,
            3 => PageSize::K64,
            _ => PageSize::Unspecified,
        }
    }

    /// Flags bit 3: the 2 MiB aligned base may be anywhere in RAM (else as close as
    /// possible to the start of RAM).
    pub fn placement_anywhere(&self) -> bool {
        self.flags & (1 << 3) != 0
    }

    /// Where the kernel goes in RAM `[ram_base, ram_base + ram_size)`: the first 2 MiB
    /// aligned base in RAM plus `text_offset` (the entry point is this address).
    pub fn load_address(&self, ram_base: u64, ram_size: u64) -> Result<u64, ImageError> {
        let base = align_up(ram_base, BASE_ALIGN)
            .ok_or_else(|| ImageError::NoRoom("RAM base overflows".into()))?;
        let addr = base
            .checked_add(self.text_offset)
            .ok_or_else(|| ImageError::NoRoom("load address overflows".into()))?;
        let end = addr.checked_add(self.image_size);
        let ram_end = ram_base.checked_add(ram_size);
        match (end, ram_end) {
            (Some(e), Some(r)) if e <= r => Ok(addr),
            _ => Err(ImageError::NoRoom(format!(
                "a kernel of {:#x} bytes at {addr:#x} does not fit in {ram_size:#x} bytes of RAM \
                 at {ram_base:#x}",
                self.image_size
            ))),
        }
    }
}

/// Where [`plan_boot`] puts things, all guest physical addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootPlan {
    /// Load address and entry point of the kernel.
    pub kernel: u64,
    /// End of the kernel's effective size (`kernel + image_size`).
    pub kernel_end: u64,
    /// The initrd, when there is one: `/chosen` `linux,initrd-start` and `-end`.
    pub initrd: Option<Range<u64>>,
    /// The device tree's address (x0 at entry); it may use up to [`DTB_MAX`] bytes.
    pub dtb: u64,
}

/// Places kernel, initrd (of `initrd_len` bytes) and device tree in RAM as QEMU does for
/// `-kernel`: the kernel at the 2 MiB aligned RAM base plus text_offset, the initrd at
/// `ram_base + min(ram_size / 2, 128 MiB)` (or above the kernel if that is higher), the
/// device tree at the next 2 MiB boundary after the initrd.
pub fn plan_boot(
    ram_base: u64,
    ram_size: u64,
    kernel: &KernelImage,
    initrd_len: Option<u64>,
) -> Result<BootPlan, ImageError> {
    let no_room = |what: &str| ImageError::NoRoom(what.to_string());
    let kaddr = kernel.load_address(ram_base, ram_size)?;
    let kernel_end = kaddr + kernel.image_size; // checked by load_address
    let ram_end = ram_base + ram_size; // likewise
    let initrd_start = (ram_base + (ram_size / 2).min(128 << 20)).max(kernel_end);
    let initrd_start = align_up(initrd_start, 0x1000).ok_or_else(|| no_room("initrd"))?;
    let initrd = match initrd_len {
        Some(len) => {
            let end = initrd_start
                .checked_add(len)
                .filter(|&e| e <= ram_end)
                .ok_or_else(|| {
                    ImageError::NoRoom(format!(
                        "an initrd of {len:#x} bytes at {initrd_start:#x} runs past the end of \
                         RAM ({ram_end:#x})"
                    ))
                })?;
            Some(initrd_start..end)
        }
        None => None,
    };
    let after = initrd.as_ref().map_or(initrd_start, |r| r.end);
    let dtb = align_up(after, BASE_ALIGN).ok_or_else(|| no_room("device tree"))?;
    if dtb.checked_add(DTB_MAX).is_none_or(|e| e > ram_end) {
        return Err(ImageError::NoRoom(format!(
            "no 2 MiB for the device tree at {dtb:#x} below the end of RAM ({ram_end:#x})"
        )));
    }
    Ok(BootPlan {
        kernel: kaddr,
        kernel_end,
        initrd,
        dtb,
    })
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn le32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

fn has_image_magic(b: &[u8]) -> bool {
    b.get(0x38..0x3c) == Some(&ARM64_MAGIC[..])
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// Removes one layer of wrapping, or says why `b` is not a kernel.
fn unwrap_once(b: &[u8]) -> Result<(Vec<u8>, Wrapping), ImageError> {
    if b.starts_with(b"MZ") && b.get(4..8) == Some(&b"zimg"[..]) {
        return unwrap_zboot(b);
    }
    for (magic, name) in [(GZIP_MAGIC, "gzip"), (ZSTD_MAGIC, "zstd"), (XZ_MAGIC, "xz")] {
        if b.starts_with(magic) {
            let out = decompress(name, b)?;
            return Ok((out, Wrapping::Compressed(name.into())));
        }
    }
    if b.len() < HEADER_SIZE {
        return Err(ImageError::TooShort {
            what: "the file".into(),
            len: b.len(),
        });
    }
    Err(ImageError::NotImage { found: describe(b) })
}

/// What a file that is not a kernel looks like, for the error message.
fn describe(b: &[u8]) -> String {
    if b.starts_with(b"\x7fELF") {
        "an ELF file: pass the Image (arch/arm64/boot/Image), not vmlinux".into()
    } else if b.starts_with(b"MZ") {
        "a PE/EFI file that is neither an EFI-stub Image nor a zboot image".into()
    } else if b.starts_with(&[0xd0, 0x0d, 0xfe, 0xed]) {
        "a device tree blob".into()
    } else if b.starts_with(b"070701") || b.starts_with(b"070702") {
        "a cpio archive (an initramfs?)".into()
    } else {
        let head: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
        format!("starts with {}", head.join(" "))
    }
}

/// The EFI zboot header (drivers/firmware/efi/libstub/zboot-header.S): "MZ" at 0, "zimg"
/// at 4, u32 payload offset at 8, u32 payload size at 12, the NUL-terminated compression
/// name at 24 (up to the Linux magic field at 0x38).
fn unwrap_zboot(b: &[u8]) -> Result<(Vec<u8>, Wrapping), ImageError> {
    if b.len() < HEADER_SIZE {
        return Err(ImageError::BadZboot(format!(
            "{} bytes: shorter than its header",
            b.len()
        )));
    }
    let off = le32(b, 8) as usize;
    let size = le32(b, 12) as usize;
    let name_field = &b[24..0x38];
    let name_len = name_field
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| ImageError::BadZboot("compression name is not NUL-terminated".into()))?;
    let name = String::from_utf8_lossy(&name_field[..name_len]).into_owned();
    let payload = off
        .checked_add(size)
        .and_then(|end| b.get(off..end))
        .ok_or_else(|| {
            ImageError::BadZboot(format!(
                "payload at {off:#x} of {size:#x} bytes runs past the end of the file ({:#x})",
                b.len()
            ))
        })?;
    let out = decompress(&name, payload)?;
    Ok((out, Wrapping::Zboot(name)))
}

/// Decompresses `data` with the method Linux calls `name` (gzip, zstd, xz, lzma), up to
/// [`MAX_IMAGE`] bytes.
pub fn decompress(name: &str, data: &[u8]) -> Result<Vec<u8>, ImageError> {
    let err = |msg: String| ImageError::Decompress {
        format: name.to_string(),
        msg,
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(3));
    match name {
        "gzip" => {
            flate2::read::GzDecoder::new(data)
                .take(MAX_IMAGE + 1)
                .read_to_end(&mut out)
                .map_err(|e| err(e.to_string()))?;
        }
        "zstd" => {
            let d = ruzstd::decoding::StreamingDecoder::new(Cursor::new(data))
                .map_err(|e| err(e.to_string()))?;
            d.take(MAX_IMAGE + 1)
                .read_to_end(&mut out)
                .map_err(|e| err(e.to_string()))?;
        }
        "xz" => lzma_rs::xz_decompress(&mut Cursor::new(data), &mut out)
            .map_err(|e| err(e.to_string()))?,
        "lzma" => lzma_rs::lzma_decompress(&mut Cursor::new(data), &mut out)
            .map_err(|e| err(e.to_string()))?,
        other => return Err(ImageError::UnsupportedCompression(other.to_string())),
    }
    if out.len() as u64 > MAX_IMAGE {
        return Err(err(format!("more than {MAX_IMAGE} bytes")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal Image: a header and `body` bytes of "code".
    fn image(text_offset: u64, image_size: u64, flags: u64, body: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE + body];
        b[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // b +0x40
        b[8..16].copy_from_slice(&text_offset.to_le_bytes());
        b[16..24].copy_from_slice(&image_size.to_le_bytes());
        b[24..32].copy_from_slice(&flags.to_le_bytes());
        b[0x38..0x3c].copy_from_slice(&ARM64_MAGIC);
        for (i, x) in b[HEADER_SIZE..].iter_mut().enumerate() {
            *x = (i * 7) as u8;
        }
        b
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zboot(payload: &[u8], comp: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x100];
        b[0..2].copy_from_slice(b"MZ");
        b[4..8].copy_from_slice(b"zimg");
        b[8..12].copy_from_slice(&0x100u32.to_le_bytes());
        b[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        b[24..24 + comp.len()].copy_from_slice(comp.as_bytes());
        b[0x38..0x3c].copy_from_slice(b"\xcd\x23\x82\x81"); // LINUX_PE_MAGIC, not ARM\x64
        b.extend_from_slice(payload);
        b.extend_from_slice(&[0xaa; 4]); // zboot appends the size after the payload
        b
    }

    #[test]
    fn decodes_header_fields() {
        // 6.1-style: text_offset 0, 4K pages, placement anywhere, little-endian.
        let k = KernelImage::from_bytes(image(0, 0x20_0000, 0b1010, 256)).unwrap();
        assert_eq!(k.text_offset, 0);
        assert_eq!(k.image_size, 0x20_0000);
        assert_eq!(k.page_size(), PageSize::K4);
        assert_eq!(k.page_size().bytes(), Some(4096));
        assert!(k.placement_anywhere());
        assert_eq!(k.wrapping, Wrapping::Plain);
        assert_eq!(k.load_address(0x4000_0000, 1 << 30).unwrap(), 0x4000_0000);
        let k = KernelImage::from_bytes(image(0x8_0000, 0x1000, 0b0110, 256)).unwrap();
        assert_eq!(k.page_size(), PageSize::K64);
        assert!(!k.placement_anywhere());
        // A RAM base that is not 2 MiB aligned rounds up before text_offset is added.
        assert_eq!(k.load_address(0x4010_0000, 1 << 30).unwrap(), 0x4028_0000);
    }

    #[test]
    fn legacy_image_size_zero_means_text_offset_0x80000() {
        let k = KernelImage::from_bytes(image(0x1234, 0, 0, 64)).unwrap();
        assert_eq!(k.text_offset, LEGACY_TEXT_OFFSET);
        assert_eq!(k.image_size, 128);
    }

    #[test]
    fn rejects_non_images_with_clear_errors() {
        let e = KernelImage::from_bytes(vec![0u8; 10]).unwrap_err();
        assert!(matches!(e, ImageError::TooShort { len: 10, .. }), "{e}");
        let mut elf = vec![0u8; 128];
        elf[..4].copy_from_slice(b"\x7fELF");
        let e = KernelImage::from_bytes(elf).unwrap_err();
        assert!(e.to_string().contains("ELF"), "{e}");
        let e = KernelImage::from_bytes(vec![0x55; 4096]).unwrap_err();
        assert!(matches!(e, ImageError::NotImage { .. }), "{e}");
        assert!(e.to_string().contains("55 55"), "{e}");
        let e = KernelImage::from_bytes(image(0, 0x1000, 1, 16)).unwrap_err();
        assert!(matches!(e, ImageError::BigEndian), "{e}");
        let e = KernelImage::from_bytes(image(0x30_0000, 0x1000, 0, 16)).unwrap_err();
        assert!(matches!(e, ImageError::BadHeader(_)), "{e}");
        // Truncated compressed kernel: an error, not a panic.
        let gz = gzip(&image(0, 0x1000, 2, 4096));
        let e = KernelImage::from_bytes(gz[..gz.len() / 2].to_vec()).unwrap_err();
        assert!(matches!(e, ImageError::Decompress { .. }), "{e}");
        // A gzip of something that is not an Image.
        let e = KernelImage::from_bytes(gzip(&[7u8; 1000])).unwrap_err();
        assert!(matches!(e, ImageError::NotImage { .. }), "{e}");
        let e = KernelImage::load("/nonexistent/vmlinuz").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/vmlinuz"), "{e}");
    }

    #[test]
    fn unwraps_gzip_compressed_image() {
        let img = image(0, 0x40_0000, 2, 10_000);
        let k = KernelImage::from_bytes(gzip(&img)).unwrap();
        assert_eq!(k.bytes, img);
        assert_eq!(k.wrapping, Wrapping::Compressed("gzip".into()));
        assert_eq!(k.image_size, 0x40_0000);
    }

    #[test]
    fn unwraps_efi_zboot_gzip_and_zstd() {
        let img = image(0, 0x40_0000, 2, 5000);
        let k = KernelImage::from_bytes(zboot(&gzip(&img), "gzip")).unwrap();
        assert_eq!(k.bytes, img);
        assert_eq!(k.wrapping, Wrapping::Zboot("gzip".into()));
        let zst = ruzstd::encoding::compress_to_vec(
            &img[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let k = KernelImage::from_bytes(zboot(&zst, "zstd")).unwrap();
        assert_eq!(k.bytes, img);
        assert_eq!(k.wrapping, Wrapping::Zboot("zstd".into()));
        let e = KernelImage::from_bytes(zboot(&zst, "lz4")).unwrap_err();
        assert!(
            matches!(e, ImageError::UnsupportedCompression(ref n) if n == "lz4"),
            "{e}"
        );
        // Payload size pointing past the end of the file.
        let mut bad = zboot(&zst, "zstd");
        bad[12..16].copy_from_slice(&0x10_0000u32.to_le_bytes());
        let e = KernelImage::from_bytes(bad).unwrap_err();
        assert!(matches!(e, ImageError::BadZboot(_)), "{e}");
    }

    #[test]
    fn plans_boot_like_qemu() {
        let k = KernelImage::from_bytes(image(0, 0x200_0000, 2, 64)).unwrap();
        let p = plan_boot(0x4000_0000, 1 << 30, &k, Some(0x12_3456)).unwrap();
        assert_eq!(p.kernel, 0x4000_0000);
        assert_eq!(p.kernel_end, 0x4200_0000);
        assert_eq!(p.initrd, Some(0x4800_0000..0x4812_3456));
        assert_eq!(p.dtb, 0x4820_0000);
        // Small RAM: the initrd goes at half of RAM, above the kernel.
        let p = plan_boot(0x4000_0000, 64 << 20, &k, None).unwrap();
        assert_eq!(p.initrd, None);
        assert_eq!(p.dtb, 0x4200_0000);
        // Too little RAM for the kernel or initrd.
        assert!(plan_boot(0x4000_0000, 16 << 20, &k, None).is_err());
        assert!(plan_boot(0x4000_0000, 64 << 20, &k, Some(60 << 20)).is_err());
    }
}
