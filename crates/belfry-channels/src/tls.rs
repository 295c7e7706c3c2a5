//! TLS for the channels that speak a protocol of their own over TCP (`mqtts://`, `ircs://`):
//! rustls with the system's trust store (as the HTTP clients), or, for a URL with `verify=no`,
//! a verifier that accepts any certificate but still checks the handshake's signatures.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::ConfigVerifierExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Accepts any certificate (a URL's `verify=no`); signatures are still verified.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `tcp` wrapped in TLS for `host`; the error names what failed, without secrets.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    verify: bool,
) -> Result<TlsStream<TcpStream>, String> {
    // ring, installed once per process (as for the HTTP clients); "already installed" is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = if verify {
        ClientConfig::with_platform_verifier()
            .map_err(|e| format!("cannot load the system's certificates: {e}"))?
    } else {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host:?} is not a name TLS can check"))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))
}
