//! Network backends: where an emulated NIC's frames go and where received frames come from.
//! A NIC model owns a `Box<dyn NetBackend>`; [`user::UserNet`] is the built-in one (a gateway
//! that answers ARP and ping, no host networking needed).

pub mod user;

/// The far side of an emulated Ethernet link. Frames are whole Ethernet frames without the FCS.
pub trait NetBackend: Send {
    /// A frame the guest sent.
    fn send(&mut self, frame: &[u8]);
    /// The next frame for the guest, if one is waiting.
    fn recv(&mut self) -> Option<Vec<u8>>;
}

/// The Internet checksum (RFC 1071) of `data`: the ones' complement sum of its big-endian
/// 16-bit words (an odd last byte padded with zero), not yet complemented.
pub fn ones_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum to store in a header: the complement of [`ones_sum`].
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_ipv4_header() {
        // RFC 1071 style example: a header whose checksum field holds b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(
            ones_sum(&h),
            0xffff,
            "a header with its checksum sums to all ones"
        );
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(ones_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }
}
