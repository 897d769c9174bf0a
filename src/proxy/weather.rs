//! What the proxy does to the traffic of one direction: a plain data struct, [`Weather`], with
//! every field off by default. The proxy holds two, `up` (client to server) and `down` (server to
//! client); `workbook proxy` fills them from its flags (see [`super::cli`]).

use std::fmt::Write as _;
use std::time::Duration;

/// The pause between two pieces of a sliced stream, unless `slice_pause` says otherwise: long
/// enough that the receiver usually reads each piece on its own.
pub const DEFAULT_SLICE_PAUSE: Duration = Duration::from_millis(2);

/// The weather of one direction. `Weather::default()` is a clear sky: bytes and datagrams go
/// through untouched. Fields for TCP and for UDP live side by side; the proxy refuses a config
/// that sets a field its protocol does not use (see [`Weather::check`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Weather {
    /// How long every byte (TCP) or datagram (UDP) is held before it is forwarded.
    pub latency: Duration,
    /// The delay varies by up to this much either way, in whole milliseconds: each piece (TCP
    /// with `slice`), each direction of a connection (TCP without `slice`), or each datagram
    /// (UDP) gets its own, chosen by the seed.
    pub jitter: Duration,
    /// TCP: forward at most this many bytes per second.
    pub bandwidth: Option<u64>,
    /// TCP: forward in pieces of this many bytes, one `write` each, cut at fixed offsets
    /// (0, N, 2N, ...) of the stream.
    pub slice: Option<usize>,
    /// TCP: the pause between two pieces when slicing.
    pub slice_pause: Duration,
    /// TCP: after this many bytes, the receiver gets end of stream (FIN); what the sender sends
    /// next is read and thrown away.
    pub close_after: Option<u64>,
    /// TCP: after this many bytes, both sides get a reset (RST).
    pub reset_after: Option<u64>,
    /// TCP: after this many bytes, nothing more goes through, not even end of stream (the sender
    /// is not told: its bytes are read and thrown away). 0 is the black hole from the start.
    pub stall_after: Option<u64>,
    /// UDP: the share of datagrams dropped, 0.0 to 1.0.
    pub drop: f64,
    /// UDP: the share of datagrams sent twice.
    pub duplicate: f64,
    /// UDP: the share of datagrams held back [`REORDER_HOLD`] longer, so later ones overtake them.
    pub reorder: f64,
    /// UDP: datagrams longer than this are cut to this many bytes.
    pub truncate: Option<usize>,
}

/// How much longer a reordered datagram is held than the others.
pub const REORDER_HOLD: Duration = Duration::from_millis(100);

impl Default for Weather {
    fn default() -> Weather {
        Weather {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: None,
            slice: None,
            slice_pause: DEFAULT_SLICE_PAUSE,
            close_after: None,
            reset_after: None,
            stall_after: None,
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            truncate: None,
        }
    }
}

/// The longest latency plus jitter the proxy accepts: a minute.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

impl Weather {
    /// A clear sky: nothing happens to the traffic.
    pub fn clear() -> Weather {
        Weather::default()
    }

    /// Nothing happens to the traffic.
    pub fn is_clear(&self) -> bool {
        let pause_matters = self.slice.is_some();
        Weather {
            slice_pause: if pause_matters {
                self.slice_pause
            } else {
                DEFAULT_SLICE_PAUSE
            },
            ..self.clone()
        } == Weather::default()
    }

    /// Latency or jitter is set.
    pub fn has_delay(&self) -> bool {
        !self.latency.is_zero() || !self.jitter.is_zero()
    }

    /// The delay that `roll` picks: between latency - jitter (at least 0) and latency + jitter,
    /// in whole milliseconds.
    pub(crate) fn delay(&self, roll: u64) -> Duration {
        let latency = self.latency.as_millis() as u64;
        let jitter = self.jitter.as_millis() as u64;
        let low = latency.saturating_sub(jitter);
        let high = latency + jitter;
        Duration::from_millis(low + roll % (high - low + 1))
    }

