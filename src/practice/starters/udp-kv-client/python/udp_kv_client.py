"""Your key-value client over UDP, for the `udp-kv-client` step (lesson 11).

Read first: the book's "The datagram format" (datagram-format.md#requests,
datagram-format.md#replies, datagram-format.md#the-largest-datagram), and "Lesson 11: request
and reply over UDP", sections "The client: send, wait, send again"
(11-udp-kv.md#the-client-send-wait-send-again) and "Duplicates and late replies"
(11-udp-kv.md#duplicates-and-late-replies). What the step expects: `workbook list`, and
11-udp-kv.md#workbook-check-udp-kv-client.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in with the UDP port
of its fake server, and adds the command's words, `GET greeting`, at the end):
    workbook check udp-kv-client -- python3 udp_kv_client.py --port {port}
Check it again on every save:
    workbook check --watch udp-kv-client -- python3 udp_kv_client.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    udp-kv-client: python3 udp_kv_client.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import random
import socket
import sys
import time

MAX_DATAGRAM = 1200  # a request or a reply holds at most this many bytes
FIRST_WAIT = 0.2  # seconds to wait for the reply before sending the request again
GIVE_UP_AFTER = 7.0  # seconds for the whole command: the step wants it to give up within 10 s


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value client over UDP: SET key value | GET key | DELETE key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65441)
    parser.add_argument("words", nargs="+")
    return parser.parse_args()


def main():
    args = parse_args()
    # A new id for each request, starting at a random number (datagram-format.md#requests).
    request_id = random.randrange(2**63)
    request = f"{request_id} {' '.join(args.words)}\n".encode()
    if len(request) > MAX_DATAGRAM:
        print(f"udp-kv-client: the request is {len(request)} bytes, more than {MAX_DATAGRAM}", file=sys.stderr)
        sys.exit(2)
    raise NotImplementedError(
        "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.connect((args.host, args.port)): "
        "on a UDP socket connect only records the server's address (11-udp-kv.md#the-client-send-wait-send-again)"
    )
    deadline = time.monotonic() + GIVE_UP_AFTER
    wait = FIRST_WAIT
    while time.monotonic() < deadline:
        raise NotImplementedError(
            "sock.send(request): the same bytes, same id, every time; then sock.settimeout(wait) "
            "(no longer than the time left before the deadline)"
        )
        raise NotImplementedError(
            "loop: reply = sock.recv(MAX_DATAGRAM + 1); socket.timeout: wait = min(wait * 2, 2.0) and send "
            "again; ConnectionRefusedError (nobody on the port): wait and send again; a reply that does not "
            f"start with b'{{request_id}} ' is a duplicate or late: ignore it (11-udp-kv.md#duplicates-and-late-replies); "
            "the right one: print the line after the id, exit 1 if it starts with ERROR, else 0"
        )
    raise NotImplementedError(
        "no reply before the deadline: one line on stderr naming args.host:args.port and saying to start "
        "the UDP kv server, then sys.exit(1)"
    )


if __name__ == "__main__":
    main()
