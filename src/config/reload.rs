//! SIGHUP: which options a running berthd takes from a changed file.

use super::DaemonConfig;

/// dockerd's reloadable set (plus log-level), in daemon.json names.
pub const RELOADABLE: &[&str] = &[
    "debug",
    "log-level",
    "labels",
    "live-restore",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "default-runtime",
    "runtimes",
    "shutdown-timeout",
    "insecure-registries",
    "allow-nondistributable-artifacts",
    "registry-mirrors",
    "features",
    "metrics-addr",
    "authorization-plugins",
];

/// The running configuration with the reloadable options taken from `new`;
/// also the names of changed options that need a restart to apply.
pub fn apply(current: &DaemonConfig, new: &DaemonConfig) -> (DaemonConfig, Vec<String>) {
    let mut next = current.clone();
    next.debug = new.debug;
    next.log_level = new.log_level.clone();
    next.labels = new.labels.clone();
    next.live_restore = new.live_restore;
    next.max_concurrent_downloads = new.max_concurrent_downloads;
    next.max_concurrent_uploads = new.max_concurrent_uploads;
    next.max_download_attempts = new.max_download_attempts;
    next.default_runtime = new.default_runtime.clone();
    next.runtimes = new.runtimes.clone();
    next.shutdown_timeout = new.shutdown_timeout;
    next.insecure_registries = new.insecure_registries.clone();
    next.allow_nondistributable_artifacts = new.allow_nondistributable_artifacts.clone();
    next.registry_mirrors = new.registry_mirrors.clone();
    next.features = new.features.clone();
    next.metrics_addr = new.metrics_addr.clone();
    next.authorization_plugins = new.authorization_plugins.clone();

    let mut ignored = Vec::new();
    if let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(&next), serde_json::to_value(new))
    {
        for (k, v) in &b {
            if a.get(k) != Some(v) {
                ignored.push(k.clone());
            }
        }
    }
    (next, ignored)
}

/// The attributes of the `daemon reload` event: every reloadable value.
pub fn event_attributes(c: &DaemonConfig) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(c) {
        for k in RELOADABLE {
            if let Some(v) = o.get(*k) {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                m.insert((*k).to_string(), s);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reloadable_options_change() {
        let cur = DaemonConfig::default();
        let new = DaemonConfig {
            debug: true,
            mtu: 9000,
            labels: vec!["a=b".into()],
            ..DaemonConfig::default()
        };
        let (next, ignored) = apply(&cur, &new);
        assert!(next.debug);
        assert_eq!(next.labels, vec!["a=b".to_string()]);
        assert_eq!(next.mtu, 1500);
        assert_eq!(ignored, vec!["mtu".to_string()]);
        let attrs = event_attributes(&next);
        assert_eq!(attrs["debug"], "true");
        assert_eq!(attrs["labels"], "[\"a=b\"]");
    }
}
