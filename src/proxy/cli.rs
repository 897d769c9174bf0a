//! `workbook proxy`: the flags, the [`ProxyConfig`] they make, and the command itself.
//!
//! Weather flags apply to both directions unless `--direction up` (client to server) or
//! `--direction down` (server to client) limits them to one. (The library takes a [`Weather`] for
//! each direction separately: [`ProxyConfig::up`] and [`ProxyConfig::down`].)

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::weather::DEFAULT_SLICE_PAUSE;
use super::{DEFAULT_MAX_CONNECTIONS, LogTo, ProxyConfig, Weather};

/// Which direction the weather flags apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// Client to server (`>` in the log).
    Up,
    /// Server to client (`<` in the log).
    Down,
    /// Both ways.
    Both,
}

const TCP: &str = "TCP weather";
const UDP: &str = "UDP weather (with --udp)";
const BOTH: &str = "Weather for TCP and UDP";

/// `workbook proxy`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ProxyArgs {
    /// The server to forward to.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Address to listen on; port 0 lets the kernel choose a free one (the `listening on` line
    /// says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Forward UDP datagrams instead of TCP connections.
    #[arg(long)]
    pub udp: bool,
    /// Seed for every random choice: the same seed and the same traffic make the same run. Without
    /// it, one is chosen and printed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print only the `listening on` line and the seed, not what happens to the traffic.
    #[arg(long)]
    pub quiet: bool,
    /// Most connections (TCP) or clients (UDP) at once; a TCP connection over it is reset at once,
    /// a datagram from a new UDP client over it is dropped.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Give the weather only to the first N connections (TCP) or clients (UDP); later ones go
    /// through untouched, so a client that reconnects gets through.
    #[arg(long, value_name = "N")]
    pub only_first: Option<u64>,
    /// Which direction the weather flags below apply to: up (client to server), down (server to
    /// client), or both.
    #[arg(long, value_enum, default_value_t = Direction::Both)]
    pub direction: Direction,

    /// Hold every byte (TCP) or datagram (UDP) this many milliseconds before forwarding it.
    #[arg(long, value_name = "MS", help_heading = BOTH)]
    pub latency_ms: Option<u64>,
    /// Vary the delay by up to this many milliseconds either way, chosen by the seed: per slice
    /// (TCP with --slice), per direction of a connection (TCP without), per datagram (UDP).
    #[arg(long, value_name = "MS", help_heading = BOTH)]
    pub jitter_ms: Option<u64>,

    /// Forward in pieces of N bytes, one write each, cut at offsets 0, N, 2N, ... of the stream.
    #[arg(long, value_name = "N", help_heading = TCP)]
    pub slice: Option<usize>,
    /// Pause between two pieces when slicing.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_SLICE_PAUSE.as_millis() as u64, help_heading = TCP)]
    pub slice_pause_ms: u64,
    /// Forward at most this many bytes per second.
    #[arg(long, value_name = "BYTES", help_heading = TCP)]
    pub bandwidth: Option<u64>,
    /// After N bytes, the receiver gets end of stream (FIN); what the sender sends next is thrown
    /// away. 0: at once.
    #[arg(long, value_name = "N", help_heading = TCP)]
    pub close_after: Option<u64>,
    /// After N bytes, reset the connection: both sides get an RST (SO_LINGER 0). 0: at once.
    #[arg(long, value_name = "N", help_heading = TCP)]
    pub reset_after: Option<u64>,
    /// After N bytes, forward nothing more, not even end of stream: the peer seems to have
    /// vanished. 0: a black hole from the start.
    #[arg(long, value_name = "N", help_heading = TCP)]
    pub stall_after: Option<u64>,
    /// Reset each connection this many milliseconds after it was accepted.
    #[arg(long, value_name = "MS", help_heading = TCP)]
    pub reset_after_ms: Option<u64>,
    /// Refuse connections (nothing listens on the port) for this many milliseconds after the
    /// start, then accept them.
    #[arg(long, value_name = "MS", help_heading = TCP)]
    pub refuse_for_ms: Option<u64>,

    /// Drop this share of datagrams: 0.1 or 10%.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = UDP)]
    pub drop: Option<f64>,
    /// Send this share of datagrams twice.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = UDP)]
    pub duplicate: Option<f64>,
    /// Hold this share of datagrams back 100 ms longer, so that later ones overtake them.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = UDP)]
    pub reorder: Option<f64>,
    /// Cut datagrams longer than N bytes to their first N.
    #[arg(long, value_name = "N", help_heading = UDP)]
    pub truncate: Option<usize>,
}

/// `0.25` or `25%`: a share between 0 and 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (text, 1.0),
    };
    let rate = number
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a share: write 0.1 or 10%"))?
        / scale;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{text}: a share is between 0 and 1 (0% and 100%)"));
    }
    Ok(rate)
}

