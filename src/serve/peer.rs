//! Who is at the other end of a loopback TCP connection: the uid that owns the client's socket,
//! read from the kernel's socket tables `/proc/net/tcp` and `/proc/net/tcp6` (the identd
//! technique). `ctrace serve` on loopback answers a connection without a credential only when
//! this finds its own effective uid (`docs/security.md`, "The service").
//!
//! A line of a table (after the header line) is
//! `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …`,
//! an address being `ADDR:PORT` in hex: the port as a number, the IPv4 address as the
//! kernel's `%08X` of the network-order `u32` (so `0100007F` is 127.0.0.1 on a little-endian
//! host), an IPv6 address as four such words.
//!
//! Invariants:
//! - only an entry whose local address is the peer's and whose remote address is ours names the
//!   client (the server's accepted socket is the mirror entry, and is never taken);
//! - TIME_WAIT entries and entries without an inode (orphaned sockets, reported as uid 0) never
//!   count;
//! - an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address (a client's IPv6
//!   socket connected to 127.0.0.1 is listed in `tcp6` with mapped addresses);
//! - anything else (no tables, no such entry, an unreadable line) is an error, never a uid: the
//!   caller fails closed.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The kernel's TCP socket tables, IPv4 then IPv6.
pub(crate) const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// The `st` value of a socket in TIME_WAIT (no owner any more; listed as uid 0).
const TIME_WAIT: u8 = 0x06;

/// Why the owner of a peer's socket is unknown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PeerError {
    /// A socket table could not be read (no `/proc`, as on macOS, or not mounted).
    #[error("reading the socket table {}", path.display())]
    Io {
        /// The table.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No live socket from `peer` to `local` is listed (the client closed already, or the
    /// connection is not local).
    #[error("no socket from {peer} to {local} in {}", TABLES.join(" or "))]
    NotFound {
        /// The client's address.
        peer: SocketAddr,
        /// The service's address of the connection.
        local: SocketAddr,
    },
}

/// One entry of a socket table: the fields the lookup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// `local_address`, IPv4-mapped addresses as IPv4.
    local: SocketAddr,
    /// `rem_address`, likewise.
    remote: SocketAddr,
    /// `st`, the TCP state (`01` ESTABLISHED, `06` TIME_WAIT, `0A` LISTEN, …).
    state: u8,
    /// The uid owning the socket.
    uid: u32,
    /// The socket's inode (0: no file refers to it any more).
    inode: u64,
}

/// Whether the IPv4 socket table can be read (`false` where there is no `/proc`: then no
/// connection's owner can be told).
pub(crate) fn tables_readable() -> bool {
    std::fs::File::open(TABLES[0]).is_ok()
}

/// The uid owning the client socket of a connection from `peer` to `local` (this process's
/// end), from the kernel's tables ([`TABLES`]). Blocking: reads procfs (fast, but run it off the
/// async threads).
///
/// # Errors
/// [`PeerError::Io`] when no table can be read; [`PeerError::NotFound`] when neither lists the
/// client's socket.
pub(crate) fn socket_owner(peer: SocketAddr, local: SocketAddr) -> Result<u32, PeerError> {
    socket_owner_in(&TABLES.map(Path::new), peer, local)
}

