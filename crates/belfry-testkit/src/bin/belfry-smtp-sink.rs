//! An SMTP sink for benchmarks (scripts/bench-mail.sh): listens on 127.0.0.1 (port from the
//! first argument, default a free one), prints `PORT <n>`, accepts every mail and keeps none
//! but the last. It is built to cost as little as possible a mail, so that a benchmark of two
//! clients measures the clients and not the server: a thread per connection, commands parsed
//! from a buffer of what arrived, replies to pipelined commands written together, and a
//! message's data taken in bulk up to its CRLF.CRLF rather than line by line.
//!
//! Each line on standard input makes it write the number of mails accepted so far to
//! `<DIR>/count` and the last mail's data (dot-unstuffed, as a client hands it over) to
//! `<DIR>/mail.eml`, where DIR is the second argument; without one it prints the count on
//! standard output. It exits when standard input ends.

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The largest message taken, advertised as SIZE; a bigger one is refused.
const MAX_SIZE: usize = 32 << 20;
/// The longest command line taken (RFC 5321 allows 512 octets; extensions add some).
const MAX_LINE: usize = 4096;

#[derive(Default)]
struct Sink {
    mails: AtomicU64,
    /// The last mail's data as it came on the wire (still dot-stuffed).
    last: Mutex<Vec<u8>>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let dir = args.next().map(std::path::PathBuf::from);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    let sink = Arc::new(Sink::default());
    #[allow(clippy::print_stdout)]
    {
        println!(
            "PORT {}",
            listener.local_addr().expect("local address").port()
        );
    }
    let _ = std::io::stdout().flush();
    {
        let sink = Arc::clone(&sink);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    // A connection that breaks ends its thread; nothing else to do.
                    let _ = serve(stream, &sink);
                });
            }
        });
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        if line.is_err() {
            break;
        }
        let n = sink.mails.load(Ordering::SeqCst);
        match &dir {
            Some(dir) => {
                let last = unstuff(&sink.last.lock().unwrap_or_else(|e| e.into_inner()));
                let written = std::fs::write(dir.join("mail.eml"), last)
                    .and_then(|()| std::fs::write(dir.join("count.tmp"), n.to_string()))
                    .and_then(|()| std::fs::rename(dir.join("count.tmp"), dir.join("count")));
                if let Err(e) = written {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("belfry-smtp-sink: cannot write to {}: {e}", dir.display());
                    }
                }
            }
            #[allow(clippy::print_stdout)]
            None => println!("{n}"),
        }
    }
}

/// What has arrived on a connection and not been taken yet, and the replies not yet written.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
}

impl Conn {
    /// Reads more, first writing the replies so far: a client that pipelines its commands gets
    /// all its replies in one write, once nothing more of what it sent is waiting.
    fn fill(&mut self) -> std::io::Result<bool> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n > 0)
    }

    /// The next command line without its line ending, or `None` when the client has gone.
    fn line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        // How much of what is waiting has been searched (reading more may move it).
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[self.start + scanned..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let nl = self.start + scanned + i;
                let mut line = &self.buf[self.start..nl];
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                let line = line.to_vec();
                self.start = nl + 1;
                return Ok(Some(line));
            }
            if self.end - self.start > MAX_LINE {
                return Err(std::io::Error::other("command line too long"));
            }
            scanned = self.end - self.start;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// A message's data up to the line holding only a dot, which is consumed but not returned;
    /// `None` when the client has gone or the message is too big.
    fn data(&mut self, into: &mut Vec<u8>) -> std::io::Result<Option<()>> {
        // The terminator is CRLF.CRLF, where the first CRLF may be the one that ended the DATA
        // command itself (an empty message).
        into.clear();
        into.extend_from_slice(b"\r\n");
        let mut scanned = 0;
        loop {
            into.extend_from_slice(&self.buf[self.start..self.end]);
            self.start = self.end;
            if let Some(at) = find_end(&into[scanned..]) {
                let at = scanned + at;
                // Give back what came after the terminator: pipelined commands.
                let after = into.len() - (at + 5);
                self.start = self.end - after;
                into.truncate(at + 2);
                into.drain(..2);
                return Ok(Some(()));
            }
            if into.len() > MAX_SIZE + 2 {
                return Ok(None);
            }
            scanned = into.len().saturating_sub(4);
            if !self.fill()? {
                return Ok(None);
            }
        }
    }
}

