//! The on-disk layout of a record log and the record trait.
//!
//! A log is a directory of segments `segment-<10 digits>.mblog`, written in
//! order, and a `manifest` written last (see [`Manifest`](super::Manifest)):
//! a log without its manifest is one whose write did not finish, and is
//! refused. A segment is a 64-byte header and then blocks:
//!
//! ```text
//! segment header (64 bytes, little-endian)
//!   magic "MBLOG\r\n\x1a" | version u32 (2) | header length u32 (64)
//!   | record-type fingerprint u64 | log id u64 | segment index u64
//!   | index of the segment's first record u64 | reserved (12 bytes, 0)
//!   | CRC-32 of the 60 bytes before it u32
//! block (at a 16-byte aligned offset)
//!   block magic "!BLK" | payload length u32 | records u32
//!   | CRC-32 of the payload u32 | CRC-32 of these 16 bytes u32
//!   | reserved (12 bytes, 0)
//!   payload: the rkyv archive of the block's records as a Vec,
//!   zero-padded to a multiple of 16 bytes
//! ```
//!
//! Offsets stay 16-byte aligned, so a payload in a memory map is aligned
//! for the archived records, which are read in place. The header checksums
//! cover the lengths, so a flipped length is damage, never a shorter log;
//! the log id and the segment index tie each segment to its log and its
//! place, so a segment missing, repeated, reordered, renamed or taken from
//! another log is refused.

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Portable, Serialize};

/// First bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MBLOG\r\n\x1a";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of a segment header.
pub const SEGMENT_HEADER: usize = 64;
/// First bytes of every block.
pub const BLOCK_MAGIC: [u8; 4] = *b"!BLK";
/// Bytes of a block header.
pub const BLOCK_HEADER: usize = 32;
/// The file that says a log is complete, written last.
pub const MANIFEST: &str = "manifest";
/// Alignment of every block and payload.
pub const ALIGN: usize = 16;

/// A record type a log can hold: rkyv-archivable, its archive checkable
/// and readable back, with a schema name whose fingerprint every segment
/// carries so that a log is never read as the wrong type.
///
/// ```
/// use microbatch::log::LogRecord;
///
/// #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy)]
/// struct Click {
///     user: u64,
///     dwell_ms: u32,
/// }
///
/// impl LogRecord for Click {
///     const SCHEMA: &'static str = "example.click.v1(user u64, dwell_ms u32)";
/// }
/// ```
pub trait LogRecord:
    Sized
    + Archive<Archived: ArchivedRecord<Self>>
    + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rkyv::rancor::Error>>
    + Send
    + 'static
{
    /// Names the record's layout; change it when the layout changes.
    const SCHEMA: &'static str;
}

/// What an archived record must offer: in-place checks and a way back to
/// the record. Implemented for every type that has both.
pub trait ArchivedRecord<R>:
    Portable
    + for<'a> CheckBytes<HighValidator<'a, rkyv::rancor::Error>>
    + Deserialize<R, HighDeserializer<rkyv::rancor::Error>>
{
}

impl<R, T> ArchivedRecord<R> for T where
    T: Portable
        + for<'a> CheckBytes<HighValidator<'a, rkyv::rancor::Error>>
        + Deserialize<R, HighDeserializer<rkyv::rancor::Error>>
{
}

/// The fingerprint of `R`'s schema: FNV-1a over the schema name and the
/// archived record's size.
pub fn fingerprint<R: LogRecord>() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let size = std::mem::size_of::<R::Archived>() as u64;
    for byte in R::SCHEMA.bytes().chain(size.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What a segment header says of its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The record type's fingerprint.
    pub fingerprint: u64,
    /// The log the segment belongs to.
    pub log_id: u64,
    /// The segment's index in the log.
    pub index: u64,
    /// The index in the log of the segment's first record.
    pub first_record: u64,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER] {
        let mut header = [0u8; SEGMENT_HEADER];
        header[0..8].copy_from_slice(&SEGMENT_MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(SEGMENT_HEADER as u32).to_le_bytes());
        header[16..24].copy_from_slice(&self.fingerprint.to_le_bytes());
        header[24..32].copy_from_slice(&self.log_id.to_le_bytes());
        header[32..40].copy_from_slice(&self.index.to_le_bytes());
        header[40..48].copy_from_slice(&self.first_record.to_le_bytes());
        let crc = crc32fast::hash(&header[..SEGMENT_HEADER - 4]);
        header[SEGMENT_HEADER - 4..].copy_from_slice(&crc.to_le_bytes());
        header
    }

    /// Reads a header of this build's version whose checksum holds; the
    /// error says what is wrong (the magic and version are checked by the
    /// caller, which names them).
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        if bytes.len() < SEGMENT_HEADER {
            return Err(format!(
                "a segment header cut short at {} bytes",
                bytes.len()
            ));
        }
        if u32_at(bytes, 12) as usize != SEGMENT_HEADER {
            return Err(format!(
                "a header length of {}, not {SEGMENT_HEADER}",
                u32_at(bytes, 12)
            ));
        }
        if crc32fast::hash(&bytes[..SEGMENT_HEADER - 4]) != u32_at(bytes, SEGMENT_HEADER - 4) {
            return Err("the segment header's checksum fails".into());
        }
        Ok(SegmentHeader {
            fingerprint: u64_at(bytes, 16),
            log_id: u64_at(bytes, 24),
            index: u64_at(bytes, 32),
            first_record: u64_at(bytes, 40),
        })
    }
}

/// The header of a block of `records` records whose payload is `payload`.
pub fn block_header(payload: &[u8], records: u32) -> [u8; BLOCK_HEADER] {
    let mut header = [0u8; BLOCK_HEADER];
    header[0..4].copy_from_slice(&BLOCK_MAGIC);
    header[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[8..12].copy_from_slice(&records.to_le_bytes());
    header[12..16].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let crc = crc32fast::hash(&header[..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

/// `len` rounded up to [`ALIGN`].
pub fn padded(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// A little-endian u32 at `at`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// A little-endian u64 at `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// The file name of segment `index`.
pub fn segment_name(index: u64) -> String {
    format!("segment-{index:010}.mblog")
}

/// The index of a segment file name, if it is one.
pub fn segment_index(name: &str) -> Option<u64> {
    name.strip_prefix("segment-")?
        .strip_suffix(".mblog")?
        .parse()
        .ok()
}