/// [`socket_owner`] over the tables at `tables`; a missing table is skipped unless every
/// table is unreadable.
///
/// # Errors
/// As [`socket_owner`].
fn socket_owner_in(
    tables: &[&Path],
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<u32, PeerError> {
    let mut first_error = None;
    let mut read_any = false;
    for path in tables {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(source) => {
                first_error.get_or_insert(PeerError::Io {
                    path: path.to_path_buf(),
                    source,
                });
                continue;
            }
        };
        read_any = true;
        let mut lines = BufReader::new(file).lines();
        match owner_in_lines(&mut lines, peer, local) {
            Ok(Some(uid)) => return Ok(uid),
            Ok(None) => {}
            Err(source) => {
                return Err(PeerError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    match first_error {
        Some(error) if !read_any => Err(error),
        _ => Err(PeerError::NotFound { peer, local }),
    }
}

/// The uid of the entry in a table's `lines` (header first) that names the client socket of
/// `peer` → `local`; `None` when there is none.
fn owner_in_lines(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    peer: SocketAddr,
    local: SocketAddr,
) -> std::io::Result<Option<u32>> {
    let peer = canonical(peer);
    let local = canonical(local);
    // The header line names the columns.
    let _ = lines.next().transpose()?;
    for line in lines {
        let Some(entry) = parse_entry(&line?) else {
            continue;
        };
        if entry.local == peer
            && entry.remote == local
            && entry.state != TIME_WAIT
            && entry.inode != 0
        {
            return Ok(Some(entry.uid));
        }
    }
    Ok(None)
}

/// The uid of the client socket of `peer` → `local` in the text of one table (header first).
#[cfg(test)]
fn owner_in(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let mut lines = text.lines().map(|line| Ok(line.to_owned()));
    owner_in_lines(&mut lines, peer, local).ok().flatten()
}

/// `addr` with an IPv4-mapped IPv6 address as the IPv4 address.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// One line of a table; `None` for a line that is not an entry (the header, or damage).
fn parse_entry(line: &str) -> Option<Entry> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let local = parse_addr(fields.next()?)?;
    let remote = parse_addr(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt
    let mut fields = fields.skip(3);
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some(Entry {
        local,
        remote,
        state,
        uid,
        inode,
    })
}

/// `ADDR:PORT` as the kernel prints it (module doc), IPv4-mapped addresses as IPv4.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word_bytes(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (chunk, word) in bytes.chunks_exact_mut(4).zip(0..4) {
                chunk.copy_from_slice(&word_bytes(addr.get(word * 8..word * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The four address bytes of one `%08X` word: the kernel prints a network-order `u32` as a
/// host-order number.
#[expect(
    clippy::host_endian_bytes,
    reason = "the kernel prints each network-order address word as a host-order u32"
)]
fn word_bytes(hex: &str) -> Option<[u8; 4]> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

#[cfg(test)]
// The fixtures are tables as a little-endian host prints them.
#[cfg(target_endian = "little")]
mod tests {
    use super::*;

    /// A real `/proc/net/tcp` (little-endian host): a listener on 127.0.0.1:7317 (0x1C95),
    /// a client 127.0.0.1:41000 (0xA028) of uid 1000 and the service's accepted end (uid
    /// 1001), a TIME_WAIT entry of an earlier connection from port 41001 (uid 0), and an
    /// orphaned socket from port 41002.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1C95 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 81231 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A028 0100007F:1C95 01 00000000:00000000 00:00000000 00000000  1000        0 81544 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1C95 0100007F:A028 01 00000000:00000000 00:00000000 00000000  1001        0 81545 1 0000000000000000 20 4 31 10 -1
   3: 0100007F:A029 0100007F:1C95 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   4: 0100007F:A02A 0100007F:1C95 04 00000000:00000000 01:00000014 00000000  1000        0 0 1 0000000000000000 20 4 0 10 -1
";

    /// A real `/proc/net/tcp6`: a listener on [::1]:7317, a client [::1]:50000 (0xC350) of
    /// uid 1002, and an IPv6 client socket of uid 1003 connected to 127.0.0.1:7317 from
    /// 127.0.0.1:50001 (IPv4-mapped addresses).
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1C95 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 91000 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:C350 00000000000000000000000001000000:1C95 01 00000000:00000000 00:00000000 00000000  1002        0 91001 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:C351 0000000000000000FFFF00000100007F:1C95 01 00000000:00000000 00:00000000 00000000  1003        0 91002 1 0000000000000000 20 4 30 10 -1
";

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_parse_as_the_kernel_prints_them() {
        assert_eq!(parse_addr("0100007F:1C95"), Some(addr("127.0.0.1:7317")));
        assert_eq!(parse_addr("00000000:0000"), Some(addr("0.0.0.0:0")));
        assert_eq!(
            parse_addr("00000000000000000000000001000000:1C95"),
            Some(addr("[::1]:7317"))
        );
        assert_eq!(
            parse_addr("0000000000000000FFFF00000100007F:C351"),
            Some(addr("127.0.0.1:50001"))
        );
        // fe80::1 on a little-endian host.
        assert_eq!(
            parse_addr("000080FE000000000000000001000000:0050"),
            Some(addr("[fe80::1]:80"))
        );
        for bad in [
            "",
            "0100007F",
            "0100007F:",
            "0100007:1C95",
            "0100007G:1C95",
            "0100007F:1C95F",
            "0000000000000000000000000100000:1C95",
        ] {
            assert_eq!(parse_addr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_client_entry_names_the_owner_v4() {
        let local = addr("127.0.0.1:7317");
        assert_eq!(owner_in(TCP, addr("127.0.0.1:41000"), local), Some(1000));
        // The service's own end is the mirror entry, never taken for the client's.
        assert_eq!(owner_in(TCP, local, addr("127.0.0.1:41000")), Some(1001));
        assert_eq!(
            owner_in(TCP, addr("127.0.0.1:41000"), addr("127.0.0.1:7318")),
            None
        );
        // TIME_WAIT and orphaned sockets have no owner.
        assert_eq!(owner_in(TCP, addr("127.0.0.1:41001"), local), None);
        assert_eq!(owner_in(TCP, addr("127.0.0.1:41002"), local), None);
        assert_eq!(owner_in(TCP, addr("127.0.0.1:41003"), local), None);
    }

    #[test]
    fn the_client_entry_names_the_owner_v6_and_mapped() {
        let local6 = addr("[::1]:7317");
        assert_eq!(owner_in(TCP6, addr("[::1]:50000"), local6), Some(1002));
        assert_eq!(owner_in(TCP6, addr("[::1]:50009"), local6), None);
        // The IPv4 service sees 127.0.0.1:50001; the client's socket is IPv6 with mapped
        // addresses; either spelling of the peer finds it.
        let local4 = addr("127.0.0.1:7317");
        assert_eq!(owner_in(TCP6, addr("127.0.0.1:50001"), local4), Some(1003));
        assert_eq!(
            owner_in(
                TCP6,
                addr("[::ffff:127.0.0.1]:50001"),
                addr("[::ffff:127.0.0.1]:7317")
            ),
            Some(1003)
        );
    }

    #[test]
    fn damaged_lines_are_skipped() {
        let text =
            format!("{TCP}   9: garbage\n  10: 0100007F:A030 0100007F:1C95 01 x y z notauid 0 5\n");
        assert_eq!(
            owner_in(&text, addr("127.0.0.1:41000"), addr("127.0.0.1:7317")),
            Some(1000)
        );
        assert_eq!(
            owner_in("", addr("127.0.0.1:41000"), addr("127.0.0.1:7317")),
            None
        );
    }

    #[test]
    fn tables_are_read_in_order_and_missing_ones_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let tcp = dir.path().join("tcp");
        let tcp6 = dir.path().join("tcp6");
        let missing = dir.path().join("missing");
        std::fs::write(&tcp, TCP).unwrap();
        std::fs::write(&tcp6, TCP6).unwrap();
        let local = addr("127.0.0.1:7317");
        let both = [tcp.as_path(), tcp6.as_path()];
        assert_eq!(
            socket_owner_in(&both, addr("127.0.0.1:41000"), local).unwrap(),
            1000
        );
        assert_eq!(
            socket_owner_in(&both, addr("127.0.0.1:50001"), local).unwrap(),
            1003
        );
        assert!(matches!(
            socket_owner_in(&both, addr("127.0.0.1:1"), local),
            Err(PeerError::NotFound { .. })
        ));
        let one = [missing.as_path(), tcp6.as_path()];
        assert_eq!(
            socket_owner_in(&one, addr("127.0.0.1:50001"), local).unwrap(),
            1003
        );
        let none = [missing.as_path()];
        assert!(matches!(
            socket_owner_in(&none, addr("127.0.0.1:41000"), local),
            Err(PeerError::Io { .. })
        ));
    }

    /// This process's own connection over loopback is found with its euid.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_connection_is_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let owner = socket_owner(peer, listener.local_addr().unwrap()).unwrap();
        assert_eq!(owner, crate::log::private::euid());
    }

    /// An IPv6 client socket connected to the IPv4 service (listed in `tcp6` with mapped
    /// addresses), and an IPv6 connection over `[::1]`, are found too (where IPv6 is on).
    #[cfg(target_os = "linux")]
    #[test]
    fn live_ipv6_and_mapped_connections_are_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mapped = SocketAddr::new(
            Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(),
            listener.local_addr().unwrap().port(),
        );
        let Ok(_client) = std::net::TcpStream::connect(mapped) else {
            eprintln!("skipped: no IPv6 sockets here");
            return;
        };
        let (_server, peer) = listener.accept().unwrap();
        let owner = socket_owner(peer, listener.local_addr().unwrap()).unwrap();
        assert_eq!(owner, crate::log::private::euid());
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let owner = socket_owner(peer, listener.local_addr().unwrap()).unwrap();
        assert_eq!(owner, crate::log::private::euid());
    }
}
