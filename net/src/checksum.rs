//! The Internet checksum (RFC 1071), for the device adapter, which checks
//! the checksums of received frames and fills in those of sent frames
//! itself (smoltcp is told the device does both).
//!
//! The checksum is the one's-complement sum of 16-bit words. One's-
//! complement addition does not care about byte order (RFC 1071 §2(B)):
//! summing the words in the machine's order and storing the result in
//! the machine's order gives the same bytes as doing both in network
//! order. So [`sum`] adds the data 64 bits at a time in native order (the
//! two 32-bit halves of each word separately, into a 64-bit accumulator
//! that cannot overflow for any frame), and the carries are folded back
//! only once, in [`fold`]. smoltcp's own routine adds 16 bits at a time;
//! the kernel is built without SSE, so nothing vectorises it there, and
//! this one runs about a third of its instructions.

/// Adds `data` to the running sum `sum`. Pieces of one checksum may be
/// added in turn when every piece but the last has an even length.
pub(crate) fn sum(mut sum: u64, data: &[u8]) -> u64 {
    let (words, rest) = data.as_chunks::<8>();
    for word in words {
        let word = u64::from_ne_bytes(*word);
        sum += (word & 0xffff_ffff) + (word >> 32);
    }
    let (halves, rest) = rest.as_chunks::<4>();
    for half in halves {
        sum += u64::from(u32::from_ne_bytes(*half));
    }
    let (pairs, rest) = rest.as_chunks::<2>();
    for pair in pairs {
        sum += u64::from(u16::from_ne_bytes(*pair));
    }
    if let [last] = rest {
        // An odd last byte is padded with a zero byte after it.
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    sum
}

/// The running sum folded to 16 bits, in native order: `0xffff` over
/// data whose checksum is right; its complement is the checksum to store
/// (with `to_ne_bytes`).
pub(crate) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The running sum of the IPv4 pseudo-header of a TCP or UDP segment of
/// `len` bytes from `source` to `destination`.
pub(crate) fn pseudo_header(source: [u8; 4], destination: [u8; 4], protocol: u8, len: u16) -> u64 {
    let [high, low] = len.to_be_bytes();
    let tail = [0, protocol, high, low];
    sum(sum(sum(0, &source), &destination), &tail)
}

/// Whether `data` (with its pseudo-header's running sum `start`, 0 for
/// none) carries a right checksum.
pub(crate) fn verify(start: u64, data: &[u8]) -> bool {
    fold(sum(start, data)) == 0xffff
}

/// Computes the checksum of `data` (with its pseudo-header's running sum
/// `start`) and stores it at `data[at..at + 2]`, which must be zero
/// beforehand. With `nonzero`, a checksum of zero is stored as `0xffff`
/// (UDP, where zero means "no checksum").
pub(crate) fn fill(start: u64, data: &mut [u8], at: usize, nonzero: bool) {
    let mut checksum = !fold(sum(start, data));
    if nonzero && checksum == 0 {
        checksum = 0xffff;
    }
    data[at..at + 2].copy_from_slice(&checksum.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::wire::checksum as reference;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn sums_match_smoltcps_for_every_length_and_alignment() {
        let bytes = data(1600);
        for start in 0..8 {
            for len in (0..200).chain([1459, 1460, 1461, 1500, 1514, 1591]) {
                let piece = &bytes[start..start + len];
                let ours = !fold(sum(0, piece));
                let theirs = !reference::data(piece);
                assert_eq!(ours.to_ne_bytes(), theirs.to_be_bytes(), "{start}+{len}");
            }
        }
    }

    #[test]
    fn the_pseudo_header_matches_smoltcps() {
        let source = smoltcp::wire::Ipv4Address::new(10, 0, 2, 15);
        let destination = smoltcp::wire::Ipv4Address::new(10, 0, 2, 2);
        let ours = fold(pseudo_header(
            source.octets(),
            destination.octets(),
            6,
            1480,
        ));
        let theirs = reference::pseudo_header_v4(
            &source,
            &destination,
            smoltcp::wire::IpProtocol::Tcp,
            1480,
        );
        assert_eq!(ours.to_ne_bytes(), theirs.to_be_bytes());
    }

    #[test]
    fn a_filled_checksum_verifies_and_a_flipped_bit_does_not() {
        let mut segment = data(101);
        segment[16..18].fill(0);
        let start = pseudo_header([10, 0, 0, 1], [10, 0, 0, 2], 6, 101);
        fill(start, &mut segment, 16, false);
        assert!(verify(start, &segment));
        segment[40] ^= 0x10;
        assert!(!verify(start, &segment));
    }

    #[test]
    fn a_zero_udp_checksum_is_sent_as_all_ones() {
        // The sum of these words is 0xffff, so the checksum would be 0.
        let mut datagram = vec![0xff, 0xff, 0, 0];
        fill(0, &mut datagram, 2, true);
        assert_eq!(datagram[2..4], [0xff, 0xff]);
        assert!(verify(0, &datagram));
    }
}
