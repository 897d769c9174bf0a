//! # Lesson 04: length-prefixed framing
//!
//! TCP delivers a stream of bytes, not messages. One `read` returns whatever has arrived: part
//! of a message, or the end of one and the start of the next. Where one message ends is simply
//! not sent, so the bytes must say it. Here every message travels as a *frame*: a 4-byte header
//! holding the message's length as an unsigned 32-bit big-endian number ("network byte order":
//! most significant byte first), then the message itself. `"hello"` becomes
//! `00 00 00 05 68 65 6c 6c 6f`.
//!
//! Try it:
//!
//! ```text
//! cargo run --bin 04_length_prefix                           # the demo: the bug, then the fix
//! cargo run --bin 04_length_prefix -- server                 # terminal 1: a frame echo server
//! cargo run --bin 04_length_prefix -- send hello "" world    # terminal 2: three frames, three replies
//! ```
//!
//! The frame codec (`read_frame`, `write_frame`) is in `src/frame.rs`, where tests and the checker use it too.
//! To write your own client or server in another language, encode the header like Python's
//! `len(payload).to_bytes(4, "big")`; `tests/interop/` holds a Python client and server that talk
//! to this program.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::{Parser, Subcommand};
use socket_workbook::escape::{escape_abbreviated, escape_bytes, hex_bytes};
use socket_workbook::frame::{self, DEFAULT_MAX_FRAME, FrameError};
use socket_workbook::lesson::{self, ConnectArgs, Deadline, DeadlineStream, ListenArgs, describe_chunk};
use socket_workbook::lockstep;
use socket_workbook::log_line;

/// Lesson 04: send messages over TCP as length-prefixed frames.
// (No bare `about` here: it would show the crate's description instead of the line above.)
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
}

// ANCHOR: modes
#[derive(Subcommand)]
enum Mode {
    /// Show on a real connection why "one read = one message" fails, and how frames fix it
    /// (the default).
    Demo,
    /// A frame echo server: answers every frame with a frame holding the same payload.
    Server {
        #[command(flatten)]
        listen: ListenArgs<65434>,
        /// Largest payload accepted, in bytes; a larger header closes the connection.
        #[arg(long, default_value_t = DEFAULT_MAX_FRAME)]
        max_frame: u32,
        /// Seconds a client has for each frame: from when the server starts waiting for it until
        /// its echo is written. A client that takes longer is disconnected.
        #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = lesson::parse_seconds)]
        client_timeout: Duration,
    },
    /// Send each MESSAGE as a frame to the frame echo server and print the replies.
    Send {
        #[command(flatten)]
        server: ConnectArgs<65434>,
        /// The messages, one frame each ("" sends an empty frame).
        #[arg(required = true, value_name = "MESSAGE")]
        messages: Vec<String>,
    },
}
// ANCHOR_END: modes

fn main() -> ExitCode {
    let result = match Args::parse().mode.unwrap_or(Mode::Demo) {
        Mode::Demo => demo(),
        Mode::Server {
            listen,
            max_frame,
            client_timeout,
        } => serve(&listen, max_frame, client_timeout),
        Mode::Send { server, messages } => send(&server, &messages),
    };
    lesson::exit_status(result)
}

// ---------------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------------

const INTRO: &str = "\
Lesson 04: length-prefixed framing

TCP carries a stream of bytes, not messages. A read() returns whatever bytes have arrived,
up to the room in your buffer. Below, a sender and a receiver talk over a real TCP connection
on 127.0.0.1. The demo decides how the sender splits its writes, and lets the receiver read
only when the sender has finished its turn, so you see the same thing on every run.";

