//! Receiving a UDP datagram and learning whether it was cut short, for lesson 10.
//!
//! `UdpSocket::recv_from` copies at most the buffer's size and silently drops the rest of a
//! longer datagram: the next call returns the next datagram, never the lost tail. The operating
//! system does say that it cut one, but only through `recvmsg(2)`, which the standard library
//! does not expose: the `MSG_TRUNC` flag in the message's flags. On Linux, passing `MSG_TRUNC` in
//! the call's own flags also makes the call return the datagram's real length. This module makes
//! that call; the lesson decides what to do about a cut datagram.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// One datagram, as [`recv_from_reporting_truncation`] received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// How many bytes are in the buffer (at most its length).
    pub len: usize,
    /// The datagram was longer than the buffer: its tail is lost.
    pub truncated: bool,
    /// How long the datagram really was, where the system tells (Linux); `None` elsewhere for a
    /// truncated datagram, where only "longer than the buffer" is known.
    pub datagram_len: Option<usize>,
    /// Who sent it: where a reply must go.
    pub from: SocketAddr,
}

/// Receives one datagram into `buf` (blocking, like `recv_from`), and reports whether it was
/// longer than `buf` and, on Linux, how long it was.
pub fn recv_from_reporting_truncation(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: every pointer handed to recvmsg points into a live local or into `buf`, with the
    // length given next to it; the kernel writes at most those lengths.
    unsafe {
        let mut sender: libc::sockaddr_storage = zeroed();
        let mut piece = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut message: libc::msghdr = zeroed();
        message.msg_name = (&mut sender as *mut libc::sockaddr_storage).cast();
        message.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        message.msg_iov = &mut piece;
        message.msg_iovlen = 1;
        // ANCHOR: msg_trunc
        // On Linux, MSG_TRUNC in the flags makes recvmsg return the datagram's real length, even
        // when that is more than the buffer holds. Elsewhere it returns what was copied.
        #[cfg(target_os = "linux")]
        let flags = libc::MSG_TRUNC;
        #[cfg(not(target_os = "linux"))]
        let flags = 0;
        let n = libc::recvmsg(socket.as_raw_fd(), &mut message, flags);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // Everywhere, the kernel sets MSG_TRUNC in the *message's* flags when it cut the
        // datagram to fit the buffer.
        let truncated = message.msg_flags & libc::MSG_TRUNC != 0;
        // ANCHOR_END: msg_trunc
        let n = n as usize;
        let len = n.min(buf.len());
        let datagram_len = if cfg!(target_os = "linux") || !truncated {
            Some(n)
        } else {
            None
        };
        let from = socket_addr(&sender)
            .ok_or_else(|| io::Error::other("a datagram from an unknown kind of address"))?;
        Ok(Received {
            len,
            truncated,
            datagram_len,
            from,
        })
    }
}

/// An IPv4 or IPv6 address the kernel filled in; `None` for any other family.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let v4: &libc::sockaddr_in = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6: &libc::sockaddr_in6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_that_fits_is_whole_and_names_its_sender() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"hello", receiver.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        let got = recv_from_reporting_truncation(&receiver, &mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"hello");
        assert!(!got.truncated);
        assert_eq!(got.datagram_len, Some(5));
        assert_eq!(got.from, sender.local_addr().unwrap());
    }

    #[test]
    fn a_longer_datagram_is_cut_and_says_so() {
        let receiver = UdpSocket::bind("[::1]:0")
            .or_else(|_| UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
        let to = receiver.local_addr().unwrap();
        let sender = UdpSocket::bind((to.ip(), 0)).unwrap();
        sender.send_to(&[b'x'; 100], to).unwrap();
        sender.send_to(b"next", to).unwrap();
        let mut buf = [0u8; 10];
        let got = recv_from_reporting_truncation(&receiver, &mut buf).unwrap();
        assert_eq!(got.len, 10);
        assert!(got.truncated);
        #[cfg(target_os = "linux")]
        assert_eq!(got.datagram_len, Some(100));
        assert_eq!(got.from, sender.local_addr().unwrap());
        // The lost tail is gone for good: the next call returns the next datagram.
        let next = recv_from_reporting_truncation(&receiver, &mut buf).unwrap();
        assert_eq!(&buf[..next.len], b"next");
    }
}