/// The first address `text` (`HOST:PORT`) resolves to.
fn resolve(flag: &str, text: &str) -> Result<SocketAddr, String> {
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|err| format!("{flag} {text}: {err} (write HOST:PORT, e.g. 127.0.0.1:65433)"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{flag} {text}: the name has no address"))
}

impl ProxyArgs {
    /// The weather the flags describe, before `--direction` picks where it goes.
    pub fn weather(&self) -> Weather {
        Weather {
            latency: Duration::from_millis(self.latency_ms.unwrap_or(0)),
            jitter: Duration::from_millis(self.jitter_ms.unwrap_or(0)),
            bandwidth: self.bandwidth,
            slice: self.slice,
            slice_pause: Duration::from_millis(self.slice_pause_ms),
            close_after: self.close_after,
            reset_after: self.reset_after,
            stall_after: self.stall_after,
            drop: self.drop.unwrap_or(0.0),
            duplicate: self.duplicate.unwrap_or(0.0),
            reorder: self.reorder.unwrap_or(0.0),
            truncate: self.truncate,
        }
    }

    /// The config the flags describe, with the log on stdout. `Err` explains a wrong flag.
    pub fn config(&self) -> Result<ProxyConfig, String> {
        let weather = self.weather();
        let (up, down) = match self.direction {
            Direction::Up => (weather, Weather::default()),
            Direction::Down => (Weather::default(), weather),
            Direction::Both => (weather.clone(), weather),
        };
        let config = ProxyConfig {
            listen: resolve("--listen", &self.listen)?,
            to: resolve("--to", &self.to)?,
            udp: self.udp,
            up,
            down,
            seed: self.seed,
            quiet: self.quiet,
            log: LogTo::Stdout,
            max_connections: self.max_connections,
            only_first: self.only_first,
            reset_after_time: self.reset_after_ms.map(Duration::from_millis),
            refuse_for: self.refuse_for_ms.map(Duration::from_millis),
        };
        config.check()?;
        Ok(config)
    }
}

/// `workbook proxy`'s flags on their own, for [`ProxyConfig::from_flags`].
#[derive(Parser)]
#[command(name = "workbook proxy", no_binary_name = true)]
struct Flags {
    #[command(flatten)]
    args: ProxyArgs,
}

pub(crate) fn parse_flags<I, T>(flags: I) -> Result<ProxyConfig, String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let flags = Flags::try_parse_from(flags).map_err(|err| err.to_string())?;
    let mut config = flags.args.config()?;
    config.log = LogTo::Memory;
    Ok(config)
}

/// Runs `workbook proxy` until it is stopped (Ctrl-C). Exit code 2 for wrong flags, 1 if it
/// cannot listen.
pub fn run(args: &ProxyArgs) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(2);
        }
    };
    let proxy = match super::start(config) {
        Ok(proxy) => proxy,
        Err(err) => {
            let advice = match err.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "; another program uses that port: choose another with --listen (port 0 picks a free one)"
                }
                _ => "",
            };
            eprintln!("error: cannot listen on {}: {err}{advice}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    crate::lesson::exit_status(proxy.wait())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_shares_or_percentages() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert_eq!(parse_rate("25%"), Ok(0.25));
        assert_eq!(parse_rate("100%"), Ok(1.0));
        assert!(parse_rate("150%").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("often").is_err());
    }

    #[test]
    fn direction_picks_where_the_weather_goes() {
        let config = ProxyConfig::from_flags(["--to", "127.0.0.1:9", "--slice", "1"]).unwrap();
        assert_eq!(config.up.slice, Some(1));
        assert_eq!(config.down.slice, Some(1));
        let config =
            ProxyConfig::from_flags(["--to", "127.0.0.1:9", "--reset-after", "3", "--direction", "down"])
                .unwrap();
        assert_eq!(config.up, Weather::default());
        assert_eq!(config.down.reset_after, Some(3));
        assert_eq!(config.log, LogTo::Memory);
    }

    #[test]
    fn wrong_combinations_are_explained() {
        let err = ProxyConfig::from_flags(["--to", "127.0.0.1:9", "--drop", "10%"]).unwrap_err();
        assert!(err.contains("--drop is UDP weather"), "{err}");
        let err = ProxyConfig::from_flags(["--to", "127.0.0.1:9", "--udp", "--slice", "1"]).unwrap_err();
        assert!(err.contains("--slice is TCP weather"), "{err}");
        let err = ProxyConfig::from_flags(["--to", "no port"]).unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
        let err = ProxyConfig::from_flags(["--slice", "1"]).unwrap_err();
        assert!(err.contains("--to"), "{err}");
    }
}
