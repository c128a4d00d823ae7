//! Values that berthd writes into a container's /etc files (hostname,
//! hosts, resolv.conf): one line each, so a value with a line break or
//! other control character would add lines of the caller's choosing
//! (`"Dns": ["1.1.1.1\nnameserver 6.6.6.6"]`). Each is checked here, at
//! create and in daemon.json, and refused with dockerd's message where
//! dockerd has one.

use berth_actors::container::{Config, HostConfig};
use std::net::IpAddr;

/// Whitespace or a control character: never part of one /etc field.
fn breaks_field(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `Hostname` / `Domainname`: one word the kernel takes (at most 64
/// bytes, HOST_NAME_MAX).
pub fn check_hostname(what: &str, v: &str) -> Result<(), String> {
    if v.len() > 64 || breaks_field(v) {
        return Err(format!("invalid {what} format: {v:?}"));
    }
    Ok(())
}

/// A DNS server: an IP address.
pub fn check_dns(v: &str) -> Result<(), String> {
    if v.parse::<IpAddr>().is_err() {
        return Err(format!("IP address is not correctly formatted: {v:?}"));
    }
    Ok(())
}

/// A search domain: one word of at most 255 bytes.
pub fn check_dns_search(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 255 || breaks_field(v) {
        return Err(format!("{v:?} is not a valid domain"));
    }
    Ok(())
}

/// A resolver option (`ndots:2`): one word.
pub fn check_dns_option(v: &str) -> Result<(), String> {
    if v.is_empty() || breaks_field(v) {
        return Err(format!("invalid DNS option: {v:?}"));
    }
    Ok(())
}

/// `--add-host name:ip` (or `name=ip`, IPv6 in brackets or bare, or the
/// special `host-gateway`), with dockerd's messages.
pub fn check_extra_host(v: &str) -> Result<(), String> {
    let (name, ip) = match v.split_once('=').or_else(|| v.split_once(':')) {
        Some(p) => p,
        None => return Err(format!("bad format for add-host: {v:?}")),
    };
    if name.is_empty() || breaks_field(name) {
        return Err(format!("bad format for add-host: {v:?}"));
    }
    let bare = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    if ip != "host-gateway" && bare.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address in add-host: {ip:?}"));
    }
    Ok(())
}

/// Every /etc value of a create request (`Config` and its `HostConfig`).
pub fn check_create(cfg: &Config, hc: &HostConfig) -> Result<(), String> {
    if !cfg.hostname.is_empty() {
        check_hostname("hostname", &cfg.hostname)?;
    }
    if !cfg.domainname.is_empty() {
        check_hostname("domainname", &cfg.domainname)?;
    }
    for v in hc.dns() {
        check_dns(v)?;
    }
    for v in hc.dns_search() {
        check_dns_search(v)?;
    }
    for v in hc.dns_options() {
        check_dns_option(v)?;
    }
    for v in hc.extra_hosts() {
        check_extra_host(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(cfg: serde_json::Value, hc: serde_json::Value) -> Result<(), String> {
        check_create(
            &serde_json::from_value(cfg).unwrap(),
            &serde_json::from_value(hc).unwrap(),
        )
    }

    #[test]
    fn line_breaks_never_reach_etc_files() {
        let ok = check(
            json!({"Hostname": "web-1", "Domainname": "example.org"}),
            json!({"Dns": ["10.0.0.2", "fd00::53"], "DnsSearch": ["a.example"],
                    "DnsOptions": ["ndots:2", "rotate"],
                    "ExtraHosts": ["db:10.0.0.9", "v6:[fd00::1]", "v6b:fd00::2", "gw:host-gateway", "eq=10.0.0.8"]}),
        );
        assert_eq!(ok, Ok(()));
        for (cfg, hc, want) in [
            (
                json!({"Hostname": "a\nb"}),
                json!({}),
                "invalid hostname format",
            ),
            (
                json!({"Domainname": "a b"}),
                json!({}),
                "invalid domainname format",
            ),
            (
                json!({"Hostname": "h".repeat(65)}),
                json!({}),
                "invalid hostname format",
            ),
            (
                json!({}),
                json!({"Dns": ["1.1.1.1\nnameserver 6.6.6.6"]}),
                "IP address is not correctly formatted",
            ),
            (
                json!({}),
                json!({"DnsSearch": ["a.com\nnameserver 6.6.6.6"]}),
                "is not a valid domain",
            ),
            (
                json!({}),
                json!({"DnsOptions": ["ndots:1\nnameserver 6.6.6.6"]}),
                "invalid DNS option",
            ),
            (
                json!({}),
                json!({"ExtraHosts": ["h:1.2.3.4\n6.6.6.6 evil"]}),
                "invalid IP address in add-host",
            ),
            (
                json!({}),
                json!({"ExtraHosts": ["h\n6.6.6.6 evil:1.2.3.4"]}),
                "bad format for add-host",
            ),
            (
                json!({}),
                json!({"ExtraHosts": ["h 1.2.3.4"]}),
                "bad format for add-host",
            ),
        ] {
            let e = check(cfg, hc).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
