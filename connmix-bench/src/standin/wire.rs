//! Just enough HTTP/1.1 and WebSocket (RFC 6455) for the stand-in: one request head per
//! connection, the upgrade, masked client frames in (7, 16 and 64-bit lengths, fragments,
//! ping, pong, close) and unmasked server frames out.

use std::ops::Range;

/// Frame opcodes.
pub(crate) mod opcode {
    pub(crate) const CONTINUATION: u8 = 0x0;
    pub(crate) const TEXT: u8 = 0x1;
    pub(crate) const BINARY: u8 = 0x2;
    pub(crate) const CLOSE: u8 = 0x8;
    pub(crate) const PING: u8 = 0x9;
    pub(crate) const PONG: u8 = 0xA;
}

/// The largest frame a contestant may send; anything bigger is a protocol error here.
const MAX_FRAME: u64 = 16 << 20;

/// Why a byte stream is not what a client may send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// A client frame without a mask.
    #[error("a client frame is not masked")]
    Unmasked,
    /// Reserved bits set (no extension is negotiated).
    #[error("reserved bits set in a frame")]
    Reserved,
    /// Over [`MAX_FRAME`].
    #[error("a frame of {0} bytes")]
    TooLarge(u64),
    /// A control frame split or over 125 bytes.
    #[error("a bad control frame")]
    BadControl,
    /// Not an HTTP request head.
    #[error("a bad request head: {0}")]
    BadHead(String),
}

/// One frame read from a buffer, its payload already unmasked in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Whether this is the last fragment.
    pub(crate) fin: bool,
    /// Its opcode.
    pub(crate) opcode: u8,
    /// Where its payload is in the buffer.
    pub(crate) payload: Range<usize>,
    /// Where the next frame starts.
    pub(crate) end: usize,
}

/// Reads the client frame starting at `at` in `buf`, unmasking its payload in place; `None`
/// until the whole frame is there.
pub(crate) fn read_frame(buf: &mut [u8], at: usize) -> Result<Option<Frame>, WireError> {
    let head = &buf[at..];
    if head.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (head[0], head[1]);
    if b0 & 0x70 != 0 {
        return Err(WireError::Reserved);
    }
    if b1 & 0x80 == 0 {
        return Err(WireError::Unmasked);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    let (len, mut pos) = match b1 & 0x7F {
        126 if head.len() >= 4 => (u64::from(u16::from_be_bytes([head[2], head[3]])), 4),
        127 if head.len() >= 10 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&head[2..10]);
            (u64::from_be_bytes(bytes), 10)
        }
        126 | 127 => return Ok(None),
        short => (u64::from(short), 2),
    };
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    if opcode >= opcode::CLOSE && (!fin || len > 125) {
        return Err(WireError::BadControl);
    }
    if head.len() < pos + 4 {
        return Ok(None);
    }
    let mask = [head[pos], head[pos + 1], head[pos + 2], head[pos + 3]];
    pos += 4;
    // MAX_FRAME fits in usize on every target this runs on.
    let len = len as usize;
    if head.len() < pos + len {
        return Ok(None);
    }
    let start = at + pos;
    for (i, byte) in buf[start..start + len].iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
    Ok(Some(Frame {
        fin,
        opcode,
        payload: start..start + len,
        end: start + len,
    }))
}

/// Appends an unmasked, unfragmented server frame.
pub(crate) fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// An HTTP request head: its path and the one header the stand-in needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The method.
    pub(crate) method: String,
    /// The path.
    pub(crate) path: String,
    /// `Sec-WebSocket-Key`, for an upgrade.
    pub(crate) websocket_key: Option<String>,
    /// Where the bytes after the head start.
    pub(crate) end: usize,
}

/// Parses the request head at the start of `buf`; `None` until its blank line has arrived.
pub(crate) fn read_head(buf: &[u8]) -> Result<Option<Head>, WireError> {
    let Some(blank) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&buf[..blank]).map_err(|_| WireError::BadHead("not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(WireError::BadHead(request.to_owned()));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(WireError::BadHead(request.to_owned()));
    }
    let websocket_key = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    });
    Ok(Some(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        websocket_key,
        end: blank + 4,
    }))
}

/// The `101 Switching Protocols` answer to an upgrade with `key`.
pub(crate) fn upgrade_response(key: &str) -> String {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// A complete HTTP answer that closes the connection.
pub(crate) fn http_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser or tungstenite would mask it.
    fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            len @ 0..=125 => out.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn masked_frames_of_every_length_encoding_are_read_back() {
        for len in [0, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut buf = masked(true, opcode::TEXT, &payload);
            let total = buf.len();
            let frame = read_frame(&mut buf, 0).unwrap().unwrap();
            assert_eq!(
                (frame.fin, frame.opcode, frame.end),
                (true, opcode::TEXT, total)
            );
            assert_eq!(&buf[frame.payload], &payload[..], "length {len}");
        }
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut whole = masked(true, opcode::TEXT, &[b'x'; 300]);
        for cut in [1, 3, 7, 200] {
            let mut part = whole[..cut].to_vec();
            assert_eq!(read_frame(&mut part, 0), Ok(None), "cut at {cut}");
        }
        assert!(read_frame(&mut whole, 0).unwrap().is_some());
    }

    #[test]
    fn frames_follow_each_other_and_fragments_keep_their_flags() {
        let mut buf = masked(false, opcode::TEXT, b"hel");
        buf.extend(masked(true, opcode::CONTINUATION, b"lo"));
        buf.extend(masked(true, opcode::PING, b"p"));
        let first = read_frame(&mut buf, 0).unwrap().unwrap();
        let second = read_frame(&mut buf, first.end).unwrap().unwrap();
        let third = read_frame(&mut buf, second.end).unwrap().unwrap();
        assert_eq!((first.fin, second.fin, second.opcode), (false, true, 0));
        assert_eq!(&buf[first.payload], b"hel");
        assert_eq!(&buf[second.payload], b"lo");
        assert_eq!(
            (third.opcode, &buf[third.payload]),
            (opcode::PING, &b"p"[..])
        );
    }

    #[test]
    fn unmasked_or_oversized_client_frames_are_refused() {
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(read_frame(&mut unmasked, 0), Err(WireError::Unmasked));
        let mut huge = vec![0x81, 0xFF];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(read_frame(&mut huge, 0), Err(WireError::TooLarge(1 << 40)));
    }

    #[test]
    fn server_frames_use_the_shortest_length() {
        for (len, header) in [(5usize, 2usize), (126, 4), (70_000, 10)] {
            let mut out = Vec::new();
            write_frame(&mut out, opcode::TEXT, &vec![b'a'; len]);
            assert_eq!(out.len(), header + len);
            assert_eq!(out[0], 0x81);
        }
    }

    #[test]
    fn an_upgrade_head_gives_its_path_and_key() {
        let head = b"GET /ws/v1 HTTP/1.1\r\nHost: x\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nrest";
        let parsed = read_head(head).unwrap().unwrap();
        assert_eq!(parsed.path, "/ws/v1");
        assert_eq!(parsed.end, head.len() - 4);
        // RFC 6455's example key and answer.
        assert!(upgrade_response(parsed.websocket_key.as_deref().unwrap())
            .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert_eq!(read_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }
}
