#!/usr/bin/env python3
"""Calls the built-in kv service of an rpc-server through librpc_ffi with ctypes (no compiled
extension): kv.set, then kv.get, and prints the value.

Build and run, from the repository root (with rpc-server running):
    cargo build -p rpc-ffi
    python3 examples/python/call.py              # the server named rpc, default runtime dir
    python3 examples/python/call.py unix:/run/user/1000/rpc.sock   # or a name, or an endpoint

A second argument names the runtime directory to find a server name in. RPC_FFI_LIB names the
library to load (default: target/debug/librpc_ffi.so under the repository root).
"""

import ctypes
import json
import os
import sys
from pathlib import Path

RPC_OK = 0  # the status codes are listed in rpc-ffi/include/rpc.h


class RpcError(Exception):
    """A failed rpc_connect or rpc_call: the status code and the library's message."""

    def __init__(self, code, message):
        super().__init__(f"code {code}: {message}")
        self.code = code


def load_library():
    default = Path(__file__).resolve().parents[2] / "target" / "debug" / "librpc_ffi.so"
    lib = ctypes.CDLL(os.environ.get("RPC_FFI_LIB", str(default)))
    # Strings the library returns are declared c_void_p, not c_char_p: ctypes would copy a
    # c_char_p into a Python bytes and lose the pointer, which rpc_free must get back.
    out = ctypes.POINTER(ctypes.c_void_p)
    lib.rpc_connect.restype = ctypes.c_void_p
    lib.rpc_connect.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32, out]
    lib.rpc_call.restype = ctypes.c_int
    lib.rpc_call.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32, out, out,
    ]
    lib.rpc_free.restype = None
    lib.rpc_free.argtypes = [ctypes.c_void_p]
    lib.rpc_close.restype = None
    lib.rpc_close.argtypes = [ctypes.c_void_p]
    return lib


class Connection:
    """An rpc_conn handle; close() (or a with block) frees it."""

    def __init__(self, lib, target, runtime_dir=None, timeout_ms=0):
        self._lib = lib
        error = ctypes.c_void_p()
        dir_bytes = runtime_dir.encode() if runtime_dir is not None else None
        self._conn = lib.rpc_connect(target.encode(), dir_bytes, timeout_ms, ctypes.byref(error))
        if not self._conn:
            raise RpcError(-1, self._take(error))

    def call(self, method, args, timeout_ms=0):
        """Calls "service.method" with a dict of named arguments; returns the result, decoded."""
        result = ctypes.c_void_p()
        error = ctypes.c_void_p()
        status = self._lib.rpc_call(
            self._conn, method.encode(), json.dumps(args).encode(), timeout_ms,
            ctypes.byref(result), ctypes.byref(error),
        )
        text = self._take(result)
        message = self._take(error)
        if status != RPC_OK:
            raise RpcError(status, message)
        return json.loads(text)

    def _take(self, pointer):
        """The string at pointer (NULL: None), freed with rpc_free."""
        if not pointer.value:
            return None
        try:
            return ctypes.string_at(pointer.value).decode()
        finally:
            self._lib.rpc_free(pointer.value)

    def close(self):
        if self._conn:
            self._lib.rpc_close(self._conn)
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "rpc"  # rpc-server's default name
    runtime_dir = sys.argv[2] if len(sys.argv) > 2 else None
    try:
        with Connection(load_library(), target, runtime_dir) as conn:
            # kv.set returns a Result: {"Ok": previous value or None} or {"Err": ...}.
            answer = conn.call("kv.set", {"key": "greeting", "value": "hello from Python"})
            if "Ok" not in answer:
                print(f"call.py: kv.set returned an error: {answer['Err']}", file=sys.stderr)
                return 1
            print(json.dumps(conn.call("kv.get", {"key": "greeting"})))
    except RpcError as err:
        print(f"call.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
