//! The shared-memory lane against hostile peers, spoken by hand ([`tests::raw_lane`]) at the
//! real `rpc-server` with its default `--shm-size`: slots outside the region or out of order,
//! descriptors that are not the region agreed or come where none may, lane frames where there is
//! no lane, a peer that writes into its slots while the server copies them, one that never gives
//! the server's slots back, and one killed mid-transfer. Each test checks that only the
//! offending connection closes (for the reason the lane's rules give, as the server logs it),
//! that a client connected before is still answered, and that the server's descriptors,
//! mappings and memory come back.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rpc_core::lane::{DEFAULT_SHM_SIZE, LANE_AHEAD, ShmSize};
use rpc_core::services::echo::EchoResponse;
use rustix::fs::SealFlags;
use tests::raw::{connect, echo_request_frame, read_reply};
use tests::raw_lane::{
    BIG_FIELD, LIBRARY_REGION_NAME, LaneConnection, TEST_REGION_NAME, echo_payload, echo_smalls,
    lane_echo_frame, lane_frame, lane_hello_frame, mapped_regions, released_frame, sealed_region,
    send_with_fds, unsealed_region, write_slot,
};
use tests::resources::{Baseline, SETTLE_TIMEOUT, open_fds, resident_bytes};
use tests::{ServerProcess, TestDir, Watched, assert_bystander_served, assert_serves_calls, watch};

const MIB: u64 = 1 << 20;

/// The region size every connection here agrees on: the server's default, which the clients
/// offer too.
const SIZE: u64 = DEFAULT_SHM_SIZE;

/// What the clients here offer.
fn offer() -> ShmSize {
    ShmSize::new(SIZE).expect("in range")
}

/// Checks that the bystander is still answered, that a new client is served, that the server
/// maps no region of a connection that has closed, and that its descriptors and memory are
/// back near the baseline.
async fn assert_unharmed(server: &mut ServerProcess, watched: &Watched, after: &str) {
    assert!(
        server.is_running(),
        "the server died after {after}; stderr:\n{}",
        server.stderr()
    );
    assert_bystander_served(&watched.bystander).await;
    wait_for_no_region(server, after);
    watched.baseline.assert_restored(server, after).await;
    assert!(
        !fd_targets(server.pid())
            .iter()
            .any(|target| target.contains(TEST_REGION_NAME)),
        "after {after} the server still holds a descriptor of a client's region"
    );
}

/// Checks that the last connection the server closed for breaking the rules (the one a test
/// just saw closed: the server logs before it hangs up) was closed for `reason`.
fn assert_logged(server: &ServerProcess, reason: &str) {
    let stderr = server.stderr();
    let last = stderr
        .lines()
        .rfind(|line| line.contains("closing connection after a transport error"))
        .unwrap_or_else(|| panic!("no connection closed for an error; stderr:\n{stderr}"));
    assert!(
        last.contains(reason),
        "the last connection was not closed for `{reason}`: {last}"
    );
}

/// Waits until the server maps no region, its own or a client's: every lane connection is
/// gone.
fn wait_for_no_region(server: &ServerProcess, after: &str) {
    let pid = server.pid();
    tests::wait_for(
        SETTLE_TIMEOUT,
        &format!("the server to unmap every region after {after}"),
        || {
            mapped_regions(pid, TEST_REGION_NAME).is_empty()
                && mapped_regions(pid, LIBRARY_REGION_NAME).is_empty()
        },
    );
}

/// What the server's descriptors point at (`/proc/<pid>/fd/*`).
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the server's descriptors can be listed")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .collect()
}

/// Asserts that `answer` is the echo of request `id` carrying `payload`.
fn assert_echoed(answer: Option<tarpc::Response<EchoResponse>>, id: u64, payload: &[u8]) {
    let answer = answer.unwrap_or_else(|| panic!("the server closed instead of answering {id}"));
    assert_eq!(answer.request_id, id, "the answer of another request");
    match answer.message {
        Ok(EchoResponse::Echo(bytes)) => {
            assert!(bytes[..] == *payload, "request {id} was echoed other bytes")
        }
        other => panic!("request {id} got {other:?}"),
    }
}

