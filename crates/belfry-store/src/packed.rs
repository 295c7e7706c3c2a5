//! Text as a store keeps it (a notification's JSON, a run's kept output): as it is when short,
//! deflated when longer. The same bytes in both backends, so that a copy moves them as they are.

use std::io::{Read, Write};

/// Text up to this many bytes is stored as it is; longer text is deflated.
const PACK_ABOVE: usize = 4096;

/// The first byte of text stored as it is. Read as the start of a deflate stream, its block
/// type bits are 3, which deflate reserves and no compressor writes: so a stored value is
/// plain when it starts with this byte, and a deflate stream (every value before plain ones
/// existed) when it does not.
const PLAIN: u8 = 0x07;

/// `text` as stored. Setting up a compressor's state costs more than compressing a few
/// hundred bytes saves (about 0.1 ms a notification, most of an alert's recording).
pub(crate) fn pack(text: &str) -> Vec<u8> {
    if text.len() <= PACK_ABOVE {
        let mut out = Vec::with_capacity(text.len() + 1);
        out.push(PLAIN);
        out.extend_from_slice(text.as_bytes());
        out
    } else {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes())
            .and_then(|()| enc.finish())
            .expect("writing to memory cannot fail")
    }
}

/// What [`pack`] kept (or an earlier version deflated), as text.
pub(crate) fn unpack(stored: &[u8]) -> std::io::Result<String> {
    match stored {
        [PLAIN, text @ ..] => String::from_utf8(text.to_vec())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        deflated => {
            let mut out = String::new();
            flate2::read::DeflateDecoder::new(deflated).read_to_string(&mut out)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_as_it_is_long_text_deflated_and_both_read_back() {
        let short = "{\"job\":\"backup\"}";
        assert_eq!(pack(short)[0], PLAIN);
        assert_eq!(&pack(short)[1..], short.as_bytes());
        assert_eq!(unpack(&pack(short)).unwrap(), short);
        let long = "a line of output\n".repeat(1000);
        assert!(pack(&long).len() < long.len() / 10, "deflated");
        assert_eq!(unpack(&pack(&long)).unwrap(), long);
        // What earlier versions wrote, deflated whatever its size, still reads back.
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(short.as_bytes()).unwrap();
        assert_eq!(unpack(&enc.finish().unwrap()).unwrap(), short);
        assert!(unpack(&[PLAIN, 0xff]).is_err(), "not UTF-8");
    }
}
