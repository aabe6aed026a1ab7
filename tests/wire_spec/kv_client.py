#!/usr/bin/env python3
"""A kv client written from docs/wire.md alone, to prove the spec is enough to write one.

Usage: kv_client.py SOCKET KEY VALUE [SERVICE]

Connects to the Unix socket SOCKET, reads the `kv` service's schema from `introspect` (method
indices, argument and result types, schema hash), then, on a connection to SERVICE (default
`kv`), opens the stream `watch(KEY)` and grants it credit, calls `set(KEY, VALUE)`, reads the
`Set` event the stream sends, cancels the stream, calls `get(KEY)` and prints the value `get`
returned.

Standard library only. Exit codes: 0 the value came back; 1 the server refused the connection
or failed a call; 2 the server's bytes do not follow the spec; 3 no connection.
"""

import os
import socket
import struct
import sys

MAGIC = b"LRPC"
PROTOCOL_VERSION = 5
STREAM_WINDOW = 256 * 1024
MAX_HANDSHAKE_FRAME = 4096
# Our own frame limit; the connection honours the smaller of this and the server's (spec §2).
OUR_MAX_FRAME = 16 * 1024 * 1024
DEADLINE_SECS = 10

REFUSALS = [
    "UnknownService",
    "UnsupportedVersion",
    "MissingToken",
    "BadToken",
    "PeerNotAllowed",
    "TooManyConnections",
    "TooManyForPeer",
    "Malformed",
    "ShuttingDown",
]

# Type's variants, by index (spec §7.2).
TYPE_NAMES = [
    "Unit", "Bool", "I8", "I16", "I32", "I64", "I128", "U8", "U16", "U32", "U64", "U128",
    "F32", "F64", "Char", "Str", "Bytes", "Option", "Seq", "Map", "Tuple", "Array", "Result",
    "Named",
]


class Mismatch(Exception):
    """The peer's bytes do not follow the spec."""


class Refused(Exception):
    """The server refused the handshake."""


class CallFailed(Exception):
    """The server answered a call with an error."""


# --- body encoding: bincode, fixed-width little-endian integers (spec §3) ----------------------

def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


def string(text):
    data = text.encode("utf-8")
    return u64(len(data)) + data