/// A lane connection whose region the server has adopted: a 1 MiB echo went through slot 0 and
/// was answered. Returns the connection and its region; the next slot may start at [`MIB`].
async fn lane_in_use(server: &ServerProcess) -> (LaneConnection, OwnedFd) {
    let mut lane = LaneConnection::open(server, offer()).await;
    assert_eq!(lane.shm(), offer(), "the lane was not agreed");
    let region = sealed_region(SIZE);
    let payload = echo_payload(1, MIB as usize);
    write_slot(&region, SIZE, 0, &payload);
    lane.send_with_fds(&lane_echo_frame(1, 0, MIB), &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 1, &payload);
    (lane, region)
}

/// Sends one lane frame of an echo request naming the slot `(pos, len)`, with a sealed region
/// attached, on a fresh lane connection that agreed on regions of `size` bytes, and checks that
/// the server closes it unanswered, for `reason`.
async fn assert_slot_refused(
    server: &ServerProcess,
    size: u64,
    (what, pos, len, reason): (&str, u64, u64, &str),
) {
    let size = ShmSize::new(size).expect("in range");
    let mut lane = LaneConnection::open(server, size).await;
    assert_eq!(
        lane.shm(),
        size,
        "the server did not agree to the smaller offer"
    );
    let region = sealed_region(size.bytes());
    lane.send_with_fds(&lane_echo_frame(1, pos, len), &[region.as_fd()])
        .await
        .expect("the server reads");
    lane.assert_closed_unanswered(what).await;
    assert_logged(server, reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_lane_client_echoes_mebibytes_through_both_regions() {
    let dir = TestDir::new();
    let server = dir.server().start();

    // Offered twice the server's size: the server answers its own, the smaller.
    let twice = ShmSize::new(2 * SIZE).expect("in range");
    let mut lane = LaneConnection::open(&server, twice).await;
    assert_eq!(
        lane.shm(),
        offer(),
        "the server agreed to more than its own size"
    );

    let region = sealed_region(SIZE);
    let first = echo_payload(1, MIB as usize);
    write_slot(&region, SIZE, 0, &first);
    lane.send_with_fds(&lane_echo_frame(1, 0, MIB), &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 1, &first);
    assert_eq!(lane.lane_answers(), 1, "the answer came through the socket");
    assert_eq!(
        lane.released(),
        Some(MIB),
        "the server did not give the slot back"
    );

    // The server's region: the size agreed, sealed against resizing and against any writer but
    // the server (FUTURE_WRITE: this client cannot write into it).
    let server_region = lane.server_region().expect("the server sent its region");
    let stat = rustix::fs::fstat(server_region).expect("the region can be examined");
    assert_eq!(stat.st_size as u64, SIZE);
    let seals = rustix::fs::fcntl_get_seals(server_region).expect("a memfd");
    assert!(
        seals.contains(SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL),
        "the server's region has seals {seals:?}"
    );
    if seals.contains(SealFlags::FUTURE_WRITE) {
        assert!(
            rustix::io::pwrite(server_region, b"forged", 0).is_err(),
            "a client could write into the server's region"
        );
    }

    // Slots go round the ring: a second one after the first, then one whose position is past
    // the region's size (its place is that modulo the size), ending exactly at the region's end.
    let second = echo_payload(2, MIB as usize);
    write_slot(&region, SIZE, MIB, &second);
    lane.send(&lane_echo_frame(2, MIB, MIB))
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 2, &second);
    let last = 2 * SIZE - MIB;
    let third = echo_payload(3, MIB as usize);
    write_slot(&region, SIZE, last, &third);
    lane.send(&lane_echo_frame(3, last, MIB))
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 3, &third);
    assert_eq!(lane.released(), Some(2 * SIZE));
    assert_eq!(lane.lane_answers(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_outside_the_region_close_only_that_connection() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;

    // At the limits: a slot ending at the region's last byte, and a field of exactly 32 KiB.
    let mut lane = LaneConnection::open(&server, offer()).await;
    let region = sealed_region(SIZE);
    let at_end = echo_payload(1, MIB as usize);
    write_slot(&region, SIZE, SIZE - MIB, &at_end);
    lane.send_with_fds(&lane_echo_frame(1, SIZE - MIB, MIB), &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 1, &at_end);
    let smallest = echo_payload(2, BIG_FIELD as usize);
    write_slot(&region, SIZE, SIZE, &smallest);
    lane.send(&lane_echo_frame(2, SIZE, BIG_FIELD))
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 2, &smallest);
    drop((lane, region));

    let past_end = "passes the end of a region";
    let over_limit = "over the limit of 16777216 bytes";
    for case in [
        (
            "a slot one byte past the end",
            SIZE - MIB + 1,
            MIB,
            past_end,
        ),
        (
            "a slot that wraps past the end",
            SIZE - MIB,
            2 * MIB,
            past_end,
        ),
        // The default region (4 MiB) is smaller than the frame limit (16 MiB): a longer slot
        // passes the region's end; one longer than the frame limit is a message over it.
        (
            "a slot longer than the region",
            0,
            SIZE + 64 * 1024,
            past_end,
        ),
        ("a slot of 2^64 - 1 bytes", 0, u64::MAX, over_limit),
        (
            "a field of 32 KiB - 1",
            0,
            BIG_FIELD - 1,
            "travel in the frame",
        ),
    ] {
        assert_slot_refused(&server, SIZE, case).await;
    }
    // On a region of 3 MiB (an offer under the server's size is agreed as it is), whose size
    // does not divide 2^64: the last slot before positions run out starts at offset 0 of the
    // region, so only its end overflows. (On a region of a power of two, the end of the region
    // comes first.)
    let odd = 3 * MIB;
    for case in [
        ("a slot longer than the region", 0, odd + 4096, past_end),
        (
            "a slot whose end overflows",
            0u64.wrapping_sub(MIB),
            2 * MIB,
            "overflows",
        ),
    ] {
        assert_slot_refused(&server, odd, case).await;
    }
    assert_unharmed(&mut server, &watched, "slots outside the region").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_that_start_before_the_end_of_the_last_one_close_the_connection() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;
    let before_end = "starts before the end of the last one";

    // Two fields of one frame, the second starting inside the first.
    let mut lane = LaneConnection::open(&server, offer()).await;
    let region = sealed_region(SIZE);
    let frame = lane_frame(&[(0, MIB), (MIB / 2, MIB)], &echo_smalls(1, MIB));
    lane.send_with_fds(&frame, &[region.as_fd()])
        .await
        .expect("the server reads");
    lane.assert_closed_unanswered("two overlapping fields in one frame")
        .await;
    assert_logged(&server, before_end);

    // The same slot twice.
    let (mut lane, _region) = lane_in_use(&server).await;
    lane.send(&lane_echo_frame(2, 0, MIB))
        .await
        .expect("the server reads");
    lane.assert_closed_unanswered("a slot sent twice").await;
    assert_logged(&server, before_end);

    // Later frames: one starting at the last one's end and one after a gap are answered; one
    // starting a byte before the last one's end is not.
    let (mut lane, region) = lane_in_use(&server).await;
    let mut pos = MIB;
    for (id, gap) in [(2, 0), (3, 1)] {
        pos += gap;
        let payload = echo_payload(id, MIB as usize);
        write_slot(&region, SIZE, pos, &payload);
        lane.send(&lane_echo_frame(id, pos, MIB))
            .await
            .expect("the server reads");
        assert_echoed(lane.next_echo().await, id, &payload);
        pos += MIB;
    }
    lane.send(&lane_echo_frame(4, pos - 1, MIB))
        .await
        .expect("the server reads");
    lane.assert_closed_unanswered("a slot starting a byte before the last one's end")
        .await;
    assert_logged(&server, before_end);
    assert_unharmed(&mut server, &watched, "overlapping slots").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_writing_into_its_slots_while_the_server_copies_gets_every_answer() {
    const ROUNDS: u64 = 24;
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;

    let (mut lane, region) = lane_in_use(&server).await;
    // Another thread overwrites every slot with alternating garbage, as fast as it can, for as
    // long as the calls go on: the server copies whatever is there at the moment. A payload is
    // any bytes, so every call must still be answered, with bytes of the right length.
    let stop = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let region = region.try_clone().expect("the region can be shared");
        let stop = stop.clone();
        std::thread::spawn(move || {
            let garbage = [vec![0x00; MIB as usize], vec![0xff; MIB as usize]];
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pos = (writes % 4) * MIB;
                write_slot(&region, SIZE, pos, &garbage[(writes % 2) as usize]);
                writes += 1;
            }
            writes
        })
    };
    let mut changed = 0;
    for id in 2..2 + ROUNDS {
        let pos = id * MIB;
        lane.send(&lane_echo_frame(id, pos, MIB))
            .await
            .expect("the server reads");
        let answer = lane
            .next_echo()
            .await
            .unwrap_or_else(|| panic!("the server closed the connection at request {id}"));
        assert_eq!(answer.request_id, id);
        match answer.message {
            Ok(EchoResponse::Echo(bytes)) => {
                assert_eq!(
                    bytes.len() as u64,
                    MIB,
                    "request {id} was echoed a wrong length"
                );
                changed += usize::from(bytes.iter().any(|&b| b != bytes[0]));
            }
            other => panic!("request {id} got {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = scribbler.join().expect("the scribbler ends");
    eprintln!("{writes} slot writes during the calls; {changed} answers torn between two writes");
    assert!(writes > ROUNDS, "the scribbler hardly ran: {writes} writes");
    drop((lane, region));
    assert_unharmed(&mut server, &watched, "a peer scribbling over its slots").await;
}

/// Speaks the lane from another process, so that it can be killed with SIGKILL mid-transfer:
/// connects to argv[1], sends the hello in the file argv[2], reads the reply, makes a sealed
/// region of argv[4] bytes, then sends 1 MiB echo requests through it (their small bytes are
/// the argv[5]-byte records of the file argv[3]) as fast as the server takes them, reading the
/// answers in another thread. Says `ready` after the first few.
const KILLED_LANE_CLIENT: &str = r#"
import fcntl, os, socket, struct, sys, threading
path, hello, smalls_file = sys.argv[1], sys.argv[2], sys.argv[3]
size, smalls_len = int(sys.argv[4]), int(sys.argv[5])
MIB = 1 << 20
smalls = open(smalls_file, "rb").read()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(open(hello, "rb").read())
def recv_exact(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            sys.exit("the server closed the connection")
        data += chunk
    return data
recv_exact(struct.unpack(">I", recv_exact(4))[0])
fd = os.memfd_create("hostile-lane", os.MFD_ALLOW_SEALING)
os.ftruncate(fd, size)
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
def drain():
    while s.recv(1 << 16):
        pass
threading.Thread(target=drain, daemon=True).start()
payload = bytes(range(256)) * (MIB // 256)
for k in range(len(smalls) // smalls_len):
    pos = k * MIB
    os.pwrite(fd, payload, pos % size)
    frame = struct.pack(">IBBI", 0, 1, 1, smalls_len) + struct.pack("<QQ", pos, MIB)
    frame += smalls[k * smalls_len:(k + 1) * smalls_len]
    if k == 0:
        sent = socket.send_fds(s, [frame], [fd])
        s.sendall(frame[sent:])
    else:
        s.sendall(frame)
    if k == 4:
        print("ready", flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_peer_killed_or_gone_mid_transfer_leaves_no_descriptor_mapping_or_memory_behind() {
    const REQUESTS: u64 = 10_000;
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;

    // A real process, SIGKILLed while its requests stream through the lane.
    let script = dir.path().join("killed_lane_client.py");
    std::fs::write(&script, KILLED_LANE_CLIENT).expect("the script is written");
    let hello = dir.path().join("hello.bin");
    std::fs::write(&hello, lane_hello_frame("echo", offer())).expect("written");
    let smalls: Vec<Vec<u8>> = (1..=REQUESTS).map(|id| echo_smalls(id, MIB)).collect();
    let smalls_len = smalls[0].len();
    assert!(
        smalls.iter().all(|s| s.len() == smalls_len),
        "fixed-size records"
    );
    let smalls_file = dir.path().join("smalls.bin");
    std::fs::write(&smalls_file, smalls.concat()).expect("written");
    let socket = server.endpoint().unix_path().expect("a unix endpoint");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(socket)
        .arg(&hello)
        .arg(&smalls_file)
        .arg(SIZE.to_string())
        .arg(smalls_len.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (this test needs it on PATH)");
    tests::wait_for_ready_line(&mut child, "lane client").await;
    let pid = server.pid();
    tests::wait_for(
        SETTLE_TIMEOUT,
        "the server to map the client's region and its own",
        || {
            !mapped_regions(pid, TEST_REGION_NAME).is_empty()
                && !mapped_regions(pid, LIBRARY_REGION_NAME).is_empty()
        },
    );
    child.kill().expect("the client can be killed");
    child.wait().expect("the killed client is reaped");
    assert!(
        child.try_wait().expect("reaped").is_some(),
        "the client is gone"
    );
    wait_for_no_region(&server, "a lane client was killed");

    // Gone by hand: right after its region's descriptor, with half a lane frame; and with the
    // descriptor attached to an ordinary call, never followed by a lane frame.
    let frame = lane_echo_frame(1, 0, MIB);
    for cut in [1, frame.len() / 2, frame.len()] {
        let mut lane = LaneConnection::open(&server, offer()).await;
        let region = sealed_region(SIZE);
        lane.send_with_fds(&frame[..cut], &[region.as_fd()])
            .await
            .expect("the server reads");
        drop(lane);
    }
    let mut lane = LaneConnection::open(&server, offer()).await;
    let region = sealed_region(SIZE);
    lane.send_with_fds(&echo_request_frame(1, b"small".to_vec()), &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(lane.next_echo().await, 1, b"small");
    drop(lane);

    assert_unharmed(
        &mut server,
        &watched,
        "lane clients killed or gone mid-transfer",
    )
    .await;
}

/// Waits until the server's resident memory has stayed within 1 MiB for a quarter of a second
/// (it has taken in what it was sent), for at most [`SETTLE_TIMEOUT`].
async fn wait_for_steady_memory(pid: u32) {
    const STEADY: Duration = Duration::from_millis(250);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = resident_bytes(pid);
    let mut since = Instant::now();
    while since.elapsed() < STEADY {
        assert!(
            Instant::now() < deadline,
            "the server's memory kept changing for {SETTLE_TIMEOUT:?}"
        );
        tokio::time::sleep(tests::POLL_INTERVAL).await;
        let now = resident_bytes(pid);
        if now.abs_diff(last) > MIB {
            last = now;
            since = Instant::now();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_nor_gives_slots_back_costs_a_bounded_amount_of_memory() {
    /// More calls than the server's region holds answers (4), fewer than the in-flight limit.
    const CALLS: u64 = DEFAULT_SHM_SIZE / MIB + 24;
    /// The answers the server puts in its region while none come back: as many as it may
    /// write ahead of the client (`LANE_AHEAD`, 1 MiB: one), though the region has room for 4.
    const IN_REGION: u64 = LANE_AHEAD / MIB;
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;

    let mut lane = LaneConnection::open(&server, offer()).await;
    lane.keep_server_slots();
    let region = sealed_region(SIZE);
    // Every slot holds the same payload: a client that reads nothing cannot know when the
    // server has copied a slot, so its calls go round the region over slots that may not have
    // been copied yet, and must find the same bytes there whenever they are.
    let payload = echo_payload(0, MIB as usize);
    for slot in 0..SIZE / MIB {
        write_slot(&region, SIZE, slot * MIB, &payload);
    }
    for id in 0..CALLS {
        let frame = lane_echo_frame(id, id * MIB, MIB);
        if id == 0 {
            lane.send_with_fds(&frame, &[region.as_fd()]).await
        } else {
            lane.send(&frame).await
        }
        .expect("the server reads");
    }

    // Nothing read: the server's region takes IN_REGION answers, the rest wait for the socket.
    // The server then holds both regions (each mapped in it) and those answers, as a peer that
    // sent the same calls through the socket would make it hold them (the in-flight limit bounds
    // them), and no more.
    wait_for_steady_memory(server.pid()).await;
    assert_bystander_served(&watched.bystander).await;
    assert_serves_calls(&server.connector()).await;
    let waiting = CALLS - IN_REGION;
    let budget = 2 * SIZE + waiting * MIB + 16 * MIB;
    watched
        .baseline
        .assert_rss_within(budget, "a peer that never reads its answers");

    // Read at last, still giving nothing back: every answer arrives, the first IN_REGION
    // through the server's region, the rest through the socket (the next after one wait for
    // room of `LANE_WAIT`, the others without waiting).
    for id in 0..CALLS {
        assert_echoed(lane.next_echo().await, id, &payload);
    }
    assert_eq!(
        lane.lane_answers() as u64,
        IN_REGION,
        "answers through the region"
    );
    drop(lane);
    assert_unharmed(&mut server, &watched, "a peer that never gave slots back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_that_are_not_a_usable_region_close_only_that_connection() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;
    let payload = echo_payload(1, MIB as usize);
    let frame = lane_echo_frame(1, 0, MIB);

    let only_shrink = unsealed_region(SIZE);
    rustix::fs::fcntl_add_seals(&only_shrink, SealFlags::SHRINK).expect("sealed");
    let on_disk = std::fs::File::create(dir.path().join("region")).expect("a file");
    on_disk.set_len(SIZE).expect("sized");
    let (socket, _other_end) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    let dev_null = std::fs::File::open("/dev/null").expect("/dev/null opens");
    let sealed = [sealed_region(SIZE), sealed_region(SIZE)];
    // More than a read has room for (4): the kernel closes the rest, and the server sees the
    // message was cut short.
    let many: Vec<OwnedFd> = (0..16).map(|_| sealed_region(SIZE)).collect();
    let many: Vec<BorrowedFd<'_>> = many.iter().map(AsFd::as_fd).collect();
    let wrong_size = format!("not the {SIZE} agreed");
    let cases: Vec<(&str, OwnedFd, &str)> = vec![
        (
            "an unsealed memfd",
            unsealed_region(SIZE),
            "not sealed against shrinking and growing",
        ),
        (
            "a memfd sealed only against shrinking",
            only_shrink,
            "not sealed against shrinking and growing",
        ),
        (
            "a memfd a page smaller than agreed",
            sealed_region(SIZE - 4096),
            &wrong_size,
        ),
        (
            "a memfd a page larger than agreed",
            sealed_region(SIZE + 4096),
            &wrong_size,
        ),
        ("a file on disk", on_disk.into(), "not a sealable memfd"),
        ("a socket", socket.into(), "not a memory file"),
        ("/dev/null", dev_null.into(), "not a memory file"),
    ];
    for (what, fd, reason) in cases {
        write_slot(&sealed[0], SIZE, 0, &payload);
        let mut lane = LaneConnection::open(&server, offer()).await;
        if rustix::fs::fstat(&fd).is_ok_and(|stat| stat.st_size as u64 >= MIB) {
            let _ = rustix::io::pwrite(&fd, &payload, 0);
        }
        lane.send_with_fds(&frame, &[fd.as_fd()])
            .await
            .expect("the server reads");
        lane.assert_closed_unanswered(what).await;
        assert_logged(&server, reason);
    }

    let several: [(&str, &[BorrowedFd<'_>], &str); 2] = [
        (
            "two regions in one message",
            &[sealed[0].as_fd(), sealed[1].as_fd()],
            "a descriptor it may not",
        ),
        (
            "sixteen descriptors in one message",
            &many,
            "more descriptors in one message than it may",
        ),
    ];
    for (what, fds, reason) in several {
        let mut lane = LaneConnection::open(&server, offer()).await;
        lane.send_with_fds(&frame, fds)
            .await
            .expect("the server reads");
        lane.assert_closed_unanswered(what).await;
        assert_logged(&server, reason);
    }

    // A second region once the first is in use.
    let (mut lane, _first) = lane_in_use(&server).await;
    let second = sealed_region(SIZE);
    lane.send_with_fds(&lane_echo_frame(2, MIB, MIB), &[second.as_fd()])
        .await
        .expect("the server reads");
    lane.assert_closed_unanswered("a second region").await;
    assert_logged(&server, "a descriptor it may not");

    // A second descriptor while the first waits for its lane frame (both sent with ordinary
    // calls, the first answered).
    let mut lane = LaneConnection::open(&server, offer()).await;
    lane.send_with_fds(
        &echo_request_frame(1, b"one".to_vec()),
        &[sealed[0].as_fd()],
    )
    .await
    .expect("the server reads");
    assert_echoed(lane.next_echo().await, 1, b"one");
    lane.send_with_fds(
        &echo_request_frame(2, b"two".to_vec()),
        &[sealed[1].as_fd()],
    )
    .await
    .expect("the server reads");
    lane.assert_closed_unanswered("a second descriptor while one is pending")
        .await;
    assert_logged(&server, "a descriptor it may not");

    // A lane frame before any descriptor.
    let mut lane = LaneConnection::open(&server, offer()).await;
    lane.send(&frame).await.expect("the server reads");
    lane.assert_closed_unanswered("a lane frame before any descriptor")
        .await;
    assert_logged(&server, "came before the region's descriptor");

    // A descriptor sent with the hello, before the lane is agreed: the kernel drops it unread,
    // so the lane frame after it has no region.
    let mut stream = connect(&server).await;
    send_with_fds(
        &mut stream,
        &lane_hello_frame("echo", offer()),
        &[sealed[0].as_fd()],
    )
    .await
    .expect("the server reads");
    let (reply, stream) = read_reply(stream).await;
    let mut lane = LaneConnection::accepted(reply, stream);
    lane.send(&frame).await.expect("the server reads");
    lane.assert_closed_unanswered("a lane frame whose region came with the hello")
        .await;
    assert_logged(&server, "came before the region's descriptor");

    assert_unharmed(
        &mut server,
        &watched,
        "descriptors that are no usable region",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_on_a_connection_without_the_lane_is_dropped_and_the_connection_goes_on() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let watched = watch(&server).await;

    let mut plain = LaneConnection::open(&server, ShmSize::OFF).await;
    assert!(plain.shm().is_off(), "a lane the client did not offer");
    plain
        .send(&echo_request_frame(1, b"warm".to_vec()))
        .await
        .expect("the server reads");
    assert_echoed(plain.next_echo().await, 1, b"warm");
    let with_connection = Baseline::measure(server.pid()).await.fds();

    // A region attached to a small call, to a 1 MiB call, and to the middle of a call.
    let region = sealed_region(SIZE);
    plain
        .send_with_fds(&echo_request_frame(2, b"small".to_vec()), &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(plain.next_echo().await, 2, b"small");
    let large = echo_payload(3, MIB as usize);
    plain
        .send_with_fds(&echo_request_frame(3, large.clone()), &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(plain.next_echo().await, 3, &large);
    let split = echo_request_frame(4, b"split".to_vec());
    plain.send(&split[..10]).await.expect("the server reads");
    plain
        .send_with_fds(&split[10..], &[region.as_fd()])
        .await
        .expect("the server reads");
    assert_echoed(plain.next_echo().await, 4, b"split");
    assert_eq!(plain.lane_answers(), 0, "an answer came through a region");

    assert_eq!(
        open_fds(server.pid()),
        with_connection,
        "the server's descriptor count changed"
    );
    assert!(
        !fd_targets(server.pid())
            .iter()
            .any(|target| target.contains(TEST_REGION_NAME)),
        "the server kept a descriptor sent where there is no lane"
    );
    assert!(mapped_regions(server.pid(), TEST_REGION_NAME).is_empty());
    assert_bystander_served(&watched.bystander).await;
    drop(plain);
    watched
        .baseline
        .assert_restored(&server, "descriptors sent without a lane")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lane_frames_on_a_connection_without_the_lane_are_refused() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;

    let region = sealed_region(SIZE);
    write_slot(&region, SIZE, 0, &echo_payload(1, MIB as usize));
    for (what, frame) in [
        ("a fields frame", lane_echo_frame(1, 0, MIB)),
        ("a released frame", released_frame(0)),
    ] {
        let mut plain = LaneConnection::open(&server, ShmSize::OFF).await;
        plain
            .send_with_fds(&frame, &[region.as_fd()])
            .await
            .expect("the server reads");
        plain
            .assert_closed_unanswered(&format!("{what} without a lane"))
            .await;
    }
    assert_unharmed(&mut server, &watched, "lane frames without a lane").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lane_frames_and_false_releases_close_only_that_connection() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let watched = watch(&server).await;

    let smalls = echo_smalls(1, MIB);
    let slots = |count: u64| (0..count).map(|i| (i * MIB, MIB)).collect::<Vec<_>>();
    let mut unknown_kind = released_frame(0);
    unknown_kind[4] = 9;
    let cases = [
        ("no field", lane_frame(&[], &smalls), "names 0 fields"),
        (
            "65 fields",
            lane_frame(&slots(65), &smalls),
            "names 65 fields",
        ),
        (
            "32 KiB + 1 small bytes",
            lane_frame(&slots(1), &vec![0; BIG_FIELD as usize + 1]),
            "small bytes (at most",
        ),
        ("an unknown kind", unknown_kind, "unknown kind 9"),
        (
            "a release before the server sent a region",
            released_frame(0),
            "never sent",
        ),
    ];
    for (what, frame, reason) in cases {
        let mut lane = LaneConnection::open(&server, offer()).await;
        let region = sealed_region(SIZE);
        lane.send_with_fds(&frame, &[region.as_fd()])
            .await
            .expect("the server reads");
        lane.assert_closed_unanswered(what).await;
        assert_logged(&server, reason);
    }

    // Releases of the server's slots: past what it handed out, and going backwards, alone (the
    // true report `lane_in_use` sent first settled by a call answered after it) and right after
    // the true report, in one write (the server checks every report, not only the last it read).
    {
        let (mut lane, _region) = lane_in_use(&server).await;
        let out = lane
            .server_slots_released()
            .expect("one answer came through the region");
        let both = [released_frame(out), released_frame(0)].concat();
        lane.send(&both).await.expect("the server reads");
        lane.assert_closed_unanswered("backwards in one write")
            .await;
        assert_logged(&server, "after giving back up to");
    }
    for (what, past) in [("past what is out", true), ("backwards", false)] {
        let (mut lane, _region) = lane_in_use(&server).await;
        assert_eq!(lane.lane_answers(), 1, "the answer came through the socket");
        let out = lane
            .server_slots_released()
            .expect("one answer came through the region");
        lane.send(&echo_request_frame(2, b"settle".to_vec()))
            .await
            .expect("the server reads");
        assert_echoed(lane.next_echo().await, 2, b"settle");
        let through = if past { out + 1 } else { 0 };
        lane.send(&released_frame(through))
            .await
            .expect("the server reads");
        lane.assert_closed_unanswered(what).await;
        assert_logged(&server, "the peer gave back slots up to");
    }
    assert_unharmed(&mut server, &watched, "malformed lane frames").await;
}
