//! # socket-workbook
//!
//! A hands-on course in low-level network programming. The lessons are small programs in
//! `lessons/`; this library holds what they share and what checks them.
//!
//! # Layout
//! - [`lesson`]: conventions every lesson program keeps (`--host`/`--port`, the `listening on`
//!   line, one clear line for a failed `bind` or `connect`).
//! - [`escape`]: showing bytes exactly, so `\r`, `\0` and invalid UTF-8 are visible.
//! - [`datagram`]: receiving a UDP datagram and learning whether it was cut short
//!   (`MSG_TRUNC`), and how long it really was (lesson 10).
//! - [`frame`]: length-prefixed frames (a 4-byte big-endian length, then the payload), for every
//!   lesson that sends messages over a byte stream.
//! - [`line_buffer`]: a receive buffer that hands out complete lines with one copy and bounded
//!   memory, for a server that answers many pipelined commands per `read`.
//! - [`lockstep`]: a loopback connection whose ends take turns, so a demo of how `read` splits
//!   data prints the same thing on every run.
//! - [`kv`]: the key-value protocol of lessons 05 and 06 (described there in full): command
//!   parsing, replies, and the store.
//! - [`resp`]: RESP2, Redis's protocol (lesson 13): requests parsed incrementally under caps and
//!   a memory budget, typed replies.
//! - [`proxy`]: network weather: a seeded proxy that delays, slices, cuts off, resets or stalls
//!   TCP connections and drops, duplicates, reorders or truncates UDP datagrams, and logs what
//!   it did (`workbook proxy`).
//! - [`retry`]: exponential backoff with jitter, a limit on attempts and a deadline, for any
//!   client that tries again (lesson 09).
//! - [`udp_kv`]: the key-value protocol over UDP datagrams, with request ids and a reply cache
//!   (lesson 11).
//! - [`harness`]: start a server, run a scenario against it over real sockets, record the
//!   transcript. Independent of our lessons, so it checks programs in any language.
//! - [`diagram`]: the book's figures as SVG: sequence diagrams drawn from the recorded
//!   transcripts, a few hand-made ones, and plots of the benchmark (`workbook diagrams`).
//! - [`practice`]: practice mode around the checker: starters (`workbook new`), progress, and
//!   `workbook check --watch`.
//! - [`scenarios`]: the scenarios themselves, one module per lesson. One scenario drives the
//!   lesson's test, produces the transcript the book shows, and checks a learner's solution.
//! - [`wire`]: packets on loopback, captured with `tcpdump` and written as stable tokens, for the
//!   chapter "Watching the wire".

pub mod checker;
pub mod datagram;
pub mod diagram;
pub mod escape;
pub mod frame;
pub mod harness;
pub mod kv;
pub mod lesson;
pub mod line_buffer;
pub mod lockstep;
pub mod practice;
pub mod proxy;
pub mod resp;
pub mod retry;
pub mod scenarios;
pub mod udp_kv;
pub mod wire;