fn demo() -> io::Result<()> {
    println!("{INTRO}");

    println!("\n== 1. A naive receiver: one read() = one message ==");
    println!("\nThe sender sends ONE message, \"Hello, world!\", in two writes:");
    // Each inner list is one turn of the sender: the writes it makes before the receiver reads.
    let turns: &[&[&[u8]]] = &[&[b"Hello, "], &[b"world!"]];
    run_case(&[b"Hello, world!"], turns, Wire::Plain, receive_naively)?;

    println!("\nThe sender sends TWO messages, \"ping\" and \"pong\", before the receiver reads:");
    run_case(
        &[b"ping", b"pong"],
        &[&[b"ping", b"pong"]],
        Wire::Plain,
        receive_naively,
    )?;

    println!(
        "\nThe socket calls all worked. But the boundaries between writes do not travel with the
bytes, so the receiver needs another way to tell where a message ends."
    );

    println!("\n== 2. Length-prefixed frames ==");
    println!(
        "\nNow each message travels as a frame: a 4-byte header holding the message's length as an
unsigned 32-bit number, most significant byte first (\"big-endian\", the network byte order),
then the message itself.\n"
    );
    show_byte_order();
    println!(
        "\nThe framed receiver (read_frame in src/frame.rs) reads until it has the 4 header bytes,
decodes the length, then reads until it has that many bytes. It asks read() only for what it
still needs, and calls it as often as it takes."
    );

    let hello = frame::encode_frame(b"Hello, world!")?;
    println!(
        "\nThe sender sends \"Hello, world!\" as one frame, in three writes (one cut inside the header):"
    );
    let turns: &[&[&[u8]]] = &[&[&hello[..2]], &[&hello[2..11]], &[&hello[11..]]];
    run_case(&[b"Hello, world!"], turns, Wire::Frames, receive_frames)?;

    let (ping, pong) = (frame::encode_frame(b"ping")?, frame::encode_frame(b"pong")?);
    println!("\nThe sender sends two frames, \"ping\" and \"pong\", before the receiver reads:");
    run_case(
        &[b"ping", b"pong"],
        &[&[&ping, &pong]],
        Wire::Frames,
        receive_frames,
    )?;

    let long: Vec<u8> = (0..256).map(|i| b'a' + (i % 26) as u8).collect();
    let (empty, long_frame) = (frame::encode_frame(b"")?, frame::encode_frame(&long)?);
    println!("\nAn empty message (a header of zeros, nothing after it), then one of 256 bytes:");
    run_case(
        &[b"", &long],
        &[&[&empty, &long_frame]],
        Wire::Frames,
        receive_frames,
    )?;

    println!(
        "\nEvery message arrived whole, however the writes were split. Try the frame echo server:
  cargo run --bin 04_length_prefix -- server
  cargo run --bin 04_length_prefix -- send hello world     (in a second terminal)"
    );
    Ok(())
}

// ANCHOR: byte_order
/// The header on the wire for a few lengths, and why both ends must agree on the byte order.
fn show_byte_order() {
    println!("  message length   header on the wire");
    for len in [13u32, 256, 1_048_576] {
        // `to_be_bytes`: most significant byte first, on every CPU. (`to_ne_bytes`, the CPU's
        // own order, would give `00 01 00 00` for 256 on a little-endian x86 or ARM machine.)
        let header: [u8; 4] = len.to_be_bytes();
        println!("  {len:>14}   {}", hex_bytes(&header));
    }
    let header = [0x00, 0x00, 0x01, 0x00];
    println!(
        "\n  u32::from_be_bytes([{}]) = {}: 0x01 * 256 + 0x00.",
        hex_bytes(&header),
        u32::from_be_bytes(header)
    );
    println!(
        "  Read in the other byte order, u32::from_le_bytes gives {}: both ends must agree.",
        u32::from_le_bytes(header)
    );
}
// ANCHOR_END: byte_order

// ANCHOR: naive_receiver
/// THE BUG: takes whatever one `read` returns as one message.
fn receive_naively(mut conn: impl Read) -> io::Result<Vec<Vec<u8>>> {
    let mut messages = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            println!(
                "  receiver read() with room for {} bytes returns 0: end of stream",
                buf.len()
            );
            return Ok(messages);
        }
        let received = &buf[..n];
        println!(
            "  receiver read() with room for {} bytes returns {n}: {}",
            buf.len(),
            escape_bytes(received)
        );
        messages.push(received.to_vec());
        println!(
            "           -> message {}: {}",
            messages.len(),
            escape_bytes(received)
        );
    }
}
// ANCHOR_END: naive_receiver

// ANCHOR: framed_receiver
/// THE FIX: reads frame by frame; `read_frame` calls `read` until a whole frame is there.
fn receive_frames(conn: impl Read) -> io::Result<Vec<Vec<u8>>> {
    // `ShowReads` prints each `read` that `read_frame` makes, so you can watch it work.
    let mut conn = ShowReads::new(conn);
    let mut messages = Vec::new();
    while let Some(payload) = frame::read_frame(&mut conn, DEFAULT_MAX_FRAME)? {
        let header = (payload.len() as u32).to_be_bytes();
        println!(
            "           -> header {} = {} bytes, so message {} is {}",
            hex_bytes(&header),
            payload.len(),
            messages.len() + 1,
            escape_abbreviated(&payload, 40)
        );
        messages.push(payload);
    }
    Ok(messages)
}
// ANCHOR_END: framed_receiver

