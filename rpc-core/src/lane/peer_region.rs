//! [`PeerRegion`]: the peer's region, read only as checked copies.

use std::os::fd::{AsRawFd, OwnedFd};

use memmap2::{MmapOptions, MmapRaw};
#[cfg(any(target_os = "linux", target_os = "android"))]
use rustix::fs::SealFlags;

use crate::lane::{LaneError, ShmSize};

/// The peer's outgoing region, mapped read-only here.
///
/// The peer can change its region at any time, also while this side copies from it: every slot
/// is copied out exactly once, into memory of this side's own, and nothing reads the region in
/// place. A slot must lie inside the region and follow the last one copied (slots come in the
/// order they were handed out, never overlapping), and the region must be sealed against
/// shrinking, so that no copy can fault with `SIGBUS`.
#[derive(Debug)]
pub struct PeerRegion {
    map: MmapRaw,
    size: u64,
    /// Position after the last slot copied: the next must not start before it.
    next: u64,
}

impl PeerRegion {
    /// Adopts the descriptor the peer sent for its region, which both sides agreed is `size`
    /// bytes: it must be a memfd of exactly that size, sealed against shrinking and growing.
    /// The descriptor is closed when this returns; the mapping keeps the region.
    pub fn adopt(fd: OwnedFd, size: ShmSize) -> Result<Self, LaneError> {
        let bad = |why: String| LaneError::BadRegion(why);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return Err(bad(format!(
            "shared memory is Linux's here ({} bytes, descriptor {fd:?})",
            size.bytes()
        )));
        let stat = rustix::fs::fstat(&fd).map_err(|err| bad(format!("fstat: {err}")))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(bad("not a memory file".to_owned()));
        }
        if u64::try_from(stat.st_size).ok() != Some(size.bytes()) || size.is_off() {
            return Err(bad(format!(
                "it holds {} bytes, not the {} agreed",
                stat.st_size,
                size.bytes()
            )));
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let seals = rustix::fs::fcntl_get_seals(&fd)
                .map_err(|err| bad(format!("not a sealable memfd ({err})")))?;
            if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
                return Err(bad("not sealed against shrinking and growing".to_owned()));
            }
        }
        let len = usize::try_from(size.bytes()).map_err(|_| bad("too large".to_owned()))?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(fd.as_raw_fd())
            .map_err(|source| LaneError::Region {
                what: "mmap of the peer's region",
                source,
            })?;
        Ok(PeerRegion {
            map,
            size: size.bytes(),
            next: 0,
        })
    }

    /// The position after the last slot copied: what to tell the peer it may reuse.
    pub fn copied_through(&self) -> u64 {
        self.next
    }

    /// Copies the slot of `len` bytes at position `pos` out of the region, after checking that
    /// it lies inside the region and does not start before the end of the last one.
    pub fn copy_out(&mut self, pos: u64, len: u64) -> Result<Vec<u8>, LaneError> {
        let bad = |why: String| LaneError::BadSlot(why);
        if pos < self.next {
            return Err(bad(format!(
                "slot at {pos} starts before the end of the last one ({})",
                self.next
            )));
        }
        let offset = pos % self.size;
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| {
                bad(format!(
                    "slot of {len} bytes at offset {offset} passes the end of a region of {}",
                    self.size
                ))
            })?;
        let next = pos
            .checked_add(len)
            .ok_or_else(|| bad(format!("slot at {pos} of {len} bytes overflows")))?;
        let len = (end - offset) as usize;
        let mut out = Vec::with_capacity(len);
        // SAFETY: `offset..offset + len` lies within the read-only mapping (checked above),
        // which lives as long as `self`, and the region is sealed against shrinking, so reading
        // it cannot fault. `out` has room for `len` bytes and does not overlap the mapping. The
        // peer may write to the slot during the copy: the bytes are then whatever it wrote, so
        // they are read once, through a raw pointer (no reference to shared memory is ever
        // made), and only the copy is decoded and validated.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(offset as usize),
                out.as_mut_ptr(),
                len,
            );
            out.set_len(len);
        }
        self.next = next;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::OwnRegion;
    use rustix::fs::MemfdFlags;

    const SIZE: u64 = 64 * 1024;

    fn size() -> ShmSize {
        ShmSize::new(SIZE).expect("in range")
    }

    fn peer_of(own: &OwnRegion) -> PeerRegion {
        let fd = own.fd().try_clone_to_owned().expect("dup");
        PeerRegion::adopt(fd, size()).expect("a good region")
    }

    #[test]
    fn slots_are_copied_out_in_order_and_bounds_checked() {
        let mut own = OwnRegion::new(size()).expect("a memfd");
        let mut peer = peer_of(&own);
        let a = own.alloc(5).expect("fits");
        own.write(a, b"hello");
        assert_eq!(peer.copy_out(a, 5).expect("in bounds"), b"hello");
        assert_eq!(peer.copied_through(), a + 5);
        // Before the last one (overlapping it), past the end, overflowing.
        assert!(matches!(peer.copy_out(a, 5), Err(LaneError::BadSlot(_))));
        assert!(matches!(
            peer.copy_out(SIZE - 4, 5),
            Err(LaneError::BadSlot(_))
        ));
        assert!(matches!(
            peer.copy_out(u64::MAX - 2, 5),
            Err(LaneError::BadSlot(_))
        ));
        assert!(matches!(
            peer.copy_out(64, u64::MAX),
            Err(LaneError::BadSlot(_))
        ));
        // A later lap of the ring is fine.
        assert_eq!(peer.copy_out(3 * SIZE, 4).expect("in bounds"), b"hell");
    }

    #[test]
    fn a_region_of_the_wrong_size_or_unsealed_or_not_a_memfd_is_refused() {
        let own = OwnRegion::new(ShmSize::new(2 * SIZE).expect("in range")).expect("a memfd");
        let fd = own.fd().try_clone_to_owned().expect("dup");
        assert!(matches!(
            PeerRegion::adopt(fd, size()),
            Err(LaneError::BadRegion(_))
        ));

        let unsealed = rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC).expect("memfd");
        rustix::fs::ftruncate(&unsealed, SIZE).expect("sized");
        assert!(matches!(
            PeerRegion::adopt(unsealed, size()),
            Err(LaneError::BadRegion(_))
        ));

        let (socket, _other) = std::os::unix::net::UnixStream::pair().expect("a pair");
        assert!(matches!(
            PeerRegion::adopt(OwnedFd::from(socket), size()),
            Err(LaneError::BadRegion(_))
        ));
    }
}
