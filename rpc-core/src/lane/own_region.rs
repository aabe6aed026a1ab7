//! [`OwnRegion`]: the region a side writes its large fields into, and the slots it hands out.

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::AsRawFd;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
use memmap2::MmapOptions;
use memmap2::MmapRaw;
#[cfg(any(target_os = "linux", target_os = "android"))]
use rustix::fs::{MemfdFlags, SealFlags};

use crate::lane::{LaneError, ShmSize};

/// Slots start at multiples of this many bytes.
const SLOT_ALIGN: u64 = 64;

/// This side's outgoing region: a memfd of a fixed size, mapped writable here and sealed so that
/// nobody can shrink or grow it (the peer cannot make a write here fault with `SIGBUS`) and
/// nobody else can write to it (the peer may only read).
///
/// Slots are handed out in order, like a ring. A slot's position is a byte count that only
/// grows ([`OwnRegion::alloc`]); its place in the region is that count modulo the size, and a
/// slot never wraps around the end. The peer gives slots back in the same order, by saying up to
/// which position it has copied ([`OwnRegion::release`]). When every slot is back, the next one
/// starts at the region's beginning again, so a connection with one message in flight at a time
/// keeps writing (and keeps resident) only the first pages.
#[derive(Debug)]
pub struct OwnRegion {
    fd: OwnedFd,
    map: MmapRaw,
    size: u64,
    /// Position after the last slot handed out.
    head: u64,
    /// Position up to which the peer has given slots back.
    tail: u64,
    /// The end of the region skipped when a slot last went to the front while slots were out
    /// (from the slot before it to the end of the lap), as positions.
    skipped: (u64, u64),
}

