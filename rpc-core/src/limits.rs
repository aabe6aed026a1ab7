//! Every limit and default the server and the client enforce, each defined once, with its reason.
//!
//! A limit bounds what one peer can make the other spend (memory, descriptors, time, log lines);
//! a default is the value a limit takes when nobody sets it. The README's "Defaults and limits"
//! table lists the same values. Code that enforces a limit names the constant here; the old paths
//! (`rpc_server::limits::DEFAULT_MAX_CONNECTIONS`, `rpc_client::DEFAULT_CONNECT_TIMEOUT`,
//! `rpc_core::handshake::MAX_HANDSHAKE_FRAME`, ...) still work through re-exports.
//!
//! Values a user sets on the command line are refused when out of range, never clamped: `0`
//! connections, calls in flight or threads is a usage error, and so is a frame limit outside
//! what a [`FrameLimit`](crate::FrameLimit) can hold.

use std::time::Duration;

// --- Frames and the memory a peer's bytes may claim --------------------------------------------
//
// Enforced by `crate::wire` (frame lengths, deadlines) and `crate::transport` (buffers and large
// fields), which re-export them. The transport's private buffer sizes (how much small output is
// staged or kept for reuse, the read space kept free between frames) are tuning, not limits on a
// peer, and stay beside the code.

/// The default largest frame body: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The smallest frame limit a server or client accepts: 4 KiB, room for any handshake.
pub const MIN_MAX_FRAME: usize = 4 * 1024;

/// How far the read buffer may grow ahead of the bytes received for a frame: at most this much,
/// or as much again as already arrived, whichever is larger (so a large frame costs a handful of
/// reallocations, and a peer that only claims a large frame gets almost nothing). A 1 MiB
/// read-ahead was tried and made no difference rpc-bench could see, so the tighter bound stays.
pub const READ_AHEAD: usize = 64 * 1024;

/// Byte and string fields at least this long (32 KiB) are written from, and read into, their own
/// memory instead of being copied through the frame buffers; frames at least this long take the
/// large-frame path.
pub const BIG_FIELD: usize = 32 * 1024;

/// Room a large field gets beyond the bytes that have arrived for it, in a process that may map
/// transparent huge pages: 64 KiB. There, writing the first bytes of a fresh allocation can make
/// a whole 2 MiB page resident (mimalloc asks for huge pages on what it maps), so a field gets no
/// room for what its frame merely claims: a peer that announces a 16 MiB field, sends 100 bytes
/// and stalls costs about this much, not 2 MiB. The price is copies while a fast sender's field
/// grows (about its own size in all): see [`FIELD_RESERVE`].
pub const FIELD_STEP: usize = 64 * 1024;

/// Room a large field gets beyond the bytes that have arrived for it, in a process with
/// transparent huge pages off (`rpc-server` turns them off; so does `MIMALLOC_ALLOW_THP=0`):
/// 2 MiB, about what the kernel holds in flight for one connection. There, room never written
/// is address space only, so a stalled field still costs only the pages its bytes were written
/// to, and a field of up to this size is read with no copy at all (the copies of growing it were
/// a tenth of a 1 MiB call's time).
pub const FIELD_RESERVE: usize = 2 * 1024 * 1024;

/// How many times one frame's leading bytes may be decoded in search of its next large field
/// before the frame is read whole and decoded once instead (so a frame made of many small fields
/// costs a bounded amount of decoding, not one pass per read).
pub const MAX_PROBES: usize = 8;

/// The furthest deadline a request may carry: one year. tarpc turns a request's relative
/// deadline into `Instant::now() + deadline` without checking, which panics for a peer's huge
/// value; such requests are refused as malformed before tarpc sees them.
pub const MAX_DEADLINE_SECS: u64 = 365 * 24 * 60 * 60;

/// Default kernel send and receive buffer for each Unix socket connection: 1 MiB. The kernel's
/// default (about 200 KiB) cuts a large message into many small round trips, while TCP loopback
/// autotunes its buffers to megabytes; this is most of why stock tarpc is slower over a Unix
/// socket than over TCP for large payloads.
///
/// The kernel caps what is asked at `net.core.wmem_max` (send) and `net.core.rmem_max`
/// (receive), 212992 bytes on many distributions: there a connection gets that much, and large
/// messages take more round trips (`sysctl -w net.core.wmem_max=1048576
/// net.core.rmem_max=1048576` raises the caps).
/// [`LocalStream::tune`](crate::stream::LocalStream::tune) returns what was granted;
/// `rpc-server` logs a warning at the first connection granted less, and `rpc-bench` says when
/// the caps were below this.
pub const DEFAULT_SOCKET_BUFFER: usize = 1024 * 1024;

