//! Query strings and the `filters` JSON parameter, as the Engine API sends them.

use std::collections::{BTreeMap, BTreeSet};

use super::errors::ApiError;

/// A parsed query string (repeated keys keep every value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut out = Vec::new();
        for part in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((decode(k), decode(v)));
        }
        Query(out)
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Docker's boolean query values: absent, "", "0", "false" are false.
    pub fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some(v) if !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false" | "no"))
    }
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// `filters={"key":{"value":true}}` (or the legacy `{"key":["value"]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, BTreeSet<String>>);

impl Filters {
    pub fn parse(json: Option<&str>) -> Result<Filters, ApiError> {
        let Some(text) = json.filter(|t| !t.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ApiError::invalid("invalid filter: filters must be a JSON object"))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let mut set = BTreeSet::new();
            match v {
                serde_json::Value::Object(m) => {
                    for (val, on) in m {
                        match on {
                            serde_json::Value::Bool(true) => {
                                set.insert(val.clone());
                            }
                            serde_json::Value::Bool(false) => {}
                            _ => {
                                return Err(ApiError::invalid(format!(
                                    "invalid filter: value of {k}.{val} must be a boolean"
                                )))
                            }
                        }
                    }
                }
                serde_json::Value::Array(a) => {
                    for val in a {
                        let s = val.as_str().ok_or_else(|| {
                            ApiError::invalid(format!(
                                "invalid filter: values of {k} must be strings"
                            ))
                        })?;
                        set.insert(s.to_string());
                    }
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "invalid filter: {k} must map values to true"
                    )))
                }
            }
            out.insert(k.clone(), set);
        }
        Ok(Filters(out))
    }

    /// Refuse keys outside `allowed` with dockerd's message.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn values(&self, key: &str) -> impl Iterator<Item = &String> {
        self.0.get(key).into_iter().flatten()
    }

    /// True when `key` is not filtered or one value equals `s`.
    pub fn exact(&self, key: &str, s: &str) -> bool {
        self.0.get(key).is_none_or(|set| set.contains(s))
    }

    /// True when `key` is not filtered or `s` equals or starts with a value.
    pub fn fuzzy(&self, key: &str, s: &str) -> bool {
        self.0
            .get(key)
            .is_none_or(|set| set.iter().any(|v| s.starts_with(v.as_str())))
    }

    /// Labels filter: each `k` or `k=v` must be present in `labels`.
    pub fn labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.values(key).all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "fromImage=127.0.0.1%3A5000%2Fx&changes=CMD+%5B%22sh%22%5D&a=1&a=2&all=1&no=0",
        ));
        assert_eq!(q.get("fromImage"), Some("127.0.0.1:5000/x"));
        assert_eq!(q.get("changes"), Some("CMD [\"sh\"]"));
        assert_eq!(q.all("a"), vec!["1", "2"]);
        assert!(q.bool("all"));
        assert!(!q.bool("no"));
        assert!(!q.bool("missing"));
    }

    #[test]
    fn filters_both_forms() {
        let a = Filters::parse(Some(r#"{"type":{"daemon":true},"label":{"a=b":true}}"#)).unwrap();
        let b = Filters::parse(Some(r#"{"type":["daemon"],"label":["a=b"]}"#)).unwrap();
        assert_eq!(a, b);
        assert!(a.exact("type", "daemon"));
        assert!(!a.exact("type", "container"));
        assert!(a.exact("other", "x"));
        assert!(a.validate(&["type", "label"]).is_ok());
        assert_eq!(
            a.validate(&["type"]).unwrap_err().message,
            "invalid filter 'label'"
        );
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "b".to_string());
        assert!(a.labels("label", &l));
        assert!(Filters::parse(Some("{bad")).is_err());
        assert!(Filters::parse(Some("[1]")).is_err());
        assert!(Filters::parse(Some(r#"{"a":{"b":1}}"#)).is_err());
        assert_eq!(Filters::parse(Some("")).unwrap(), Filters::default());
    }
}
