//! The shared-memory lane: large fields past the socket's copies, on Unix connections (Linux).
//!
//! A socket moves a 1 MiB field in many small kernel round trips, each copying through socket
//! buffers and waking the reader. On the lane, each side instead writes its large fields into a
//! region of its own, mapped once per connection, and sends only a small frame saying where they
//! are: the socket message is the doorbell. The receiver copies each field out once, into the
//! buffer that becomes the decoded field, and tells the sender the slot is free again.
//!
//! - **Agreed in the handshake.** The client offers a region size, the server answers the smaller
//!   of that and its own (`0` = off; always off on TCP). See [`ShmSize`].
//! - **One region per direction** ([`OwnRegion`]): a sealed memfd, made when the first large
//!   field is sent, passed once with `SCM_RIGHTS` along with the first lane frame. Its slots are
//!   handed out in order, like a ring, and come back as the peer reports them copied.
//! - **The peer's region** ([`PeerRegion`]): mapped read-only after its seals and size are
//!   checked; every slot is bounds-checked, must follow the last one, and is copied out before
//!   anything reads it.
//! - **Never far ahead.** While slots of earlier messages are out, a message's fields may take
//!   the bytes out to at most [`LANE_AHEAD`] (1 MiB): the peer then copies each field out soon
//!   after it was written, from the cache. A message finding nothing out may fill the region.
//! - **A bounded wait.** A message whose fields do not fit the free part of the region (or pass
//!   [`LANE_AHEAD`]) while earlier slots are out waits for the peer to give them back, at most
//!   [`LANE_WAIT`] once it is first in the queue, and what is queued after it waits behind it
//!   (the queue keeps its order; only the reports of the peer's slots copied out go ahead of
//!   it). Then it goes through the socket as it would without the lane, and messages stop
//!   waiting until the peer gives a slot back. A message too large for the whole region goes
//!   through the socket at once. A peer that never gives slots back only costs one wait and
//!   loses the lane's speed.
//!
//! What the lane's frames look like on the socket is in `wire/lane_frame.rs`; what each side
//! trusts is in SECURITY.md.

mod own_region;
mod peer_region;

pub use own_region::OwnRegion;
pub use peer_region::PeerRegion;

pub use crate::limits::{
    DEFAULT_SHM_SIZE, LANE_AHEAD, LANE_MAX_FIELDS, LANE_MAX_SMALLS, LANE_WAIT, MAX_SHM_SIZE,
    MIN_SHM_SIZE,
};

/// The size of each shared-memory region of a connection, or `0` for no lane: `0`, or from
/// [`MIN_SHM_SIZE`] (64 KiB) to [`MAX_SHM_SIZE`] (1 GiB). [`DEFAULT_SHM_SIZE`] (4 MiB) by
/// default.
///
/// ```
/// use rpc_core::lane::ShmSize;
/// let size: ShmSize = "4194304".parse().unwrap();
/// assert_eq!(size.bytes(), 4 << 20);
/// assert!(ShmSize::OFF.is_off());
/// assert!("1000".parse::<ShmSize>().is_err()); // below 64 KiB, and not 0
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShmSize(u64);

impl ShmSize {
    /// No lane.
    pub const OFF: ShmSize = ShmSize(0);

    /// `bytes`, if it is `0` or in range.
    pub fn new(bytes: u64) -> Result<Self, ShmSizeError> {
        if bytes == 0 || (MIN_SHM_SIZE..=MAX_SHM_SIZE).contains(&bytes) {
            Ok(ShmSize(bytes))
        } else {
            Err(ShmSizeError { bytes })
        }
    }

    /// The size in bytes; `0` for no lane.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Whether this is no lane.
    pub fn is_off(self) -> bool {
        self.0 == 0
    }

    /// The smaller of the two: what two sides agree on.
    pub fn min(self, other: ShmSize) -> ShmSize {
        ShmSize(self.0.min(other.0))
    }
}

impl Default for ShmSize {
    /// [`DEFAULT_SHM_SIZE`] on Linux (and Android), [`ShmSize::OFF`] elsewhere: the regions are
    /// memfds.
    fn default() -> Self {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            ShmSize(DEFAULT_SHM_SIZE)
        } else {
            ShmSize::OFF
        }
    }
}

impl std::str::FromStr for ShmSize {
    type Err = String;

    /// A number of bytes, as `--shm-size` takes it.
    fn from_str(text: &str) -> Result<Self, String> {
        let bytes = text
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not a number of bytes"))?;
        ShmSize::new(bytes).map_err(|err| err.to_string())
    }
}

impl std::fmt::Display for ShmSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A region size outside what a [`ShmSize`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a shared-memory size of {bytes} bytes is out of range: it must be 0 (off), or at least {MIN_SHM_SIZE} and at most {MAX_SHM_SIZE}"
)]
pub struct ShmSizeError {
    /// The value refused.
    pub bytes: u64,
}

/// How a peer broke the lane's rules, or why a region could not be made or mapped. The
/// connection cannot go on after one.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// A region could not be made, sealed or mapped.
    #[error("shared-memory region: {what}")]
    Region {
        /// What failed.
        what: &'static str,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The peer's descriptor is not a region this side can use.
    #[error("the peer's shared-memory region is unusable: {0}")]
    BadRegion(String),
    /// A lane frame names a slot outside the region, or out of order.
    #[error("the peer named a bad shared-memory slot: {0}")]
    BadSlot(String),
    /// A lane frame came before any region, or a region came twice.
    #[error("shared-memory protocol error: {0}")]
    Protocol(String),
}