    /// Checks for what the proxy cannot do: a field the protocol does not use, a rate outside
    /// 0..=1, a zero slice, a delay over a minute. `Err` names the flag, in the CLI's terms.
    pub fn check(&self, udp: bool) -> Result<(), String> {
        if self.latency.saturating_add(self.jitter) > MAX_DELAY {
            return Err(format!(
                "latency plus jitter must stay within {} s",
                MAX_DELAY.as_secs()
            ));
        }
        if self.slice == Some(0) {
            return Err("--slice must be at least 1 byte".to_string());
        }
        if self.bandwidth == Some(0) {
            return Err("--bandwidth must be at least 1 byte per second".to_string());
        }
        if self.slice_pause > MAX_DELAY {
            return Err("--slice-pause-ms must stay within a minute".to_string());
        }
        for (name, rate) in [
            ("--drop", self.drop),
            ("--duplicate", self.duplicate),
            ("--reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} is a share between 0 and 1 (or 0% and 100%)"));
            }
        }
        let tcp_only = [
            ("--bandwidth", self.bandwidth.is_some()),
            ("--slice", self.slice.is_some()),
            ("--close-after", self.close_after.is_some()),
            ("--reset-after", self.reset_after.is_some()),
            ("--stall-after", self.stall_after.is_some()),
        ];
        let udp_only = [
            ("--drop", self.drop > 0.0),
            ("--duplicate", self.duplicate > 0.0),
            ("--reorder", self.reorder > 0.0),
            ("--truncate", self.truncate.is_some()),
        ];
        if udp {
            if let Some((name, _)) = tcp_only.iter().find(|(_, set)| *set) {
                return Err(format!("{name} is TCP weather; it does not apply with --udp"));
            }
        } else if let Some((name, _)) = udp_only.iter().find(|(_, set)| *set) {
            return Err(format!("{name} is UDP weather; add --udp to forward datagrams"));
        }
        Ok(())
    }

    /// `slice 1 (2 ms apart), latency 40 ± 10 ms, reset after 100 bytes`, or `clear`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(n) = self.slice {
            parts.push(format!(
                "slices of {n} {} ({} ms apart)",
                bytes_word(n as u64),
                self.slice_pause.as_millis()
            ));
        }
        if self.has_delay() {
            let mut text = format!("latency {}", self.latency.as_millis());
            if !self.jitter.is_zero() {
                let _ = write!(text, " ± {}", self.jitter.as_millis());
            }
            text.push_str(" ms");
            parts.push(text);
        }
        if let Some(rate) = self.bandwidth {
            parts.push(format!("at most {rate} bytes/s"));
        }
        for (what, after) in [
            ("close", self.close_after),
            ("reset", self.reset_after),
            ("stall", self.stall_after),
        ] {
            if let Some(n) = after {
                parts.push(format!("{what} after {n} {}", bytes_word(n)));
            }
        }
        for (what, rate) in [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if rate > 0.0 {
                parts.push(format!("{what} {}%", percent(rate)));
            }
        }
        if let Some(n) = self.truncate {
            parts.push(format!("truncate to {n} {}", bytes_word(n as u64)));
        }
        if parts.is_empty() {
            "clear".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// `1 byte`, `2 bytes`: the word only.
pub(crate) fn bytes_word(n: u64) -> &'static str {
    if n == 1 { "byte" } else { "bytes" }
}

/// `25`, `12.5`: a share as a percentage, without trailing zeros.
fn percent(rate: f64) -> String {
    let text = format!("{:.2}", rate * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_clear_and_says_so() {
        assert!(Weather::default().is_clear());
        assert_eq!(Weather::default().describe(), "clear");
        // The pause alone changes nothing: it only matters between slices.
        let pause_only = Weather {
            slice_pause: Duration::from_millis(9),
            ..Weather::default()
        };
        assert!(pause_only.is_clear());
    }

    #[test]
    fn descriptions_name_every_setting() {
        let weather = Weather {
            slice: Some(1),
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(10),
            reset_after: Some(100),
            ..Weather::default()
        };
        assert_eq!(
            weather.describe(),
            "slices of 1 byte (2 ms apart), latency 40 ± 10 ms, reset after 100 bytes"
        );
        let udp = Weather {
            drop: 0.125,
            duplicate: 0.5,
            truncate: Some(1),
            ..Weather::default()
        };
        assert_eq!(udp.describe(), "drop 12.5%, duplicate 50%, truncate to 1 byte");
    }

    #[test]
    fn delays_stay_within_latency_plus_or_minus_jitter() {
        let weather = Weather {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(10),
            ..Weather::default()
        };
        let delays: Vec<u64> = (0..1000)
            .map(|roll| weather.delay(roll).as_millis() as u64)
            .collect();
        assert_eq!(delays.iter().min(), Some(&0));
        assert_eq!(delays.iter().max(), Some(&15));
        assert_eq!(Weather::default().delay(12345), Duration::ZERO);
    }

    #[test]
    fn weather_of_the_other_protocol_is_refused() {
        let slice = Weather {
            slice: Some(1),
            ..Weather::default()
        };
        assert!(slice.check(false).is_ok());
        assert!(slice.check(true).unwrap_err().contains("--slice is TCP weather"));
        let drop = Weather {
            drop: 0.5,
            ..Weather::default()
        };
        assert!(drop.check(true).is_ok());
        assert!(drop.check(false).unwrap_err().contains("add --udp"));
        let too_much = Weather {
            drop: 1.5,
            ..Weather::default()
        };
        assert!(too_much.check(true).is_err());
        let forever = Weather {
            latency: Duration::MAX,
            jitter: Duration::MAX,
            ..Weather::default()
        };
        assert!(forever.check(false).unwrap_err().contains("latency plus jitter"));
    }
}
