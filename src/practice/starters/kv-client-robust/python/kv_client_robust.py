"""Your robust key-value client, for the `kv-client-robust` step (lesson 09).

Read first: the book's "Lesson 09: a client that survives the network", sections "The code" and
"What goes wrong, and how to see it". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in and adds the
command's words, like `GET a`, at the end):
    workbook check kv-client-robust -- python3 kv_client_robust.py --port {port}
Check it again on every save:
    workbook check --watch kv-client-robust -- python3 kv_client_robust.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    kv-client-robust: python3 kv_client_robust.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket
import sys
import time

DEADLINE = 6.0  # seconds for the whole command, every attempt and every wait included
ATTEMPTS = 4


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value client that retries what is safe to retry")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65433)
    parser.add_argument("words", nargs="+")
    return parser.parse_args()


def attempt(host, port, line, deadline):
    """One connection: send the line, return the reply line. Raises OSError on a refusal, a reset,
    a timeout, or a stream that ends before the reply."""
    raise NotImplementedError(
        "socket.create_connection((host, port), timeout=<time left before deadline>); sendall(line); "
        "recv until the \\n, setting the timeout to the time left before each recv; b'' first: raise "
        "ConnectionResetError"
    )


def main():
    args = parse_args()
    line = (" ".join(args.words) + "\n").encode()
    deadline = time.monotonic() + DEADLINE
    raise NotImplementedError(
        "call attempt() up to ATTEMPTS times while time is left, sleeping a little (more each time) "
        "between attempts, but retry only a GET: it is safe to repeat; print the reply and exit 1 if "
        "it starts with ERROR, else 0; when no attempt succeeds, say why on stderr and exit non-zero"
    )


if __name__ == "__main__":
    main()
