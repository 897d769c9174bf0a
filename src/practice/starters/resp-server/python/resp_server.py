"""Your Redis-speaking server, for the `resp-server` step (lesson 13).

Read first: the book's "Lesson 13: speaking Redis", sections "Typed replies"
(13-resp-server.md#typed-replies), "Binary-safe keys and values"
(13-resp-server.md#binary-safe-keys-and-values), "How a request arrives"
(13-resp-server.md#how-a-request-arrives), "Inline commands" (13-resp-server.md#inline-commands)
and "A length that lies" (13-resp-server.md#a-length-that-lies); the whole protocol is in
13-resp-server.md#going-deeper-the-protocol-in-one-place. What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
    workbook check resp-server -- python3 resp_server.py --port {port}
Check it again on every save:
    workbook check --watch resp-server -- python3 resp_server.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    resp-server: python3 resp_server.py --port {port}
Then try it with `redis-cli -p PORT` (13-resp-server.md#pointing-redis-cli-at-your-own-server).

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket
import threading

MAX_BULK = 512 * 1024 * 1024  # the longest key or value accepted, as Redis
MAX_ELEMENTS = 1024 * 1024  # the most elements in one request


class Incomplete(Exception):
    """The buffer ends before the request does: read more and parse again."""


class ProtocolError(Exception):
    """The bytes cannot be a request: reply -ERR Protocol error: ... and close."""


def parse_request(buffer):
    """One request from the front of `buffer` (bytes): (list of bytes arguments, bytes used).

    Raises Incomplete if the request has not all arrived, ProtocolError if it cannot be one.
    """
    raise NotImplementedError(
        "b'*': the count up to b'\\r\\n' (check it against MAX_ELEMENTS), then for each element "
        "b'$', the length up to b'\\r\\n' (check it against MAX_BULK before waiting for the bytes), "
        "exactly that many bytes (never look for \\r\\n inside them), then b'\\r\\n'. Anything else "
        "first: an inline command, one line split at spaces (13-resp-server.md#inline-commands)"
    )


def execute(store, args):
    """The reply, as bytes, to one request (13-resp-server.md#typed-replies), and whether to close
    the connection after it (QUIT). Command names take any letter case."""
    raise NotImplementedError(
        "SET k v -> b'+OK\\r\\n'; GET k -> b'$<len>\\r\\n<value>\\r\\n' or b'$-1\\r\\n'; DEL/EXISTS k... -> "
        "b':<n>\\r\\n'; PING -> b'+PONG\\r\\n'; PING msg and ECHO msg -> msg as a bulk string; QUIT -> b'+OK\\r\\n' "
        "and close; an unknown command or a wrong number of arguments -> b'-ERR <reason>\\r\\n', and go on"
    )


def serve(conn, store, lock):
    """Answer every request on `conn` until the client closes."""
    buffer = b""
    raise NotImplementedError(
        "loop: data = conn.recv(65536); b'' means the client closed; buffer += data; then while "
        "parse_request(buffer) returns a request: with lock: reply, close = execute(store, args); "
        "conn.sendall(reply), drop the bytes used, and stop after QUIT; Incomplete: read more; "
        "ProtocolError: send -ERR Protocol error and close (13-resp-server.md#how-a-request-arrives)"
    )


def parse_args():
    parser = argparse.ArgumentParser(description="a server that speaks RESP, the Redis protocol")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65443, help="0 = any free port")
    return parser.parse_args()


def main():
    args = parse_args()
    store, lock = {}, threading.Lock()
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR; bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError(
            "conn, addr = listener.accept(); threading.Thread(target=serve, args=(conn, store, lock), "
            "daemon=True).start()"
        )


if __name__ == "__main__":
    main()