/// How the demo prints bytes on the wire: as text, or as frames (headers in hex).
#[derive(Clone, Copy)]
enum Wire {
    Plain,
    Frames,
}

/// Runs one case of the demo on a fresh connection: a sender thread writes `turns`, the
/// receiver reads with `receive`, and the result is compared with the messages `sent`.
fn run_case(
    sent: &[&[u8]],
    turns: &[&[&[u8]]],
    wire: Wire,
    receive: fn(lockstep::Receiver) -> io::Result<Vec<Vec<u8>>>,
) -> io::Result<()> {
    let (mut sender, receiver) = lockstep::connect()?;
    let received = thread::scope(|scope| {
        let sending = scope.spawn(move || -> io::Result<()> {
            let mut view = WireView::new(wire);
            for turn in turns {
                sender.start_turn()?;
                for piece in *turn {
                    println!(
                        "  sender   writes {} bytes: {}",
                        piece.len(),
                        view.describe(piece)
                    );
                    sender.write(piece)?;
                }
                sender.end_turn()?;
            }
            sender.start_turn()?;
            println!("  sender   closes the connection");
            sender.close()
        });
        // `receive` owns the receiver and drops it when done, so a failing receiver cannot leave
        // the sender waiting.
        let received = receive(receiver);
        let sent = sending.join().expect("the sender thread does not panic");
        let received = received?;
        sent.map(|()| received)
    })?;

    let verdict = if received.iter().map(Vec::as_slice).eq(sent.iter().copied()) {
        "RIGHT"
    } else {
        "WRONG"
    };
    let received: Vec<&[u8]> = received.iter().map(Vec::as_slice).collect();
    println!(
        "  {verdict}: sent {}; received {}",
        list_messages(sent),
        list_messages(&received)
    );
    Ok(())
}

/// `2 messages ["ping", "pong"]`
fn list_messages(messages: &[&[u8]]) -> String {
    let noun = if messages.len() == 1 {
        "message"
    } else {
        "messages"
    };
    let shown: Vec<String> = messages.iter().map(|m| escape_abbreviated(m, 20)).collect();
    format!("{} {noun} [{}]", messages.len(), shown.join(", "))
}

/// A `Read` that prints the result of every `read` call it passes on.
struct ShowReads<R> {
    inner: R,
    view: WireView,
}

impl<R> ShowReads<R> {
    fn new(inner: R) -> ShowReads<R> {
        ShowReads {
            inner,
            view: WireView::new(Wire::Frames),
        }
    }
}

impl<R: Read> Read for ShowReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = buf.len();
        let n = self.inner.read(buf)?;
        if n == 0 {
            println!("  receiver read() with room for {room} bytes returns 0: end of stream");
        } else {
            let bytes = self.view.describe(&buf[..n]);
            println!("  receiver read() with room for {room} bytes returns {n}: {bytes}");
        }
        Ok(n)
    }
}

/// Describes the bytes of a stream as they go by. For frames, header bytes are shown in hex
/// (`00 00 00 0d`) and payload bytes as text, which takes following the frame structure.
struct WireView {
    wire: Wire,
    /// Bytes of the current header seen so far (0 to 3).
    header: Vec<u8>,
    /// Payload bytes still to come in the current frame.
    payload_left: usize,
}

impl WireView {
    fn new(wire: Wire) -> WireView {
        WireView {
            wire,
            header: Vec::new(),
            payload_left: 0,
        }
    }

    fn describe(&mut self, mut bytes: &[u8]) -> String {
        if let Wire::Plain = self.wire {
            return escape_bytes(bytes);
        }
        let mut parts = Vec::new();
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                parts.push(escape_abbreviated(&bytes[..n], 40));
                self.payload_left -= n;
                bytes = &bytes[n..];
            } else {
                let n = (frame::HEADER_LEN - self.header.len()).min(bytes.len());
                parts.push(hex_bytes(&bytes[..n]));
                self.header.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if let Ok(header) = <[u8; 4]>::try_from(self.header.as_slice()) {
                    self.payload_left = frame::decode_header(header) as usize;
                    self.header.clear();
                }
            }
        }
        parts.join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// The frame echo server
