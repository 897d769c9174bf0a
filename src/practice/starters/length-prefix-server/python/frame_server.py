"""Your frame echo server, for the `length-prefix-server` step (lesson 04).

Read first: the book's "Lesson 04: length-prefixed framing", sections "Network byte order",
"The code" and "What goes wrong, and how to see it". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
    workbook check length-prefix-server -- python3 frame_server.py --port {port}
Check it again on every save:
    workbook check --watch length-prefix-server -- python3 frame_server.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    length-prefix-server: python3 frame_server.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket

MAX_FRAME = 1024 * 1024  # the largest payload accepted: 1 MiB


def parse_args():
    parser = argparse.ArgumentParser(description="a length-prefixed frame echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65434, help="0 = any free port")
    return parser.parse_args()


def read_exactly(conn, n):
    """Exactly n bytes, or None if the stream ends first (a frame can arrive in many pieces)."""
    raise NotImplementedError("call conn.recv(n - len(data)) until you have n bytes; b'' first means None")


def serve(conn):
    """Echo every frame as a frame; return (closing the connection) on a header above MAX_FRAME
    or a stream that ends inside a frame."""
    raise NotImplementedError(
        "loop: header = read_exactly(conn, 4); length = int.from_bytes(header, 'big'); check it "
        "against MAX_FRAME before reading; payload = read_exactly(conn, length); "
        "conn.sendall(header + payload)"
    )


def main():
    args = parse_args()
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR; bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError("conn, addr = listener.accept(); serve(conn); conn.close()")


if __name__ == "__main__":
    main()