/// The largest handshake frame either side accepts or sends: 4 KiB, the smallest frame limit. A
/// hello is a service name and a 32-byte token, a reply a version string with a frame limit and a
/// schema hash, or a refusal: all far smaller, so a peer cannot make the other buffer more before it is even
/// authenticated.
pub const MAX_HANDSHAKE_FRAME: usize = MIN_MAX_FRAME;

// --- The shared-memory lane (Unix sockets on Linux) ---------------------------------------------
//
// Enforced by `crate::lane` and the transport's lane frames (`wire/lane_frame.rs`).

/// Default size of each shared-memory region of a Unix connection: 4 MiB, one region per
/// direction, made when the first large field is sent (so a connection that never sends one
/// costs nothing). A region's pages become resident as they are written: about the bytes in
/// flight at the busiest moment, at most this size. `0` turns the lane off (`rpc-server
/// --shm-size`, `Connector::shm_size`); the two sides use the smaller of their sizes.
///
/// The size bounds the largest fields that take the lane (a message alone may fill the region);
/// what keeps the lane fast with many calls in flight is [`LANE_AHEAD`], not a small region.
/// Before it, a larger region was slower under load (with 16 MiB regions the lane made 0.47x to
/// 1.55x the socket path's calls/s at 16 and 64 in flight, with 4 MiB 0.97x to 1.54x); with it,
/// 16 MiB regions made what 4 MiB did (BENCHMARKS.md). Raise it for fields larger than this.
pub const DEFAULT_SHM_SIZE: u64 = 4 * 1024 * 1024;

/// How many bytes of large fields a side lets out in its shared-memory region before its next
/// message waits for the peer to give them back: 1 MiB. A message finding nothing out may use
/// the whole region; so fields up to the region's size still take the lane, one message at a
/// time.
///
/// This keeps the lane's copies in the cache. A field the peer copies out soon after it was
/// written is read from the cache. A sender that writes megabytes ahead makes its own copy in
/// and the peer's copy out run at the speed of memory, as slow as the socket path's copies,
/// which are most of its cost under load. rpc-bench, 1 MiB echoes with 64 in flight on each of
/// 4 connections: without this, the copies took about 900 us a call (the socket path's 985 us)
/// and the lane made 0.97x to 1.54x the socket path's calls/s; with it, 1.86x to 2.05x (three
/// runs each, in turns; BENCHMARKS.md, "How far ahead the lane writes").
pub const LANE_AHEAD: u64 = 1024 * 1024;

/// How long a message bound for the shared-memory lane waits for room in the region (the peer
/// giving slots back) before it goes through the socket instead: 100 ms. After a wait that ran
/// out, messages stop waiting until the peer gives a slot back, so a peer that never does costs
/// one wait, and the lane's speed.
pub const LANE_WAIT: Duration = Duration::from_millis(100);

/// The largest shared-memory region a side offers or accepts: 1 GiB. A larger `--shm-size` is
/// refused, never cut.
pub const MAX_SHM_SIZE: u64 = 1024 * 1024 * 1024;

/// The smallest non-zero shared-memory region: 64 KiB, room for two fields of [`BIG_FIELD`].
pub const MIN_SHM_SIZE: u64 = 64 * 1024;

/// The most large fields one message may carry through the lane: 64. A message with more goes
/// through the socket, and a lane frame claiming more is malformed.
pub const LANE_MAX_FIELDS: usize = 64;

/// The most small bytes (everything but the large fields) a lane frame may carry: 32 KiB
/// ([`BIG_FIELD`]). A message with more goes through the socket, so a lane frame is always
/// buffered whole and a peer that stalls in one holds at most this much.
pub const LANE_MAX_SMALLS: usize = BIG_FIELD;

// --- Names and files, checked where they are parsed -------------------------------------------

pub use crate::endpoint::MAX_UNIX_PATH_LEN;
pub use crate::endpoint_file::MAX_ENDPOINT_FILE_LEN;
pub use crate::location::MAX_NAME_LEN;
pub use crate::service::MAX_SERVICE_NAME_LEN;

// --- Server: connections ------------------------------------------------------------------------

/// Default cap on open connections (handshaking ones included): 1024. Each holds a descriptor
/// and buffers; one over the cap is refused with `TooManyConnections`, not left to exhaust them.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default cap on open connections from one uid (all TCP peers count as one): 256, so one user's
/// runaway program cannot take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_UID: usize = 256;

