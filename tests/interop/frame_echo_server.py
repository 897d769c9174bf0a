"""A frame echo server in plain Python, written from lesson 04's description alone.

Each frame is a 4-byte big-endian length, then that many payload bytes. Every frame is answered
with a frame holding the same payload. A header announcing more than 1 MiB, or a stream that ends
inside a frame, closes that connection; the server keeps serving the next client.

    python3 tests/interop/frame_echo_server.py [--port PORT]   # default 65434; 0 = any free port
    cargo run --bin 04_length_prefix -- send --port PORT hello world
"""

import argparse
import socket

# ANCHOR: read_frames
MAX_FRAME = 1024 * 1024


def recv_exactly(conn, n):
    """Reads until n bytes have arrived or the stream ends; returns what arrived."""
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(min(n - len(data), 65536))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def echo_frames(conn):
    while True:
        header = recv_exactly(conn, 4)
        if not header:
            return "closed the connection"
        if len(header) < 4:
            return f"stream ended inside a header ({len(header)} of 4 bytes)"
        length = int.from_bytes(header, "big")
        if length > MAX_FRAME:
            return f"header announces {length} bytes, more than {MAX_FRAME}"
        payload = recv_exactly(conn, length)
        if len(payload) < length:
            return f"stream ended inside a frame ({len(payload)} of {length} bytes)"
        conn.sendall(len(payload).to_bytes(4, "big") + payload)
# ANCHOR_END: read_frames


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int, nargs="?", help="the same as --port")
    parser.add_argument("--port", type=int, dest="port_option")
    args = parser.parse_args()
    port = args.port_option if args.port_option is not None else args.port
    if port is None:
        port = 65434
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    host, port = server.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    while True:
        conn, peer = server.accept()
        with conn:
            conn.settimeout(30)
            try:
                why = echo_frames(conn)
            except OSError as err:
                why = str(err)
            print(f"{peer[0]}:{peer[1]}: {why}", flush=True)


if __name__ == "__main__":
    main()
