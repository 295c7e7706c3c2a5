//! The MQTT packets a publisher sends and the answers it reads, for protocol versions 3.1
//! (`MQIsdp`, level 3), 3.1.1 (level 4) and 5.0 (level 5, with empty property lists).

/// A protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    V31,
    V311,
    V5,
}

impl Version {
    fn name_and_level(self) -> (&'static str, u8) {
        match self {
            Version::V31 => ("MQIsdp", 3),
            Version::V311 => ("MQTT", 4),
            Version::V5 => ("MQTT", 5),
        }
    }
}

/// What CONNECT carries.
pub(super) struct Connect<'a> {
    pub version: Version,
    pub client_id: &'a str,
    pub clean_session: bool,
    pub keep_alive: u16,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
}

/// Appends `n` as MQTT's variable-length integer.
fn varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

/// Appends a length-prefixed string (or binary data).
fn bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s[..usize::from(len)]);
}

/// A whole packet: the first byte, the remaining length, the rest.
fn packet(first: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(&mut out, rest.len());
    out.extend_from_slice(rest);
    out
}

pub(super) fn connect(c: &Connect<'_>) -> Vec<u8> {
    let (name, level) = c.version.name_and_level();
    let mut rest = Vec::new();
    bytes(&mut rest, name.as_bytes());
    rest.push(level);
    let mut flags = 0u8;
    if c.clean_session {
        flags |= 0x02;
    }
    if c.user.is_some() {
        flags |= 0x80;
        if c.password.is_some() {
            flags |= 0x40;
        }
    }
    rest.push(flags);
    rest.extend_from_slice(&c.keep_alive.to_be_bytes());
    if c.version == Version::V5 {
        rest.push(0); // no properties
    }
    bytes(&mut rest, c.client_id.as_bytes());
    if let Some(u) = c.user {
        bytes(&mut rest, u.as_bytes());
        if let Some(p) = c.password {
            bytes(&mut rest, p.as_bytes());
        }
    }
    packet(0x10, &rest)
}

/// PUBLISH of `payload` to `topic`; `id` is the packet id (QoS 1 and 2 only).
pub(super) fn publish(
    version: Version,
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    id: u16,
) -> Vec<u8> {
    let mut rest = Vec::new();
    bytes(&mut rest, topic.as_bytes());
    if qos > 0 {
        rest.extend_from_slice(&id.to_be_bytes());
    }
    if version == Version::V5 {
        rest.push(0);
    }
    rest.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | u8::from(retain), &rest)
}

/// PUBREL for packet `id` (the third step of QoS 2).
pub(super) fn pubrel(id: u16) -> Vec<u8> {
    packet(0x62, &id.to_be_bytes())
}

pub(super) fn disconnect() -> Vec<u8> {
    vec![0xE0, 0x00]
}

/// A packet read from the broker: its type (the high four bits of its first byte) and body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Incoming {
    pub kind: u8,
    pub body: Vec<u8>,
}

/// Reads the remaining length of a packet from its bytes after the first; `None` if it is
/// malformed (more than four bytes).
pub(super) fn read_varint(mut next: impl FnMut() -> Option<u8>) -> Option<usize> {
    let mut n = 0usize;
    for i in 0..4 {
        let b = next()?;
        n += usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// What a CONNACK says: `Ok` when the broker took the connection, else its code and whether
/// the refusal is for good (credentials, authorisation, protocol) rather than for now.
pub(super) fn connack(version: Version, body: &[u8]) -> Result<(), (u8, bool)> {
    let code = *body.get(1).ok_or((0xFF, false))?;
    match (version, code) {
        (_, 0) => Ok(()),
        // 3: server unavailable; v5 0x88 server unavailable, 0x89 busy, 0x97 quota.
        (Version::V31 | Version::V311, 3) | (Version::V5, 0x88 | 0x89 | 0x97) => Err((code, false)),
        (_, c) => Err((c, true)),
    }
}

/// The packet id an acknowledgement (PUBACK, PUBREC, PUBCOMP) names, and its v5 reason code
/// (0 when absent).
pub(super) fn ack(body: &[u8]) -> Option<(u16, u8)> {
    let id = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    Some((id, body.get(2).copied().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_written_and_read_as_mqtt_varints() {
        for n in [0usize, 127, 128, 16_383, 16_384, 2_097_151, 268_435_455] {
            let mut out = Vec::new();
            varint(&mut out, n);
            let mut it = out.iter().copied();
            assert_eq!(read_varint(|| it.next()), Some(n), "{n}");
        }
        let mut bad = [0xFFu8; 5].into_iter();
        assert_eq!(read_varint(|| bad.next()), None);
    }

    #[test]
    fn connect_and_publish_are_laid_out_as_the_spec_says() {
        let c = connect(&Connect {
            version: Version::V311,
            client_id: "b",
            clean_session: true,
            keep_alive: 30,
            user: Some("u"),
            password: Some("p"),
        });
        assert_eq!(
            c,
            [
                0x10, 19, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30, 0, 1, b'b', 0, 1, b'u', 0,
                1, b'p'
            ]
        );
        let p = publish(Version::V311, "a/b", b"hi", 1, true, 7);
        assert_eq!(p, [0x33, 9, 0, 3, b'a', b'/', b'b', 0, 7, b'h', b'i']);
        let p = publish(Version::V5, "t", b"x", 0, false, 0);
        assert_eq!(p, [0x30, 5, 0, 1, b't', 0, b'x']);
        assert_eq!(connack(Version::V311, &[0, 0]), Ok(()));
        assert_eq!(connack(Version::V311, &[0, 5]), Err((5, true)));
        assert_eq!(connack(Version::V311, &[0, 3]), Err((3, false)));
        assert_eq!(ack(&[0, 7]), Some((7, 0)));
    }
}
