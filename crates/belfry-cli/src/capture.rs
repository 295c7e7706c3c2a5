//! The bounded record of a run's output: its first lines and its last bytes.

/// Keeps the first `head_lines` lines (at most [`HEAD_CAP`] bytes) and the last `tail_bytes`
/// bytes of everything pushed, and counts the rest.
#[derive(Debug)]
pub struct Capture {
    head: Vec<u8>,
    head_lines_left: usize,
    tail: std::collections::VecDeque<u8>,
    tail_cap: usize,
    total: u64,
}

/// The head never holds more than this, whatever the lines' length.
pub const HEAD_CAP: usize = 8 * 1024;

impl Capture {
    /// An empty capture.
    pub fn new(head_lines: usize, tail_bytes: usize) -> Self {
        Capture {
            head: Vec::new(),
            head_lines_left: head_lines,
            tail: std::collections::VecDeque::new(),
            tail_cap: tail_bytes,
            total: 0,
        }
    }

    /// Adds output.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        while self.head_lines_left > 0 && !bytes.is_empty() && self.head.len() < HEAD_CAP {
            let room = HEAD_CAP - self.head.len();
            let upto = bytes.len().min(room);
            match bytes[..upto].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.head.extend_from_slice(&bytes[..=i]);
                    bytes = &bytes[i + 1..];
                    self.head_lines_left -= 1;
                }
                None => {
                    self.head.extend_from_slice(&bytes[..upto]);
                    bytes = &bytes[upto..];
                }
            }
        }
        if self.tail_cap == 0 {
            return;
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes pushed in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept output as text: the head, a marker saying how much was left out (if any), and
    /// the tail. Invalid UTF-8 is replaced, never rejected.
    pub fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("[… {} bytes not kept …]\n", self.total - kept));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = Capture::new(2, 100);
        c.push(b"one\ntwo\nthree\n");
        assert_eq!(c.render(), "one\ntwo\nthree\n");
        assert_eq!(c.total(), 14);
    }

    #[test]
    fn long_output_keeps_first_lines_and_last_bytes() {
        let mut c = Capture::new(2, 10);
        for i in 0..1000 {
            c.push(format!("line {i}\n").as_bytes());
        }
        let r = c.render();
        assert!(r.starts_with("line 0\nline 1\n[… "), "{r}");
        assert!(r.ends_with("line 999\n"), "{r}");
        assert!(r.len() < 100, "{r}");
    }

    #[test]
    fn a_huge_line_cannot_grow_the_head_past_its_cap() {
        let mut c = Capture::new(3, 16);
        c.push(&vec![b'x'; 1 << 20]);
        assert!(c.render().len() < HEAD_CAP + 100);
        assert_eq!(c.total(), 1 << 20);
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let text: Vec<u8> = (0..5000).map(|i| b"abc\n"[i % 4]).collect();
        let mut whole = Capture::new(3, 100);
        whole.push(&text);
        let mut bits = Capture::new(3, 100);
        for chunk in text.chunks(7) {
            bits.push(chunk);
        }
        assert_eq!(whole.render(), bits.render());
    }
}
