//! Which webhook URLs foreman will call.
//!
//! A webhook URL is chosen by whoever submits a job, so without care foreman would POST
//! wherever it is told: its own admin ports, a cloud metadata service, the private
//! network. By default only public addresses are allowed. The check runs twice: at submit
//! time for a clear 400, and at connect time through [`GuardedResolver`], because a DNS
//! name can resolve elsewhere later. `FOREMAN_WEBHOOK_ALLOW_PRIVATE=true` lifts it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::{Host, Url};

/// Whether `ip` is one that webhooks must not reach by default: loopback, private,
/// link-local (cloud metadata lives there), CGNAT, unique-local, unspecified, multicast,
/// broadcast, documentation and benchmarking ranges, and IPv4 inside IPv6.
pub(crate) fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 to anything
                || first == 0x2002 // 6to4 wraps an IPv4 address
                || (v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
        }
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Checks a webhook URL at submit time; returns it parsed, or why it is refused.
pub(crate) async fn check(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url =
        Url::parse(raw.trim()).map_err(|err| format!("state_webhook_url is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("state_webhook_url must be http:// or https://".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("state_webhook_url must not carry credentials".into());
    }
    if allow_private {
        return url
            .host()
            .map(|_| url.clone())
            .ok_or_else(|| "state_webhook_url has no host".into());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<IpAddr> = match url.host() {
        None => return Err("state_webhook_url has no host".into()),
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(name)) => {
            // `localhost.` (the fully qualified spelling) is localhost too.
            let name = name.trim_end_matches('.');
            let lower = name.to_ascii_lowercase();
            if lower == "localhost" || lower.ends_with(".localhost") {
                return Err(refused(raw));
            }
            // A name that does not resolve now may later: let delivery retry it; the
            // connect-time check still applies.
            match tokio::net::lookup_host((name, port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            }
        }
    };
    if addresses.into_iter().any(is_forbidden) {
        return Err(refused(raw));
    }
    Ok(url)
}

fn refused(raw: &str) -> String {
    format!(
        "state_webhook_url {raw:?} points at a loopback, private or reserved address; \
         set FOREMAN_WEBHOOK_ALLOW_PRIVATE=true to allow that"
    )
}

/// A DNS resolver for the webhook client that drops forbidden addresses, so a name
/// cannot be re-pointed at a private address after the submit-time check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| !is_forbidden(a.ip())).collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to loopback, private or reserved addresses")
                        .into();
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a URL names a forbidden IP literally (the resolver never sees those).
pub(crate) fn literal_is_forbidden(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<std::net::Ipv6Addr>().expect("valid IPv6"))
    }

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(is_forbidden(v6(ip)), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["1.1.1.1", "8.8.8.8", "93.184.216.34"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        assert!(!is_forbidden(v6("2606:4700:4700::1111")));
    }

    #[tokio::test]
    async fn urls_naming_private_hosts_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://2130706433/hook", // 127.0.0.1 as an integer
            "http://0x7f.1/hook",
            "http://[::1]/hook",
            "http://[::ffff:169.254.169.254]/latest",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(check(url, false).await.is_err(), "{url} must be refused");
        }
    }

    #[tokio::test]
    async fn the_connect_time_resolver_refuses_names_that_resolve_to_loopback() {
        use reqwest::dns::Resolve;
        for name in ["localhost", "LOCALHOST", "127.0.0.1"] {
            let resolved = GuardedResolver.resolve(name.parse().unwrap()).await;
            assert!(resolved.is_err(), "{name} must not resolve for a webhook");
        }
    }

    #[tokio::test]
    async fn allow_private_lets_loopback_through_but_not_nonsense() {
        assert!(check("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check("ftp://127.0.0.1/hook", true).await.is_err());
        assert!(check("not a url", true).await.is_err());
        assert!(check("http://user:pw@example.com/", true).await.is_err());
    }
}