// ---------------------------------------------------------------------------------------------

// ANCHOR: server
fn serve(listen: &ListenArgs<65434>, max_frame: u32, client_timeout: Duration) -> io::Result<()> {
    let listener = TcpListener::bind((listen.host.as_str(), listen.port))
        .unwrap_or_else(|err| lesson::exit_bind_failed(&listen.address(), &err));
    lesson::announce_listening(&listener)?;
    loop {
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            // Log it, pause if we are out of file descriptors, and keep serving.
            Err(err) => {
                lesson::after_failed_accept(&err);
                continue;
            }
        };
        log_line!("connected by {peer}");
        // Whatever goes wrong with this client (a bad frame, a timeout, a reset) ends this
        // client's connection, never the server.
        match echo_frames(&conn, peer, max_frame, client_timeout) {
            Ok(()) => log_line!("{peer} closed the connection"),
            Err(err) => log_line!("closing the connection to {peer}: {err}"),
        }
        // Dropping `conn` closes the connection.
    }
}

// ANCHOR: echo_frames
/// Echoes frames until the client closes the connection between two frames.
///
/// This server serves one client at a time, so a client that stalls must not hold it for long.
/// A timeout on each `read` would not do: a client that sends one byte every 29 seconds would
/// never trip a 30-second timeout. So each frame gets a deadline: all the reads that bring it in
/// and all the writes that send it back must be done by then.
fn echo_frames(
    conn: &TcpStream,
    peer: SocketAddr,
    max_frame: u32,
    timeout: Duration,
) -> Result<(), FrameError> {
    loop {
        let mut conn = DeadlineStream::new(conn, Deadline::after(timeout));
        // `read_frame` returns `None` when the client closes between two frames. A too-large
        // header, a stream that ends inside a frame, or the deadline passing is an error:
        // nothing sensible can follow it.
        let Some(payload) = frame::read_frame(&mut conn, max_frame)? else {
            return Ok(());
        };
        let header = frame::encode_header(payload.len() as u32);
        log_line!(
            "frame from {peer}: header {}, {}",
            hex_bytes(&header),
            describe_chunk(&payload)
        );
        frame::write_frame(&mut conn, &payload)?;
    }
}
// ANCHOR_END: echo_frames
// ANCHOR_END: server

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

// ANCHOR: send
fn send(server: &ConnectArgs<65434>, messages: &[String]) -> io::Result<()> {
    let mut stream = TcpStream::connect((server.host.as_str(), server.port)).unwrap_or_else(|err| {
        lesson::exit_connect_failed(
            &server.address(),
            &err,
            "cargo run --bin 04_length_prefix -- server",
        )
    });
    // A server that never answers gets an error after a while, not an endless wait.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    for message in messages {
        let payload = message.as_bytes();
        frame::write_frame(&mut stream, payload)?;
        println!("sent     {}", describe_frame(payload));
        match frame::read_frame(&mut stream, DEFAULT_MAX_FRAME) {
            Ok(Some(reply)) => println!("received {}", describe_frame(&reply)),
            // A server that rejects a frame closes the connection. If our frame's payload was
            // still unread, its kernel answers with a reset instead of a normal close.
            Ok(None) => return Err(closed_instead_of_replying()),
            Err(FrameError::Io(err)) if err.kind() == io::ErrorKind::ConnectionReset => {
                return Err(closed_instead_of_replying());
            }
            // `?` turns a FrameError into an io::Error that keeps its message.
            Err(err) => return Err(err.into()),
        }
    }
    // Say "no more frames" with a half-close, and wait for the server to close its side: a
    // clean goodbye, and the server has finished with us when we exit.
    stream.shutdown(std::net::Shutdown::Write)?;
    if let Some(extra) = frame::read_frame(&mut stream, DEFAULT_MAX_FRAME)? {
        println!("received {} (unasked)", describe_frame(&extra));
    }
    Ok(())
}
// ANCHOR_END: send

fn closed_instead_of_replying() -> io::Error {
    io::Error::other(
        "the server closed the connection instead of replying \
         (a frame server does that when it rejects a frame, e.g. one above its maximum size)",
    )
}

/// `frame 00 00 00 05 "hello"`
fn describe_frame(payload: &[u8]) -> String {
    let header = frame::encode_header(payload.len() as u32);
    format!("frame {} {}", hex_bytes(&header), escape_abbreviated(payload, 60))
}
