//! Registry credentials as clients send them: the JSON of `POST /auth` and,
//! base64-encoded, of the `X-Registry-Auth` header.

use base64::Engine;
use berth_actors::registry::Credentials;
use serde::{Deserialize, Deserializer};

/// Go's JSON decoding leaves a field at its zero value for `null`: SDKs
/// (bollard) send every member, unset ones as `null`.
fn null_is_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// The JSON the CLI sends base64-encoded in `X-Registry-Auth` and `/auth`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub username: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub password: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub auth: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub serveraddress: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub identitytoken: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub registrytoken: String,
}

impl AuthConfig {
    /// Decode `X-Registry-Auth` (URL-safe or standard base64, padding optional).
    pub fn from_header(h: Option<&str>) -> Result<AuthConfig, String> {
        let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(AuthConfig::default());
        };
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(h)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('='))
            })
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
            .map_err(|e| format!("invalid X-Registry-Auth header: {e}"))?;
        serde_json::from_slice(&raw).map_err(|e| format!("invalid X-Registry-Auth header: {e}"))
    }

    /// The credentials an operation runs with.
    pub fn credentials(&self) -> Credentials {
        if !self.registrytoken.is_empty() {
            return Credentials::Bearer(self.registrytoken.clone());
        }
        if !self.username.is_empty() {
            return Credentials::Basic {
                username: self.username.clone(),
                password: self.password.clone(),
            };
        }
        if !self.auth.is_empty() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(&self.auth) {
                if let Some((u, p)) = String::from_utf8_lossy(&b).split_once(':') {
                    return Credentials::Basic {
                        username: u.to_string(),
                        password: p.to_string(),
                    };
                }
            }
        }
        Credentials::Anonymous
    }
}

/// `host[:port]` of a server address as users write it.
pub fn registry_host(addr: &str) -> String {
    let a = addr.trim();
    let a = a
        .strip_prefix("https://")
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    let a = a.split('/').next().unwrap_or(a);
    if a.is_empty() || a == "index.docker.io" || a == "registry-1.docker.io" {
        "docker.io".into()
    } else {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_forms() {
        assert_eq!(
            AuthConfig::from_header(Some("e30=")).unwrap().credentials(),
            Credentials::Anonymous
        );
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p?>"}"#);
        assert_eq!(
            AuthConfig::from_header(Some(&h)).unwrap().credentials(),
            Credentials::Basic {
                username: "u".into(),
                password: "p?>".into()
            }
        );
        assert!(AuthConfig::from_header(Some("!!!")).is_err());
        // bollard's form: every member, unset ones null.
        let h = base64::engine::general_purpose::URL_SAFE.encode(
            br#"{"username":null,"password":null,"auth":null,"email":null,"serveraddress":null,"identitytoken":null,"registrytoken":null}"#,
        );
        assert_eq!(
            AuthConfig::from_header(Some(&h)).unwrap().credentials(),
            Credentials::Anonymous
        );
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("127.0.0.1:5001"), "127.0.0.1:5001");
    }
}
