"""A frame client in plain Python, written from lesson 04's description alone: sends each
argument as a frame (4-byte big-endian length, then the bytes) and prints each framed reply.

    cargo run --bin 04_length_prefix -- server                         # terminal 1
    python3 tests/interop/frame_client.py --port 65434 hello "" world   # terminal 2
"""

import argparse
import socket
import sys


def recv_exactly(conn, n):
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            sys.exit(f"error: the server closed the connection after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65434)
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args()
    with socket.create_connection((args.host, args.port), timeout=10) as conn:
        for message in args.messages:
            payload = message.encode()
            conn.sendall(len(payload).to_bytes(4, "big") + payload)
            header = recv_exactly(conn, 4)
            reply = recv_exactly(conn, int.from_bytes(header, "big"))
            print(f"{header.hex(' ')} {reply!r}")
        conn.shutdown(socket.SHUT_WR)
        if conn.recv(1):
            sys.exit("error: the server sent more than it was asked for")


if __name__ == "__main__":
    main()
