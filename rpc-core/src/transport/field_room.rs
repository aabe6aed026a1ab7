//! How much room a large field gets as its bytes arrive ([`field_room`], [`grow_towards`]): never
//! room for the length the peer claims, only for what has arrived plus a step, so that a peer that
//! announces a large field and stalls holds little memory (SECURITY.md §3).

pub use crate::limits::{FIELD_RESERVE, FIELD_STEP};

/// Room a large field gets beyond the bytes that have arrived for it, in this process:
/// [`FIELD_RESERVE`] where transparent huge pages are off (then room never written is only
/// address space), else [`FIELD_STEP`]. Looked up once, when the first large field starts: a
/// program that turns huge pages off does so at start, as `rpc-server` does.
pub fn field_room() -> usize {
    static ROOM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROOM.get_or_init(|| {
        if huge_pages_are_off() {
            FIELD_RESERVE
        } else {
            FIELD_STEP
        }
    })
}

/// Whether this process runs with transparent huge pages off (a Linux setting; elsewhere no
/// huge page is made from room never written, so it counts as off).
fn huge_pages_are_off() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return matches!(
        rustix::thread::transparent_huge_pages_are_disabled(),
        Ok(true)
    );
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return true;
}

/// Makes room in `field` (which is to hold `want` bytes) once it is full: for the bytes `arrived`
/// says have come (buffered or ready to be read; asked only then) plus [`field_room`], or for as
/// much again as it holds, whichever is more, and at most what it still misses. Growing by as much again as it holds
/// keeps the copies of a field that trickles in to about its own size in all.
///
/// A field with room left is not grown: the next read goes into that room. And a full field is
/// moved into a fresh buffer by copying its bytes, not reallocated: `realloc` copies the whole old
/// allocation, room never written included, which made every page of it resident (part of the
/// 2.4 MiB a stalled peer used to cost).
pub(super) fn grow_towards(field: &mut Vec<u8>, want: usize, arrived: &mut impl FnMut() -> usize) {
    let missing = want - field.len();
    if missing == 0 || field.capacity() > field.len() {
        return;
    }
    let room = missing.min(arrived().saturating_add(field_room()).max(field.len()));
    if field.is_empty() {
        field.reserve_exact(room);
        return;
    }
    let mut bigger = Vec::with_capacity(field.len() + room);
    bigger.extend_from_slice(field);
    *field = bigger;
}