/// Default cap on calls in flight on one connection: 256. A call over it is answered at once with
/// a "would block" server error, never queued without bound or dropped silently.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Default time a new connection has to complete its handshake: 5 s, so a peer that connects and
/// says nothing does not hold a place for long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time a frame may take to arrive once its first byte has: 30 s. A peer that stalls
/// mid-frame is disconnected after it; an idle connection is not.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time in-flight calls get to finish after a shutdown signal: 10 s, after which the
/// server drops what is still open and exits.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Default permissions of a server's Unix socket file: owner read and write only, so only its
/// own user (and root) can connect unless the operator widens it.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// How long a connection over a connection limit may take to send its hello before it is dropped
/// unanswered: 500 ms. Its refusal is sent after the hello is read (a socket closed with unread
/// data is reset, and the refusal lost), but it holds no place, so it does not get the full
/// handshake timeout.
pub const OVER_LIMIT_HELLO_WAIT: Duration = Duration::from_millis(500);

/// How long the server waits for a refused peer to take its refusal: 1 s. A peer that does not
/// read cannot keep the connection task alive.
pub const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest service name, in characters, echoed back in a refusal or a log line: 64, so a
/// refusal always fits its frame and a log line stays short.
pub const MAX_ECHOED_NAME: usize = 64;

/// Warnings a peer can trigger that are logged per wall-clock second: 20. The rest are counted
/// and the count reported with the next one let through, so a hostile peer cannot flood the log.
pub const WARNINGS_PER_SECOND: u64 = 20;

/// First delay after a failed accept: 10 ms, doubling up to [`MAX_ACCEPT_BACKOFF`]. When the
/// process is out of descriptors accept fails at once, and retrying without a pause would spin a
/// core.
pub const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Longest delay after a failed accept: 1 s, so accepting resumes soon after descriptors free up.
pub const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

// --- Streams (both sides) ----------------------------------------------------------------------

/// Default credit a client grants each stream it opens: 256 KiB of answers (frame bodies). A
/// consumer that stops reading holds at most this much (plus one item) in flight between the
/// server and itself, and the server's producer waits; the client grants more as its consumer
/// takes half of it. Set per connection with `Connector::stream_window`.
pub const DEFAULT_STREAM_WINDOW: u64 = 256 * 1024;

/// The most credit a stream may hold on the server: 64 MiB. A grant past it is cut to it (a
/// client's absurd grant, or one adding up past `u64`, is not an error and gains nothing): the
/// server's memory does not depend on credit (it writes only while the socket takes its
/// answers), but a window larger than this only lets a fast producer outrun its consumer.
pub const MAX_STREAM_CREDIT: u64 = 64 * 1024 * 1024;

/// Default cap on streams open at once on one connection: 64. One more is answered with a
/// "would block" server error, as a call over [`DEFAULT_MAX_IN_FLIGHT`] is; each open stream
/// holds its producer (and, for a broadcast, its place in the channel). `rpc-server
/// --max-streams` sets it.
pub const DEFAULT_MAX_STREAMS: usize = 64;

// --- Server: built-in services (re-exported beside the service traits) ------------------------

/// The most keys the built-in `kv` store holds (100 000), so that no client can fill the server's
/// memory; a `set` of a new key beyond it fails with `KvError::Full`.
pub const KV_MAX_KEYS: usize = 100_000;

/// How many events the built-in `kv.watch` broadcast keeps for subscribers that are behind:
/// 1024. A watcher further behind than that gets `Lagged { missed }` for what it lost; `set`
/// and `delete` never wait for a watcher.
pub const KV_WATCH_BACKLOG: usize = 1024;

/// The largest item the built-in `echo.stream` sends: 1 MiB. A longer one is refused with an
/// error, never allocated.
pub const ECHO_MAX_STREAM_ITEM: u64 = 1024 * 1024;

/// The longest wait of the built-in `echo.delay`, in milliseconds (one minute); a longer one is
/// cut to it.
pub const ECHO_MAX_DELAY_MS: u64 = 60_000;

// --- Client -------------------------------------------------------------------------------------

/// Default time a client allows to connect and complete the handshake: 5 s (the CLI's
/// `--timeout-ms` also bounds each answer with it).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// First delay between a reconnecting client's attempts: 50 ms, doubling up to
/// [`MAX_RECONNECT_DELAY`]: quick after a restart, without hammering a server that is down.
pub const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(50);

/// Longest delay between a reconnecting client's attempts: 2 s.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// How often a client connection's watcher looks in while calls wait: 500 ms, so a call whose task
/// stops polling holds up the others' answers for at most about that. It is also the tick of
/// [`crate::timers::keep_timers_warm`], whose job the watcher's timer does on the client side.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);