/// Where `\r\n.\r\n` starts in `hay`.
fn find_end(hay: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == b'.') {
        let dot = from + i;
        if dot >= 2 && hay[dot - 2..dot] == *b"\r\n" && hay.get(dot + 1..dot + 3) == Some(b"\r\n") {
            return Some(dot - 2);
        }
        from = dot + 1;
    }
    None
}

/// The data as the client had it: a line's leading dot doubled on the wire is single.
fn unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut line_start = true;
    for (i, &b) in data.iter().enumerate() {
        if !(line_start && b == b'.' && data.get(i + 1) == Some(&b'.')) {
            out.push(b);
        }
        line_start = b == b'\n';
    }
    out
}

fn serve(stream: TcpStream, sink: &Sink) -> std::io::Result<()> {
    let mut c = Conn {
        stream,
        buf: vec![0; 64 << 10],
        start: 0,
        end: 0,
        out: Vec::with_capacity(1024),
    };
    c.out
        .extend_from_slice(b"220 bench.test ESMTP belfry-smtp-sink\r\n");
    let (mut from, mut rcpts) = (false, 0usize);
    let mut data = Vec::with_capacity(64 << 10);
    while let Some(line) = c.line()? {
        let verb = line.get(..4).map(<[u8]>::to_ascii_uppercase);
        let reply: &[u8] = match verb.as_deref() {
            Some(b"EHLO") => {
                (from, rcpts) = (false, 0);
                b"250-bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 33554432\r\n"
            }
            Some(b"HELO") => {
                (from, rcpts) = (false, 0);
                b"250 bench.test\r\n"
            }
            Some(b"MAIL") if from => b"503 5.5.1 MAIL already given\r\n",
            Some(b"MAIL") => {
                from = true;
                b"250 2.1.0 OK\r\n"
            }
            Some(b"RCPT") if !from => b"503 5.5.1 MAIL first\r\n",
            Some(b"RCPT") => {
                rcpts += 1;
                b"250 2.1.5 OK\r\n"
            }
            Some(b"DATA") if rcpts == 0 => b"503 5.5.1 RCPT first\r\n",
            Some(b"DATA") => {
                c.out
                    .extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                (from, rcpts) = (false, 0);
                if c.data(&mut data)?.is_none() {
                    c.out.extend_from_slice(b"552 5.3.4 Message too big\r\n");
                    c.stream.write_all(&c.out)?;
                    return Ok(());
                }
                std::mem::swap(
                    &mut *sink.last.lock().unwrap_or_else(|e| e.into_inner()),
                    &mut data,
                );
                sink.mails.fetch_add(1, Ordering::SeqCst);
                b"250 2.0.0 OK\r\n"
            }
            Some(b"RSET") => {
                (from, rcpts) = (false, 0);
                b"250 2.0.0 OK\r\n"
            }
            Some(b"NOOP") => b"250 2.0.0 OK\r\n",
            Some(b"QUIT") => {
                c.out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                c.stream.write_all(&c.out)?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognised\r\n",
        };
        c.out.extend_from_slice(reply);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_data_is_found_only_as_a_line_holding_one_dot() {
        assert_eq!(find_end(b"\r\n.\r\n"), Some(0));
        assert_eq!(find_end(b"\r\nab\r\n..x\r\n.\r\n"), Some(9));
        assert_eq!(find_end(b"\r\na.\r\n"), None);
        assert_eq!(find_end(b"\r\n.x\r\n"), None);
        assert_eq!(find_end(b"\r\n.\r"), None);
    }

    #[test]
    fn a_doubled_leading_dot_is_single_once_taken() {
        assert_eq!(unstuff(b"..a\r\nb..\r\n...\r\n"), b".a\r\nb..\r\n..\r\n");
    }
}