class Reader:
    """Reads one body; every read is bounded by the bytes the body holds."""

    def __init__(self, body):
        self.body = body
        self.pos = 0

    def take(self, n):
        if n > len(self.body) - self.pos:
            raise Mismatch(f"body ends after {len(self.body)} bytes, {n} more were needed at {self.pos}")
        out = self.body[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        data = self.take(self.u64())
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise Mismatch("a string is not UTF-8") from None

    def option(self, read):
        tag = self.take(1)[0]
        if tag == 0:
            return None
        if tag == 1:
            return read()
        raise Mismatch(f"option tag {tag}, expected 0 or 1")

    def seq(self, read):
        return [read() for _ in range(self.u64())]

    def end(self):
        if self.pos != len(self.body):
            raise Mismatch(f"{len(self.body) - self.pos} bytes left over after the message")


# --- frames (spec §2) ----------------------------------------------------------------------

def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise Mismatch(f"the server closed the connection with {n - len(data)} bytes of a frame unsent")
        data += chunk
    return bytes(data)


def read_frame(sock, limit):
    first = sock.recv(1)
    if not first:
        raise Mismatch("the server closed the connection instead of answering (it does so on a malformed frame)")
    length = struct.unpack(">I", first + recv_exact(sock, 3))[0]
    if length > limit:
        raise Mismatch(f"the server sent a frame of {length} bytes, over the limit of {limit}")
    return recv_exact(sock, length)


def send_frame(sock, body):
    sock.sendall(struct.pack(">I", len(body)) + body)


# --- handshake (spec §4) -------------------------------------------------------------------

def read_refusal(r):
    index = r.u32()
    if index >= len(REFUSALS):
        raise Mismatch(f"refusal variant {index} is not in the spec")
    name = REFUSALS[index]
    if name == "UnknownService":
        requested = r.string()
        available = r.seq(r.string)
        return f"unknown service `{requested}` (this server hosts: {', '.join(available)})"
    if name == "UnsupportedVersion":
        return f"unsupported protocol version {r.u16()} (the server speaks version {r.u16()})"
    if name == "PeerNotAllowed":
        return f"peer not allowed: uid {r.u32()} gid {r.u32()}"
    if name in ("TooManyConnections", "TooManyForPeer"):
        return f"{name}: limit {r.u64()}"
    if name == "Malformed":
        return f"malformed handshake: {r.string()}"
    return name


def handshake(sock, service):
    """Sends the hello; returns (frame limit in force, the service's schema hash)."""
    # No token, and no shared-memory lane offered (a u64 0): this client passes no descriptors.
    body = MAGIC + struct.pack(">H", PROTOCOL_VERSION) + string(service) + b"\x00" + u64(0)
    send_frame(sock, body)
    frame = read_frame(sock, MAX_HANDSHAKE_FRAME)
    if frame[:4] != MAGIC:
        raise Mismatch(f"the reply does not start with {MAGIC!r}: {frame[:4]!r}")
    if len(frame) < 6:
        raise Mismatch("the reply has no version")
    version = struct.unpack(">H", frame[4:6])[0]
    r = Reader(frame[6:])
    variant = r.u32()
    if variant == 1:
        reason = read_refusal(r)
        r.end()
        raise Refused(reason)
    if version != PROTOCOL_VERSION:
        raise Mismatch(f"the server speaks protocol version {version}, this client {PROTOCOL_VERSION}")
    if variant != 0:
        raise Mismatch(f"handshake reply variant {variant}, expected 0 (Accepted) or 1 (Refused)")
    r.string()  # the server's version
    max_frame = r.u32()
    if max_frame < 4096:
        raise Mismatch(f"the server announced a frame limit of {max_frame}, below 4096")
    schema_hash = r.u64()
    shm = r.u64()
    if shm != 0:
        raise Mismatch(f"the server agreed a shared-memory lane of {shm} bytes, which was not offered")
    r.end()
    return min(max_frame, OUR_MAX_FRAME), schema_hash


# --- calls (spec §5) -----------------------------------------------------------------------

class Connection:
    def __init__(self, path, service):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as err:
            raise ConnectionError(f"cannot connect to {path}: {err.strerror}") from None
        self.limit, self.schema_hash = handshake(self.sock, service)
        self.next_id = 0

    def send_request(self, method_index, args):
        """Sends one request (spec §5.1); returns its id."""
        request_id = self.next_id
        self.next_id += 1
        trace_context = bytes(16) + os.urandom(8) + u32(1)  # trace id, span id, Unsampled
        body = (
            u32(0)  # ClientMessage::Request
            + u64(DEADLINE_SECS) + u32(0)  # deadline: time left
            + trace_context
            + u64(request_id)
            + u32(method_index)
            + b"".join(args)
        )
        if len(body) > self.limit:
            raise CallFailed(f"request of {len(body)} bytes is over the frame limit of {self.limit}")
        send_frame(self.sock, body)
        return request_id

    def call(self, method_index, args):
        """Sends one request; returns a Reader positioned at the method's result value."""
        request_id = self.send_request(method_index, args)
        return self.answer(request_id, method_index)

    def open_stream(self, method_index, args):
        """Opens a stream (spec §5.6): the request, then a grant of our window; returns its id."""
        request_id = self.send_request(method_index, args)
        send_frame(self.sock, u32(2) + u64(request_id) + u64(STREAM_WINDOW))  # Grant
        return request_id

    def cancel(self, request_id):
        trace_context = bytes(16) + u64(0) + u32(1)
        send_frame(self.sock, u32(1) + trace_context + u64(request_id))  # Cancel

    def answer(self, request_id, method_index):
        """Reads the next answer, which must be for `request_id`; returns a Reader positioned at
        the method's result value (for a stream, at its StreamEvent)."""
        return self.answers({request_id: method_index})[1]

    def answers(self, waiting):
        """Reads the next answer, which must be for one of `waiting` (request id -> method index);
        returns its request id and a Reader positioned at the method's result value."""
        r = Reader(read_frame(self.sock, self.limit))
        answered = r.u64()
        if answered not in waiting:
            raise Mismatch(f"answer to request {answered}, only {sorted(waiting)} are in flight")
        method_index = waiting[answered]
        result = r.u32()
        if result == 1:
            kind = r.u32()
            detail = r.string()
            r.end()
            raise CallFailed(f"server error (io kind {kind}): {detail}")
        if result != 0:
            raise Mismatch(f"Result variant {result}, expected 0 or 1")
        variant = r.u32()
        if variant != method_index:
            raise Mismatch(f"answer for method {variant}, method {method_index} was called")
        return answered, r

    def close(self):
        self.sock.close()


# --- introspect: the schema (spec §7) ------------------------------------------------------

def read_type(r, depth=0):
    if depth > 64:
        raise Mismatch("a type nests deeper than 64 levels")
    index = r.u32()
    if index >= len(TYPE_NAMES):
        raise Mismatch(f"Type variant {index} is not in the spec")
    name = TYPE_NAMES[index]
    if name in ("Option", "Seq"):
        return (name, read_type(r, depth + 1))
    if name == "Map":
        return (name, read_type(r, depth + 1), read_type(r, depth + 1))
    if name == "Tuple":
        return (name, tuple(r.seq(lambda: read_type(r, depth + 1))))
    if name == "Array":
        return (name, read_type(r, depth + 1), r.u64())
    if name == "Result":
        return (name, read_type(r, depth + 1), read_type(r, depth + 1))
    if name == "Named":
        return (name, r.string())
    return name


def read_field(r):
    return (r.string(), read_type(r))


def read_shape(r):
    index = r.u32()
    if index == 0:
        return ("Unit",)
    if index == 1:
        return ("Newtype", read_type(r))
    if index == 2:
        return ("Tuple", r.seq(lambda: read_type(r)))
    if index == 3:
        return ("Struct", r.seq(lambda: read_field(r)))
    raise Mismatch(f"Shape variant {index} is not in the spec")


def read_schema(r):
    """A ServiceSchema, and the FNV-1a hash of its bytes with every method's doc emptied."""
    start = r.pos
    hashed = bytearray()
    name = r.string()
    methods = []
    for _ in range(r.u64()):
        method_name = r.string()
        args = r.seq(lambda: read_field(r))
        result = read_type(r)
        streaming = r.take(1)[0]
        if streaming > 1:
            raise Mismatch(f"bool byte {streaming}")
        doc_at = r.pos
        r.string()
        hashed += r.body[start:doc_at] + u64(0)
        start = r.pos
        methods.append((method_name, args, result, bool(streaming)))
    types = {}
    for _ in range(r.u64()):
        type_name = r.string()
        kind = r.u32()
        if kind == 0:
            types[type_name] = ("Struct", read_shape(r))
        elif kind == 1:
            types[type_name] = ("Enum", r.seq(lambda: (r.u32(), r.string(), read_shape(r))))
        else:
            raise Mismatch(f"TypeDef variant {kind} is not in the spec")
    hashed += r.body[start:r.pos]
    digest = 0xCBF29CE484222325
    for byte in hashed:
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return name, methods, types, digest


def kv_schema(path):
    """introspect.describe("kv"): the indices of `get` and `set`, checked, and the hash."""
    conn = Connection(path, "introspect")
    try:
        r = conn.call(1, [string("kv")])  # describe(service)
        schema = r.option(lambda: read_schema(r))
        r.end()
    finally:
        conn.close()
    if schema is None:
        raise Mismatch("the server hosts no `kv` service")
    name, methods, _types, digest = schema
    expected = {
        "get": ([("key", "Str")], ("Option", "Str"), False),
        "set": ([("key", "Str"), ("value", "Str")],
                ("Result", ("Option", "Str"), ("Named", "KvError")), False),
        "watch": ([("prefix", "Str")], ("Named", "KvEvent"), True),
    }
    indices = {}
    for index, (method, args, result, streaming) in enumerate(methods):
        if method in expected:
            if (args, result, streaming) != expected[method]:
                raise Mismatch(f"kv.{method} takes {args} and returns {result} (streaming: "
                               f"{streaming}), not what this client sends")
            indices[method] = index
    missing = set(expected) - set(indices)
    if name != "kv" or missing:
        raise Mismatch(f"the `{name}` schema lacks {sorted(missing)}")
    return indices, digest


def main(argv):
    if len(argv) not in (4, 5):
        print("usage: kv_client.py SOCKET KEY VALUE [SERVICE]", file=sys.stderr)
        return 2
    path, key, value = argv[1:4]
    service = argv[4] if len(argv) == 5 else "kv"
    try:
        indices, digest = kv_schema(path)
        conn = Connection(path, service)
        try:
            if conn.schema_hash != digest:
                raise Mismatch(
                    f"the handshake's schema hash {conn.schema_hash:016x} is not the hash "
                    f"{digest:016x} of the schema introspect sent"
                )
            watch = conn.open_stream(indices["watch"], [string(key)])
            setting = conn.send_request(indices["set"], [string(key), string(value)])
            # The set's answer and the stream's event, in whichever order they come.
            waiting = {setting: indices["set"], watch: indices["watch"]}
            while waiting:
                answered, r = conn.answers(waiting)
                del waiting[answered]
                if answered == setting:
                    outcome = r.u32()  # Result<Option<String>, KvError>
                    if outcome == 1:
                        error = r.u32()
                        limit = r.u64()
                        raise CallFailed(f"kv.set failed: KvError variant {error} (limit {limit})")
                    if outcome != 0:
                        raise Mismatch(f"Result variant {outcome}, expected 0 or 1")
                    r.option(r.string)  # the value replaced
                else:
                    event = r.u32()  # StreamEvent: 0 Item, 1 Lagged, 2 End
                    if event != 0:
                        raise Mismatch(f"StreamEvent variant {event}, expected an Item")
                    change = r.u32()  # KvEvent: 0 Set, 1 Delete
                    seen = (change, r.string(), r.string() if change == 0 else None)
                    if seen != (0, key, value):
                        raise Mismatch(f"kv.watch sent {seen}, not the set just made")
                r.end()
            conn.cancel(watch)

            r = conn.call(indices["get"], [string(key)])
            got = r.option(r.string)
            r.end()
        finally:
            conn.close()
    except Refused as err:
        print(f"kv_client: refused: {err}", file=sys.stderr)
        return 1
    except CallFailed as err:
        print(f"kv_client: call failed: {err}", file=sys.stderr)
        return 1
    except Mismatch as err:
        print(f"kv_client: protocol mismatch: {err}", file=sys.stderr)
        return 2
    except (ConnectionError, OSError) as err:
        print(f"kv_client: {err}", file=sys.stderr)
        return 3
    if got is None:
        print(f"kv_client: kv.get returned nothing for `{key}` just after set", file=sys.stderr)
        return 1
    print(got)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
