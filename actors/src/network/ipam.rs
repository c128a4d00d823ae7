//! IPv4 address management inside a network's pools: the gateway, the
//! aux addresses and the endpoints' addresses are taken; the lowest free
//! address of the range is handed out.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 32).then_some(Cidr { addr, prefix })
    }
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    pub fn network(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }
    pub fn broadcast(&self) -> u32 {
        self.network() | !self.mask()
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.network()
    }
    pub fn overlaps(&self, o: &Cidr) -> bool {
        let m = self.mask() & o.mask();
        self.network() & m == o.network() & m
    }
    /// The canonical form (`10.1.2.0/24` for `10.1.2.3/24`).
    pub fn canonical(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network()), self.prefix)
    }
    /// The first usable host address (dockerd's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network() + u32::from(self.prefix < 31))
    }
}

/// The lowest address of `range` (or the subnet) that is neither the
/// network nor the broadcast address nor in `taken`.
pub fn allocate(
    subnet: &Cidr,
    range: Option<&Cidr>,
    taken: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let r = range.unwrap_or(subnet);
    let (lo, hi) = (
        r.network().max(subnet.network()),
        r.broadcast().min(subnet.broadcast()),
    );
    (lo..=hi)
        .filter(|a| subnet.prefix >= 31 || (*a != subnet.network() && *a != subnet.broadcast()))
        .map(Ipv4Addr::from)
        .find(|a| !taken.contains(a))
}

/// An IPv6 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr6 {
    pub addr: std::net::Ipv6Addr,
    pub prefix: u8,
}

impl Cidr6 {
    pub fn parse(s: &str) -> Option<Cidr6> {
        let (a, p) = s.split_once('/')?;
        let addr: std::net::Ipv6Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 128).then_some(Cidr6 { addr, prefix })
    }
    pub fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - self.prefix)
        }
    }
    pub fn network(&self) -> u128 {
        u128::from(self.addr) & self.mask()
    }
    pub fn contains(&self, ip: std::net::Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == self.network()
    }
    pub fn overlaps(&self, o: &Cidr6) -> bool {
        let m = self.mask() & o.mask();
        self.network() & m == o.network() & m
    }
    pub fn canonical(&self) -> String {
        format!(
            "{}/{}",
            std::net::Ipv6Addr::from(self.network()),
            self.prefix
        )
    }
    pub fn first_host(&self) -> std::net::Ipv6Addr {
        std::net::Ipv6Addr::from(self.network() + 1)
    }
}

/// The lowest address of `range` (or the subnet) after the subnet's own
/// address that is not in `taken` (the first 65536 candidates).
pub fn allocate6(
    subnet: &Cidr6,
    range: Option<&Cidr6>,
    taken: &BTreeSet<std::net::Ipv6Addr>,
) -> Option<std::net::Ipv6Addr> {
    let r = range.unwrap_or(subnet);
    let lo = r.network().max(subnet.network() + 1);
    (lo..lo.saturating_add(65536))
        .map(std::net::Ipv6Addr::from)
        .filter(|a| subnet.contains(*a) && r.contains(*a))
        .find(|a| !taken.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_math() {
        let c = Cidr::parse("10.89.7.5/24").unwrap();
        assert_eq!(c.canonical(), "10.89.7.0/24");
        assert_eq!(c.first_host(), Ipv4Addr::new(10, 89, 7, 1));
        assert!(c.contains("10.89.7.255".parse().unwrap()));
        assert!(!c.contains("10.89.8.1".parse().unwrap()));
        assert!(c.overlaps(&Cidr::parse("10.89.0.0/16").unwrap()));
        assert!(!c.overlaps(&Cidr::parse("10.89.8.0/24").unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0/8").is_none());
    }

    #[test]
    fn ipv6_math_and_allocation() {
        let c = Cidr6::parse("fd12:3456::7/64").unwrap();
        assert_eq!(c.canonical(), "fd12:3456::/64");
        assert_eq!(c.first_host().to_string(), "fd12:3456::1");
        assert!(c.overlaps(&Cidr6::parse("fd12:3456::/48").unwrap()));
        assert!(!c.overlaps(&Cidr6::parse("fd12:3457::/64").unwrap()));
        let mut taken = BTreeSet::new();
        taken.insert(c.first_host());
        assert_eq!(
            allocate6(&c, None, &taken).unwrap().to_string(),
            "fd12:3456::2"
        );
    }

    #[test]
    fn allocation_skips_taken_and_edges() {
        let s = Cidr::parse("10.0.0.0/30").unwrap();
        let mut taken = BTreeSet::new();
        taken.insert(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(allocate(&s, None, &taken), Some(Ipv4Addr::new(10, 0, 0, 2)));
        taken.insert(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            allocate(&s, None, &taken),
            None,
            "broadcast is never handed out"
        );
        let big = Cidr::parse("10.1.0.0/16").unwrap();
        let range = Cidr::parse("10.1.5.0/24").unwrap();
        assert_eq!(
            allocate(&big, Some(&range), &BTreeSet::new()),
            Some(Ipv4Addr::new(10, 1, 5, 0))
        );
    }
}
