//! TLS for the client and peer ports (rustls, ring provider), and
//! [`Transport`]: a non-blocking socket that is either plain TCP or TLS
//! over it, read and written the same way by client connections and peer
//! links.
//!
//! `--tls-cert` and `--tls-key` turn TLS on for every client (as Redis's
//! `tls-port` with `port 0`); with `--tls-auth-clients yes` a client must
//! also present a certificate the `--tls-ca` signed. On a node of a cluster
//! the peer links use TLS too, both ways verified against `--tls-ca`: each
//! node presents its certificate, whose subject alternative names must
//! include its peer address's IP. The peer handshake's HMAC proofs run
//! inside TLS, unchanged.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// The files TLS is set up from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA that signs peers' certificates (and clients', with
    /// `auth_clients`), PEM. Needed on a node of a cluster.
    pub ca: Option<PathBuf>,
    /// Whether clients must present a certificate the CA signed.
    pub auth_clients: bool,
}

/// Why TLS could not be set up: the file and what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {what}")]
pub struct TlsError {
    what: String,
}

fn tls_error(what: impl Into<String>) -> TlsError {
    TlsError { what: what.into() }
}

/// The rustls configurations a node uses, built once at start.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    /// For the client port.
    pub clients: Arc<ServerConfig>,
    /// For accepted peer links: a peer must present a certificate the CA
    /// signed.
    pub peer_server: Option<Arc<ServerConfig>>,
    /// For dialled peer links: this node's certificate, and the CA to
    /// check the peer's with.
    pub peer_client: Option<Arc<ClientConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(format!("{}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_error(format!(
            "{}: no certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_error(format!("{}: {e}", path.display())))
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
    }
    Ok(Arc::new(roots))
}

impl TlsSetup {
    /// Reads the files and builds the configurations; `clustered` asks for
    /// the peer ones too (which need the CA).
    pub fn load(files: &TlsFiles, clustered: bool) -> Result<TlsSetup, TlsError> {
        let certs = load_certs(&files.cert)?;
        let key = load_key(&files.key)?;
        let roots = files.ca.as_deref().map(load_roots).transpose()?;
        let versions = |e: rustls::Error| tls_error(e.to_string());
        let server = |verify_clients: bool| -> Result<Arc<ServerConfig>, TlsError> {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(versions)?;
            let builder = match (&roots, verify_clients) {
                (Some(roots), true) => {
                    let verifier =
                        WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider())
                            .build()
                            .map_err(|e| tls_error(e.to_string()))?;
                    builder.with_client_cert_verifier(verifier)
                }
                (None, true) => {
                    return Err(tls_error(
                        "verifying certificates (--tls-auth-clients, or peers) needs --tls-ca",
                    ))
                }
                _ => builder.with_no_client_auth(),
            };
            let config = builder
                .with_single_cert(certs.clone(), key.clone_key())
                .map_err(|e| tls_error(format!("{}: {e}", files.key.display())))?;
            Ok(Arc::new(config))
        };
        let clients = server(files.auth_clients)?;
        if !clustered {
            return Ok(TlsSetup {
                clients,
                peer_server: None,
                peer_client: None,
            });
        }
        let peer_server = server(true)?;
        let Some(roots) = roots else {
            return Err(tls_error(
                "a node of a cluster needs --tls-ca to verify its peers",
            ));
        };
        let peer_client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(versions)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| tls_error(format!("{}: {e}", files.key.display())))?;
        Ok(TlsSetup {
            clients,
            peer_server: Some(peer_server),
            peer_client: Some(Arc::new(peer_client)),
        })
    }
}

/// A connection's socket: plain TCP, or TLS over it. Non-blocking either
/// way: `Read` and `Write` return `WouldBlock` when the socket would.
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls {
        socket: TcpStream,
        tls: Box<rustls::Connection>,
    },
}

impl Transport {
    /// An accepted socket: plain without `tls`, else the server side of
    /// TLS over it.
    pub fn accept(socket: TcpStream, tls: Option<&Arc<ServerConfig>>) -> io::Result<Transport> {
        let Some(config) = tls else {
            return Ok(Transport::Plain(socket));
        };
        let tls = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(Transport::Tls {
            socket,
            tls: Box::new(tls.into()),
        })
    }

    /// A dialled socket to `ip`: plain without `tls`, else the client side
    /// of TLS over it, the peer's certificate having to name that IP.
    pub fn dial(
        socket: TcpStream,
        tls: Option<&Arc<ClientConfig>>,
        ip: IpAddr,
    ) -> io::Result<Transport> {
        let Some(config) = tls else {
            return Ok(Transport::Plain(socket));
        };
        let name = ServerName::IpAddress(ip.into());
        let tls = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        Ok(Transport::Tls {
            socket,
            tls: Box::new(tls.into()),
        })
    }

    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(socket) | Transport::Tls { socket, .. } => socket,
        }
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(socket) | Transport::Tls { socket, .. } => socket,
        }
    }

    /// Whether a short read says nothing about the socket being drained
    /// (TLS decrypts record by record), so reading must go on to
    /// `WouldBlock` under edge-triggered polling.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls { .. })
    }

    /// Whether TLS has bytes of its own to send (handshake, records the
    /// socket would not take yet): the connection wants WRITABLE.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls { tls, .. } => tls.wants_write(),
        }
    }

    /// Sends what TLS has queued, until done or the socket would block.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        if let Transport::Tls { socket, tls } = self {
            while tls.wants_write() {
                match tls.write_tls(socket) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (socket, tls) = match self {
            Transport::Plain(socket) => return socket.read(buf),
            Transport::Tls { socket, tls } => (socket, tls),
        };
        // Bounded: each pass either returns or reads TLS records from the
        // socket, which ends at WouldBlock or EOF.
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let processed = tls.process_new_packets();
                    // Whatever TLS must answer (handshake, alerts) goes now.
                    while tls.wants_write() {
                        match tls.write_tls(socket) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = processed {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (socket, tls) = match self {
            Transport::Plain(socket) => return socket.write(buf),
            Transport::Tls { socket, tls } => (socket, tls),
        };
        let accepted = tls.writer().write(buf)?;
        // Records go out as far as the socket takes them; the rest waits
        // in TLS and the connection asks for WRITABLE (`wants_write`).
        while tls.wants_write() {
            match tls.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if accepted == 0 && !buf.is_empty() {
            // TLS's own buffer is full and the socket takes nothing more.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(accepted)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write_vectored(bufs),
            Transport::Tls { .. } => match bufs.iter().find(|b| !b.is_empty()) {
                Some(buf) => self.write(buf),
                None => Ok(0),
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}