impl OwnRegion {
    /// Makes a region of `size` bytes (not [`ShmSize::OFF`]): a memfd, sized, mapped, sealed.
    /// Linux (and Android) only: elsewhere it fails, and the lane stays off.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn new(_size: ShmSize) -> Result<Self, LaneError> {
        Err(LaneError::Region {
            what: "memfd_create",
            source: std::io::ErrorKind::Unsupported.into(),
        })
    }

    /// Makes a region of `size` bytes (not [`ShmSize::OFF`]): a memfd, sized, mapped, sealed.
    /// Linux (and Android) only: elsewhere it fails, and the lane stays off.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn new(size: ShmSize) -> Result<Self, LaneError> {
        let region = |what| {
            move |err: rustix::io::Errno| LaneError::Region {
                what,
                source: err.into(),
            }
        };
        if size.is_off() {
            return Err(LaneError::Protocol("a region of size 0".to_owned()));
        }
        let fd =
            rustix::fs::memfd_create("rpc-lane", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .map_err(region("memfd_create"))?;
        rustix::fs::ftruncate(&fd, size.bytes()).map_err(region("ftruncate"))?;
        let len = usize::try_from(size.bytes()).map_err(|_| LaneError::Region {
            what: "size",
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw(fd.as_raw_fd())
            .map_err(|source| LaneError::Region {
                what: "mmap",
                source,
            })?;
        // Sealed after mapping: FUTURE_WRITE stops every later write and writable mapping, the
        // peer's included, while this mapping goes on working. Kernels before 5.1 lack it; there
        // the peer could write into slots meant for itself, which it reads only as copies.
        let seals = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
        rustix::fs::fcntl_add_seals(&fd, seals | SealFlags::FUTURE_WRITE)
            .or_else(|_| rustix::fs::fcntl_add_seals(&fd, seals))
            .map_err(region("sealing"))?;
        Ok(OwnRegion {
            fd,
            map,
            size: size.bytes(),
            head: 0,
            tail: 0,
            skipped: (0, 0),
        })
    }

    /// The memfd, to send to the peer once.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The region's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes handed out and not given back yet (alignment and skipped ends included).
    pub fn in_use(&self) -> u64 {
        self.head - self.tail
    }

    /// Bytes of the slots handed out and not given back yet (with the alignment before each):
    /// [`OwnRegion::in_use`] without the end of the region skipped when a slot went back to the
    /// front. What the peer has yet to copy.
    pub fn out(&self) -> u64 {
        let (start, end) = self.skipped;
        // Only the last skip can lie between the tail and the head: an earlier one is a whole lap
        // behind, and no more than a lap is ever out.
        let skipped = self.head.min(end).saturating_sub(self.tail.max(start));
        self.in_use() - skipped
    }

    /// A slot of `len` bytes, as its position, or `None` when the free part of the region
    /// cannot hold it now.
    ///
    /// Slots go to the region's front whenever it is free: a connection with a few messages in
    /// flight keeps writing (and keeps resident) about as many pages as it has bytes in flight,
    /// not the whole region.
    pub fn alloc(&mut self, len: usize) -> Option<u64> {
        let len = len as u64;
        if len == 0 || len > self.size {
            return None;
        }
        if self.head == self.tail {
            // Nothing is out: start the next lap, at the front, now.
            self.head = self.head.next_multiple_of(self.size);
            self.tail = self.head;
        }
        let aligned = self.head.next_multiple_of(SLOT_ALIGN);
        let lap = aligned.next_multiple_of(self.size);
        // Whether a slot at `start` leaves everything not given back untouched.
        let fits = |start: u64| start + len - self.tail <= self.size;
        let start = if fits(lap) {
            // The front is free (this is also the only place when the slot would pass the end).
            lap
        } else if aligned % self.size + len <= self.size && fits(aligned) {
            aligned
        } else {
            return None;
        };
        if start > self.head && start % self.size == 0 {
            // Back to the front with slots out: the end from `head` on is skipped. (A slot that
            // merely starts after alignment padding skips nothing worth remembering.)
            self.skipped = (self.head, start);
        }
        self.head = start + len;
        Some(start)
    }

    /// Where a slot of `len` bytes would end if slots of `packed` bytes came before it in an
    /// empty region (slots start at multiples of 64 bytes): what a message's fields need.
    pub fn packed_end(packed: u64, len: u64) -> u64 {
        packed.next_multiple_of(SLOT_ALIGN) + len
    }

    /// Forgets every slot handed out after `head` (a value of [`OwnRegion::mark`]): a message
    /// that took some slots and then could not go through the lane gives them back. (If
    /// everything was back, the message's first slot started the next lap and moved the tail
    /// past `head`: then the region stays empty at the tail.)
    pub fn rollback(&mut self, head: u64) {
        debug_assert!(head <= self.head);
        self.head = head.clamp(self.tail, self.head);
        if self.skipped.1 > self.head {
            // The skip was the rolled-back slot's: forget it.
            self.skipped = (self.head, self.head);
        }
    }

    /// The position the next slot would follow, for [`OwnRegion::rollback`].
    pub fn mark(&self) -> u64 {
        self.head
    }

    /// Writes `bytes` into the slot at `pos`, which [`OwnRegion::alloc`] handed out for them.
    pub fn write(&mut self, pos: u64, bytes: &[u8]) {
        let offset = pos % self.size;
        let fits = offset
            .checked_add(bytes.len() as u64)
            .is_some_and(|end| end <= self.size);
        assert!(fits, "a slot handed out lies inside the region");
        // SAFETY: `offset + bytes.len()` is within the mapping (checked just above), which lives
        // as long as `self`. Only this side can write to the region (it is sealed against every
        // other writer), and no reference to the mapped memory is ever made here: the peer may
        // read it at any time, which does not affect this copy.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(offset as usize),
                bytes.len(),
            );
        }
    }

    /// The peer has copied every slot up to position `through`: they are free again. A
    /// position before the last one given back, or past every slot handed out, breaks the rules.
    pub fn release(&mut self, through: u64) -> Result<(), LaneError> {
        if through < self.tail || through > self.head {
            return Err(LaneError::Protocol(format!(
                "the peer gave back slots up to {through}, but only {}..={} are out",
                self.tail, self.head
            )));
        }
        self.tail = through;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::SealFlags;

    fn region(size: u64) -> OwnRegion {
        OwnRegion::new(ShmSize::new(size).expect("in range")).expect("a memfd")
    }

    #[test]
    fn slots_go_round_the_ring_never_wrap_and_come_back_in_order() {
        let mut r = region(64 * 1024);
        let a = r.alloc(40_000).expect("fits");
        assert_eq!(a, 0);
        // 40 000 + 30 000 passes the end: nothing free at the start until `a` comes back.
        assert_eq!(r.alloc(30_000), None);
        let b = r.alloc(20_000).expect("fits after a");
        assert_eq!(b, 40_000u64.next_multiple_of(SLOT_ALIGN));
        r.release(a + 40_000).expect("in order");
        let c = r.alloc(30_000).expect("the start is free again");
        assert_eq!(c % r.size(), 0, "skipped the end rather than wrap");
        assert!(r.release(c + 30_001).is_err(), "past what is out");
        assert!(r.release(a).is_err(), "before what came back");
        r.release(c + 30_000).expect("all back");
        assert_eq!(r.in_use(), 0);
        // Everything back: the next slot starts at the beginning.
        let d = r.alloc(100).expect("fits");
        assert_eq!(d % r.size(), 0);
        assert!(d > c, "positions only grow");
    }

    #[test]
    fn two_messages_in_flight_at_a_time_keep_to_the_front_of_the_region() {
        let mut r = region(1 << 20);
        let field = 100_000;
        let mut out = std::collections::VecDeque::new();
        for _ in 0..1000 {
            let pos = r.alloc(field).expect("room for two");
            assert!(
                pos % r.size() + field as u64 <= 3 * field as u64,
                "at {}",
                pos % r.size()
            );
            out.push_back(pos + field as u64);
            if out.len() == 2 {
                r.release(out.pop_front().expect("one out"))
                    .expect("in order");
            }
        }
    }

    #[test]
    fn the_end_skipped_to_go_back_to_the_front_is_in_use_but_not_out() {
        // Sizes that are multiples of 64 bytes, so no slot starts after padding.
        let mut r = region(64 * 1024);
        let a = r.alloc(20_480).expect("fits");
        let b = r.alloc(20_480).expect("fits");
        r.release(a + 20_480).expect("in order");
        // The front is free again: the next slot goes there, skipping the region's end.
        let c = r.alloc(10_240).expect("fits at the front");
        assert_eq!(c, r.size());
        assert_eq!(r.in_use(), c + 10_240 - (a + 20_480));
        assert_eq!(r.out(), 20_480 + 10_240);
        r.release(b + 20_480).expect("in order");
        assert_eq!(r.out(), 10_240);
        let d = r.alloc(10_240).expect("fits");
        assert_eq!(r.out(), d + 10_240 - c);
        r.release(d + 10_240).expect("all back");
        assert_eq!(r.out(), 0);
    }

    #[test]
    fn a_slot_after_alignment_padding_keeps_the_skip_of_the_lap_it_is_in() {
        let mut r = region(4 << 20);
        let field = 300_000; // not a multiple of 64: every later slot starts after padding
        let a = r.alloc(field).expect("fits");
        let b = r.alloc(field).expect("fits");
        r.alloc(field).expect("fits");
        r.release(a + field as u64).expect("in order");
        assert_eq!(r.alloc(field), Some(r.size()), "back to the front");
        r.release(b + field as u64).expect("in order");
        r.alloc(field).expect("fits after the first of the lap");
        // Three slots out, with the padding before two of them, and nothing of the skipped end.
        let out = r.out();
        assert!(
            (3 * field as u64..3 * field as u64 + 128).contains(&out),
            "{out} out"
        );
    }

    #[test]
    fn a_rolled_back_slot_at_the_front_takes_its_skip_with_it() {
        let mut r = region(64 * 1024);
        let a = r.alloc(20_480).expect("fits");
        r.alloc(20_480).expect("fits");
        r.release(a + 20_480).expect("in order");
        let mark = r.mark();
        assert_eq!(r.alloc(10_240), Some(r.size()), "back to the front");
        r.rollback(mark);
        // Too large for the front: it goes after the slot still out, where the skip was.
        assert_eq!(r.alloc(22_000), Some(mark));
        assert_eq!(r.out(), 20_480 + 22_000);
    }

    #[test]
    fn a_rollback_past_the_start_of_a_lap_leaves_the_region_empty() {
        let mut r = region(64 * 1024);
        let a = r.alloc(1000).expect("fits");
        r.release(a + 1000).expect("all back");
        let mark = r.mark();
        r.alloc(1000).expect("starts the next lap");
        r.rollback(mark);
        assert_eq!((r.in_use(), r.out()), (0, 0));
    }

    #[test]
    fn a_rollback_gives_back_what_a_message_took() {
        let mut r = region(64 * 1024);
        let mark = r.mark();
        r.alloc(50_000).expect("fits");
        assert_eq!(r.alloc(50_000), None);
        r.rollback(mark);
        assert_eq!(r.in_use(), 0);
        assert!(r.alloc(60_000).is_some());
    }

    #[test]
    fn the_region_is_sealed_against_resizing_and_other_writers() {
        let mut r = region(64 * 1024);
        let seals = rustix::fs::fcntl_get_seals(r.fd()).expect("a memfd");
        assert!(seals.contains(SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL));
        assert!(rustix::fs::ftruncate(r.fd(), 0).is_err(), "cannot shrink");
        let pos = r.alloc(5).expect("fits");
        r.write(pos, b"hello");
        let mut read = [0u8; 5];
        rustix::io::pread(r.fd(), &mut read, pos).expect("readable");
        assert_eq!(&read, b"hello");
        if seals.contains(SealFlags::FUTURE_WRITE) {
            assert!(
                rustix::io::pwrite(r.fd(), b"x", 0).is_err(),
                "no other writer"
            );
        }
    }
}
