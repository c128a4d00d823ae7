//! API versions: the `/vX.Y` prefix, the served range, dockerd's refusals.

use super::errors::ApiError;

/// Newest API version served (advertised by `/_ping` and `/version`).
pub const MAX_API: ApiVersion = ApiVersion(1, 53);
/// Oldest API version served.
pub const MIN_API: ApiVersion = ApiVersion(1, 40);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Split `/v1.41/version` into the version and `/version`. A prefix that is
/// not `v` + digits and dots is not a version (the path then does not route).
pub fn split_prefix(path: &str) -> Result<(ApiVersion, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((MAX_API, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return Ok((MAX_API, path)),
    };
    if ver.is_empty() || !ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok((MAX_API, path));
    }
    let v = ApiVersion::parse(ver)
        .ok_or_else(|| ApiError::invalid(format!("invalid API version {ver:?}")))?;
    if v < MIN_API {
        return Err(ApiError::invalid(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API}, please upgrade your client to a newer version"
        )));
    }
    if v > MAX_API {
        return Err(ApiError::invalid(format!(
            "client version {ver} is too new. Maximum supported API version is {MAX_API}"
        )));
    }
    Ok((v, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix("/_ping").unwrap(), (MAX_API, "/_ping"));
        assert_eq!(
            split_prefix("/v1.41/version").unwrap(),
            (ApiVersion(1, 41), "/version")
        );
        assert_eq!(split_prefix("/v1.53/info").unwrap(), (MAX_API, "/info"));
        assert_eq!(
            split_prefix("/vabc/version").unwrap(),
            (MAX_API, "/vabc/version")
        );
        let e = split_prefix("/v1.39/version").unwrap_err();
        assert_eq!(e.message, "client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version");
        let e = split_prefix("/v1.99/version").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.99 is too new. Maximum supported API version is 1.53"
        );
        assert!(split_prefix("/v1.4.1/version").is_err());
        assert!(ApiVersion(1, 50) > ApiVersion(1, 9));
    }
}
