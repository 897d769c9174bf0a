"""Your key-value client, for the `kv-client` step (lesson 06).

Read first: the book's "The key-value protocol", and "Lesson 06: a key-value client",
sections "The code" and "Write your own client". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in and adds the
command's words, like `SET a 1`, at the end):
    workbook check kv-client -- python3 kv_client.py --port {port}
Check it again on every save:
    workbook check --watch kv-client -- python3 kv_client.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    kv-client: python3 kv_client.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket
import sys

TIMEOUT = 5.0  # seconds to wait for the connection and for the reply


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value client: SET key value | GET key | DELETE key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65433)
    parser.add_argument("words", nargs="+")
    return parser.parse_args()


def main():
    args = parse_args()
    line = " ".join(args.words) + "\n"
    raise NotImplementedError(
        "conn = socket.create_connection((args.host, args.port), timeout=TIMEOUT); on OSError print one "
        "line on stderr naming the address and saying to start the kv server, and sys.exit(2)"
    )
    raise NotImplementedError(
        "conn.sendall(line.encode()); then recv until the reply has its \\n (it can come a byte at a "
        "time; a timeout or b'' first: say so on stderr and exit non-zero)"
    )
    raise NotImplementedError("print the reply line; exit 1 if it starts with ERROR, else 0")


if __name__ == "__main__":
    main()
