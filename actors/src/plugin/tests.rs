use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ractor::Actor;

use super::authz::{authorize, verdict, AuthzRequest, Phase};
use super::*;

/// A plugin in memory: answers activation with `implements`, AuthZ with
/// `answer`; `down` makes every call a connection error.
struct Fake {
    implements: &'static str,
    answer: Mutex<&'static str>,
    down: Mutex<bool>,
    activations: AtomicUsize,
    seen: Mutex<Vec<(String, Bytes)>>,
}

impl PluginClient for Arc<Fake> {
    fn address(&self) -> String {
        "unix:///fake.sock".into()
    }
    fn call(&self, method: &str, body: Bytes) -> BoxFuture<Result<Bytes, CallError>> {
        let me = self.clone();
        let method = method.to_string();
        Box::pin(async move {
            if *me.down.lock().unwrap() {
                return Err(CallError::Connect("connect: connection refused".into()));
            }
            me.seen.lock().unwrap().push((method.clone(), body));
            if method == ACTIVATE {
                me.activations.fetch_add(1, Ordering::SeqCst);
                return Ok(Bytes::from(format!(
                    "{{\"Implements\":[\"{}\"]}}",
                    me.implements
                )));
            }
            Ok(Bytes::from(*me.answer.lock().unwrap()))
        })
    }
}

struct Port(Arc<Fake>);

impl PluginPort for Port {
    fn locate(&self, name: &str) -> Result<Arc<dyn PluginClient>, String> {
        if name == "missing" {
            return Err(format!(
                "could not find plugin {name} in v1 plugin registry: plugin not found"
            ));
        }
        Ok(Arc::new(self.0.clone()))
    }
}

fn fake(implements: &'static str) -> Arc<Fake> {
    Arc::new(Fake {
        implements,
        answer: Mutex::new(r#"{"Allow":true}"#),
        down: Mutex::new(false),
        activations: AtomicUsize::new(0),
        seen: Mutex::new(vec![]),
    })
}

#[test]
fn verdicts_fail_closed() {
    assert!(verdict("p", Phase::Request, br#"{"Allow":true}"#).is_ok());
    let e = verdict("p", Phase::Request, br#"{"Allow":false,"Msg":"no run"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(e.message, "authorization denied by plugin p: no run");
    let e = verdict("p", Phase::Response, br#"{"Err":"boom"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::System);
    assert_eq!(
        e.message,
        "plugin p failed with error: AuthZPlugin.AuthZRes: boom"
    );
    for garbage in [&b""[..], b"null", b"{\"Allow\":\"yes\"}", b"<html>"] {
        let e = verdict("p", Phase::Request, garbage).unwrap_err();
        assert_eq!(e.kind, ErrorKind::System, "{garbage:?}");
    }
    // Absent Allow is a denial.
    let e = verdict("p", Phase::Request, b"{}").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
}

#[test]
fn request_json_uses_dockerds_names() {
    let mut r = AuthzRequest {
        user: "alice".into(),
        user_authn_method: "TLS".into(),
        request_method: "POST".into(),
        request_uri: "/v1.41/containers/create?name=x".into(),
        request_body: Bytes::from_static(b"{}"),
        request_peer_certificates: vec!["-----BEGIN CERTIFICATE-----\n".into()],
        ..Default::default()
    };
    r.request_headers
        .insert("Content-Type".into(), "application/json".into());
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["RequestBody"], "e30=");
    assert_eq!(v["RequestUri"], "/v1.41/containers/create?name=x");
    assert_eq!(v["RequestHeaders"]["Content-Type"], "application/json");
    assert_eq!(
        v["RequestPeerCertificates"][0],
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
    );
    assert!(v.get("ResponseStatusCode").is_none());
    assert!(v.get("ResponseBody").is_none());
}

#[tokio::test]
async fn activation_once_then_calls_and_reset_after_failure() {
    let f = fake("authz");
    let (sup, h) = Actor::spawn(
        Some(crate::directory::PLUGINS.into()),
        PluginSupervisor,
        Arc::new(Port(f.clone())) as Arc<dyn PluginPort>,
    )
    .await
    .unwrap();
    let names = vec!["pol".to_string()];
    let req = AuthzRequest {
        request_method: "GET".into(),
        request_uri: "/_ping".into(),
        ..Default::default()
    };
    authorize(&names, Phase::Request, &req).await.unwrap();
    authorize(&names, Phase::Response, &req).await.unwrap();
    assert_eq!(f.activations.load(Ordering::SeqCst), 1);
    *f.answer.lock().unwrap() = r#"{"Allow":false,"Msg":"nope"}"#;
    let e = authorize(&names, Phase::Request, &req).await.unwrap_err();
    assert_eq!(e.message, "authorization denied by plugin pol: nope");

    // Down: the request fails (500), and the plugin is activated again
    // once it is back.
    *f.down.lock().unwrap() = true;
    let e = authorize(&names, Phase::Request, &req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::System);
    assert!(
        e.message.starts_with("plugin pol failed with error: "),
        "{}",
        e.message
    );
    *f.down.lock().unwrap() = false;
    *f.answer.lock().unwrap() = r#"{"Allow":true}"#;
    tokio::time::sleep(Duration::from_millis(50)).await;
    authorize(&names, Phase::Request, &req).await.unwrap();
    assert_eq!(f.activations.load(Ordering::SeqCst), 2);

    // A killed plugin actor comes back and activates on its next use.
    running("pol").unwrap().kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    authorize(&names, Phase::Request, &req).await.unwrap();
    assert_eq!(f.activations.load(Ordering::SeqCst), 3);
    let l = list().await;
    assert_eq!(l.len(), 1);
    assert!(l[0].active);
    assert_eq!(l[0].implements, vec!["authz".to_string()]);

    // Not found, and a plugin that is not an authorization plugin.
    let e = authorize(&["missing".into()], Phase::Request, &req)
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "plugin missing failed with error: could not find plugin missing in v1 plugin registry: plugin not found"
    );
    sup.stop(None);
    h.await.unwrap();
}

#[tokio::test]
async fn a_plugin_must_implement_the_interface() {
    let f = fake("VolumeDriver");
    let port: Arc<dyn PluginPort> = Arc::new(Port(f));
    let (client, implements) = activate(port.as_ref(), "v", ACTIVATE_WINDOW).await.unwrap();
    assert_eq!(implements, vec!["VolumeDriver".to_string()]);
    assert_eq!(client.address(), "unix:///fake.sock");
}
