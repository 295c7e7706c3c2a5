//! A real SMTP server for the tests (tests/support/smtp_sink.py, on aiosmtpd) and a CA with a
//! server certificate made for each test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "belfry test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "belfry test SMTP server");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca).unwrap();

        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), leaf_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), leaf_key.serialize_pem()).unwrap();
        TestCa { dir }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// How the sink protects its connections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    StartTls,
    ImplicitTls,
}

/// A running SMTP server that stores what it accepts; killed when dropped.
pub struct Sink {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    out: tempfile::TempDir,
}

#[derive(Default)]
pub struct SinkOptions<'a> {
    pub tls: Option<&'a TestCa>,
    pub auth: Option<&'a str>,
    pub data_reply: Option<&'a str>,
    /// Close each connection right after answering its message.
    pub hangup: bool,
}

impl Sink {
    pub fn start(mode: Mode, opts: SinkOptions<'_>) -> Sink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let out = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
        cmd.arg(&script).arg("--dir").arg(out.path());
        cmd.arg("--mode").arg(match mode {
            Mode::Plain => "plain",
            Mode::StartTls => "starttls",
            Mode::ImplicitTls => "tls",
        });
        if let Some(ca) = opts.tls {
            cmd.arg("--cert")
                .arg(ca.dir.path().join("server.pem"))
                .arg("--key")
                .arg(ca.dir.path().join("server.key"));
        }
        if let Some(a) = opts.auth {
            cmd.arg("--auth").arg(a);
        }
        if let Some(r) = opts.data_reply {
            cmd.arg("--data-reply").arg(r);
        }
        if opts.hangup {
            cmd.arg("--hangup");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs (the e-mail tests need it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the SMTP sink did not start; is aiosmtpd installed? Run scripts/test-deps.sh.\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let stdin = child.stdin.take().unwrap();
        Sink {
            child,
            _stdin: stdin,
            port,
            out,
        }
    }

    /// Every message accepted so far, oldest first, as the sink recorded it.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// The raw text of the `i`-th message.
    pub fn raw(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.raw_bytes(i)).into_owned()
    }

    /// The `i`-th message's bytes as they came over the wire (the dots added for transparency
    /// removed, as the server stores them).
    pub fn raw_bytes(&self, i: usize) -> Vec<u8> {
        std::fs::read(self.out.path().join(format!("{:03}.eml", i + 1))).unwrap()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The decoded bytes of a part the sink recorded.
pub fn part_bytes(part: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(part["base64"].as_str().unwrap())
        .unwrap()
}

/// The decoded bytes of the part of a recorded message attached under `file_name`.
pub fn attached(msg: &serde_json::Value, file_name: &str) -> Vec<u8> {
    let found: Vec<_> = msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["filename"] == file_name)
        .collect();
    assert_eq!(found.len(), 1, "one part named {file_name:?}");
    part_bytes(found[0])
}

/// The parts of a recorded message with this content type.
pub fn parts<'a>(msg: &'a serde_json::Value, content_type: &str) -> Vec<&'a serde_json::Value> {
    msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["content_type"] == content_type)
        .collect()
}

/// A TLS server's settings with a certificate made now for localhost and 127.0.0.1, for the
/// loopback servers of protocols belfry speaks itself (the client is told `verify=no`).
pub fn tls_server() -> std::sync::Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    std::sync::Arc::new(config)
}

/// A loopback connection as a test's server holds it: plain, or TLS once it is switched.
pub enum Conn {
    Plain(std::net::TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>>),
}

impl Conn {
    /// The same connection, TLS from now on (the handshake happens on the first read).
    pub fn into_tls(self, config: &std::sync::Arc<rustls::ServerConfig>) -> Conn {
        match self {
            Conn::Plain(tcp) => {
                let server = rustls::ServerConnection::new(config.clone()).unwrap();
                Conn::Tls(Box::new(rustls::StreamOwned::new(server, tcp)))
            }
            tls => tls,
        }
    }

    /// Says goodbye as TLS asks (close_notify), then closes.
    pub fn close(mut self) {
        if let Conn::Tls(s) = &mut self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
    }
}

impl std::io::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl std::io::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
