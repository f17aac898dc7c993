//! The HTTP client that reaches the cabinet server, made to work on every terminal:
//! trust roots and name resolution that do not depend on where Linux keeps them.
//!
//! Trust: the system store (`rustls-native-certs`: the usual Linux paths), Android's
//! `/system/etc/security/cacerts`, and `ca_file`; when the system gives no root at all, the
//! bundled Mozilla roots (`webpki-root-certs`). Names: the configured `resolvers` if any;
//! else the system's resolver where `/etc/resolv.conf` exists; else (Android) public
//! resolvers, asked directly.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use reqwest::Certificate;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::ServerConfig;

/// Android keeps its system trust roots here, one PEM file each.
const ANDROID_CA_DIR: &str = "/system/etc/security/cacerts";
/// Asked when the configuration names no resolver and the system has none:
/// Cloudflare, Google, Yandex.
const FALLBACK_RESOLVERS: [IpAddr; 3] = [
    IpAddr::V4(std::net::Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(std::net::Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(std::net::Ipv4Addr::new(77, 88, 8, 8)),
];

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The `ca_file` could not be read or holds no certificate.
    #[error("ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// reqwest refused the settings.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Where the trust roots came from, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RootSources {
    /// Roots from the system store.
    pub system: usize,
    /// Roots from Android's store.
    pub android: usize,
    /// Roots from `ca_file`.
    pub ca_file: usize,
    /// Bundled Mozilla roots (used only when the system gave none).
    pub bundled: usize,
}

/// The trust roots for `server`, and where they came from.
pub fn trust_roots(ca_file: Option<&Path>) -> Result<(Vec<Certificate>, RootSources), NetError> {
    let mut roots = Vec::new();
    let mut sources = RootSources::default();
    for der in rustls_native_certs::load_native_certs().certs {
        if let Ok(cert) = Certificate::from_der(der.as_ref()) {
            roots.push(cert);
            sources.system += 1;
        }
    }
    if let Ok(dir) = std::fs::read_dir(ANDROID_CA_DIR) {
        for file in dir.flatten() {
            let Ok(pem) = std::fs::read(file.path()) else { continue };
            for cert in Certificate::from_pem_bundle(&pem).unwrap_or_default() {
                roots.push(cert);
                sources.android += 1;
            }
        }
    }
    if sources.system + sources.android == 0 {
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            if let Ok(cert) = Certificate::from_der(der.as_ref()) {
                roots.push(cert);
                sources.bundled += 1;
            }
        }
    }
    if let Some(path) = ca_file {
        let bad = |message: String| NetError::CaFile { path: path.display().to_string(), message };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        sources.ca_file = certs.len();
        roots.extend(certs);
    }
    Ok((roots, sources))
}

/// The resolvers to ask directly, or `None` to use the system's.
pub fn direct_resolvers(configured: &[IpAddr], system_conf_exists: bool) -> Option<Vec<IpAddr>> {
    if !configured.is_empty() {
        Some(configured.to_vec())
    } else if system_conf_exists {
        None
    } else {
        Some(FALLBACK_RESOLVERS.to_vec())
    }
}

/// A resolver that asks given DNS servers directly (hickory), bypassing the C library.
struct DirectResolver(hickory_resolver::TokioResolver);

impl DirectResolver {
    fn new(servers: &[IpAddr]) -> DirectResolver {
        let group = NameServerConfigGroup::from_ips_clear(servers, 53, true);
        let config = ResolverConfig::from_parts(None, vec![], group);
        let resolver =
            hickory_resolver::Resolver::builder_with_config(config, TokioConnectionProvider::default()).build();
        DirectResolver(resolver)
    }
}

impl Resolve for DirectResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.0.clone();
        Box::pin(async move {
            let found = resolver.lookup_ip(name.as_str()).await?;
            let addrs: Addrs =
                Box::new(found.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect::<Vec<_>>().into_iter());
            Ok(addrs)
        })
    }
}

/// The client the forwarder uses.
pub fn client(server: &ServerConfig) -> Result<reqwest::Client, NetError> {
    let (roots, sources) = trust_roots(server.ca_file.as_deref())?;
    tracing::info!(?sources, "trust roots");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(roots)
        .timeout(server.timeout)
        .connect_timeout(server.timeout)
        .user_agent(concat!("cash-register-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(servers) = direct_resolvers(&server.resolvers, Path::new("/etc/resolv.conf").exists()) {
        tracing::info!(?servers, "asking DNS servers directly");
        builder = builder.dns_resolver(Arc::new(DirectResolver::new(&servers)));
    }
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_come_from_the_config_then_the_system_then_the_fallback() {
        let configured: IpAddr = "10.0.0.53".parse().unwrap();
        assert_eq!(direct_resolvers(&[configured], true), Some(vec![configured]));
        assert_eq!(direct_resolvers(&[], true), None);
        assert_eq!(direct_resolvers(&[], false), Some(FALLBACK_RESOLVERS.to_vec()));
    }

    #[test]
    fn a_ca_file_is_added_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, cert.cert.pem()).unwrap();
        let (roots, sources) = trust_roots(Some(&path)).unwrap();
        assert_eq!(sources.ca_file, 1);
        assert!(sources.system + sources.android + sources.bundled > 0, "{sources:?}");
        assert_eq!(roots.len(), sources.system + sources.android + sources.bundled + 1);

        std::fs::write(&path, "not a certificate").unwrap();
        assert!(matches!(trust_roots(Some(&path)), Err(NetError::CaFile { .. })));
    }
}
