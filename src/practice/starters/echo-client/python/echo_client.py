"""Your echo client, for the `echo-client` step (lesson 02).

Read first: the book's "Lesson 02: an echo client", sections "The code" and "What goes wrong,
and how to see it". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in and adds the
message to send as the last argument):
    workbook check echo-client -- python3 echo_client.py --port {port}
Check it again on every save:
    workbook check --watch echo-client -- python3 echo_client.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    echo-client: python3 echo_client.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket
import sys


def parse_args():
    parser = argparse.ArgumentParser(description="an echo client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65432)
    parser.add_argument("message", nargs="?", default="Hello, world")
    return parser.parse_args()


def main():
    args = parse_args()
    raise NotImplementedError(
        "conn = socket.create_connection((args.host, args.port)); on ConnectionRefusedError print one "
        "line on stderr naming the address and saying to start the echo server, and sys.exit(1)"
    )
    raise NotImplementedError(
        "conn.sendall(args.message.encode()); conn.shutdown(socket.SHUT_WR) (you will send nothing more); "
        "read until recv returns b''; print the reply"
    )


if __name__ == "__main__":
    main()
