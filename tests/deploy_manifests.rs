//! Validates everything under `deploy/`: the Kubernetes manifests (parsed with a YAML parser and
//! checked field by field against what the issue and the binaries require), the Dockerfiles (stages,
//! non-root user, exec-form entrypoint of a binary that exists), the systemd units (and
//! `systemd-analyze verify` where it is installed), and that every environment variable the deploy
//! files set is one the binaries actually read. The TLS overlay (deploy/k8s/tls) is rendered by
//! applying its JSON patches to the base and checked against its cert-manager certificates, the
//! token-files overlay (deploy/k8s/token-files) against the Secret it mounts; the systemd TLS and
//! token drop-ins against the credentials they load.
//!
//! The Prometheus Operator objects (deploy/k8s/monitoring) are checked against the
//! monitoring.coreos.com/v1 schemas here and in `.ci/run` (e2e/monitoring-crds.mjs); the schema
//! check of the rest against the Kubernetes OpenAPI (kubernetes-validate) runs in `.ci/run`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every YAML document of every `*.yaml` file in deploy/k8s, with the file it came from.
fn k8s_docs() -> Vec<(String, Value)> {
    let dir = root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {}", dir.display());
    let mut docs = Vec::new();
    for file in files {
        let text = read(&file);
        let name = file
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        for de in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(de).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

/// Walks a dotted path (`spec.template.spec`), numeric segments index sequences.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match seg.parse::<usize>() {
            Ok(i) => cur.as_sequence()?.get(i)?,
            Err(_) => cur.get(seg)?,
        };
    }
    Some(cur)
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path} is not a string in {v:?}"))
}

fn bool_at(v: &Value, path: &str) -> bool {
    at(v, path)
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("{path} is not a bool"))
}

fn seq_at<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{path} is not a list"))
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| {
            d.get("kind").and_then(Value::as_str) == Some(kind)
                && at(d, "metadata.name").and_then(Value::as_str) == Some(name)
        })
        .unwrap_or_else(|| panic!("no {kind} named {name} in deploy/k8s"))
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    seq_at(workload, "spec.template.spec.containers")
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// A container's env as name -> entry.
fn env(container: &Value) -> BTreeMap<String, Value> {
    seq_at(container, "env")
        .iter()
        .map(|e| (str_at(e, "name").to_owned(), e.clone()))
        .collect()
}

fn env_value<'a>(env: &'a BTreeMap<String, Value>, name: &str) -> &'a str {
    let e = env
        .get(name)
        .unwrap_or_else(|| panic!("env {name} is not set"));
    str_at(e, "value")
}

/// The port of an `http://host:port` URL.
fn url_port(url: &str) -> u16 {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_port = after_scheme.split('/').next().unwrap_or(after_scheme);
    host_port
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{url} has no explicit port"))
}

fn restricted_container(c: &Value, what: &str) {
    assert!(
        bool_at(c, "securityContext.readOnlyRootFilesystem"),
        "{what}: root filesystem must be read-only"
    );
    assert!(
        !bool_at(c, "securityContext.allowPrivilegeEscalation"),
        "{what}: privilege escalation must be off"
    );
    let drop: Vec<&str> = seq_at(c, "securityContext.capabilities.drop")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(drop, ["ALL"], "{what}: all capabilities dropped");
    assert!(
        at(c, "securityContext.capabilities.add").is_none(),
        "{what}: no capability added"
    );
}

fn non_root_pod(workload: &Value, what: &str) {
    assert!(
        bool_at(workload, "spec.template.spec.securityContext.runAsNonRoot"),
        "{what}: runAsNonRoot"
    );
    let uid = at(workload, "spec.template.spec.securityContext.runAsUser")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{what}: runAsUser"));
    assert_ne!(uid, 0, "{what}: runAsUser must not be root");
}

#[test]
fn metrics_daemonset_has_the_required_shape() {
    let docs = k8s_docs();
    let ds = find(&docs, "DaemonSet", "atlhyper-metrics");
    let pod = at(ds, "spec.template.spec").expect("pod spec");
    assert!(bool_at(pod, "hostPID"), "hostPID");
    assert!(bool_at(pod, "hostNetwork"), "hostNetwork");
    assert_eq!(
        str_at(pod, "dnsPolicy"),
        "ClusterFirstWithHostNet",
        "a hostNetwork pod needs ClusterFirstWithHostNet to resolve the agent Service"
    );
    let tolerations = seq_at(pod, "tolerations");
    assert!(
        tolerations.iter().any(|t| {
            t.get("operator").and_then(Value::as_str) == Some("Exists")
                && t.get("key").is_none()
                && t.get("effect").is_none()
        }),
        "a bare `operator: Exists` toleration so every node (control plane too) runs the daemon"
    );
    non_root_pod(ds, "metrics DaemonSet");

    let c = container(ds, "atlhyper-metrics");
    restricted_container(c, "metrics container");
    assert!(
        !at(c, "securityContext.privileged")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        "not privileged"
    );
    // What deploy/measure-daemon.sh measured, with headroom (the numbers are in the manifest).
    assert_eq!(str_at(c, "resources.requests.cpu"), "10m");
    assert_eq!(str_at(c, "resources.requests.memory"), "16Mi");
    assert_eq!(str_at(c, "resources.limits.cpu"), "100m");
    assert_eq!(str_at(c, "resources.limits.memory"), "32Mi");

    let env = env(c);
    assert_eq!(
        str_at(&env["NODE_NAME"], "valueFrom.fieldRef.fieldPath"),
        "spec.nodeName",
        "NODE_NAME from the downward API"
    );
    assert_eq!(env_value(&env, "METRICS_PROC_ROOT"), "/host/proc");
    assert_eq!(env_value(&env, "METRICS_SYS_ROOT"), "/host/sys");
    assert_eq!(env_value(&env, "METRICS_HOST_ROOT"), "/host");
    assert!(env.contains_key("METRICS_AGENT_ADDR"));
    assert!(env.contains_key("METRICS_COLLECT_INTERVAL"));

    let mount = seq_at(c, "volumeMounts")
        .iter()
        .find(|m| m.get("mountPath").and_then(Value::as_str) == Some("/host"))
        .expect("a mount at /host");
    assert!(bool_at(mount, "readOnly"), "/host is read-only");
    assert_eq!(str_at(mount, "mountPropagation"), "HostToContainer");
    let volume = seq_at(pod, "volumes")
        .iter()
        .find(|v| v.get("name") == mount.get("name"))
        .expect("the /host volume");
    assert_eq!(
        str_at(volume, "hostPath.path"),
        "/",
        "the host's / is mounted"
    );
}

#[test]
fn agent_deployment_service_and_service_account() {
    let docs = k8s_docs();
    let dep = find(&docs, "Deployment", "atlhyper-agent");
    let svc = find(&docs, "Service", "atlhyper-agent");
    let sa = find(&docs, "ServiceAccount", "atlhyper-agent");
    assert_eq!(
        at(dep, "spec.replicas").and_then(Value::as_u64),
        Some(1),
        "one agent per cluster: the node table is in its memory"
    );
    assert_eq!(
        str_at(dep, "spec.template.spec.serviceAccountName"),
        str_at(sa, "metadata.name")
    );
    non_root_pod(dep, "agent");
    let c = container(dep, "atlhyper-agent");
    restricted_container(c, "agent container");
    probes_hit_health(c, "agent");
    service_targets_workload(svc, dep);

    // The daemons reach the agent through its Service, on the Service's port.
    let ds = find(&docs, "DaemonSet", "atlhyper-metrics");
    let addr = env_value(
        &env(container(ds, "atlhyper-metrics")),
        "METRICS_AGENT_ADDR",
    )
    .to_owned();
    let svc_name = str_at(svc, "metadata.name");
    assert!(
        addr.contains(&format!("//{svc_name}.")),
        "METRICS_AGENT_ADDR {addr} points at the agent Service"
    );
    assert!(
        service_ports(svc).contains(&url_port(&addr)),
        "METRICS_AGENT_ADDR {addr} uses a port of the agent Service"
    );
    // The agent judges nodes offline by the daemons' interval: both read it from one key.
    let agent_env = env(container(dep, "atlhyper-agent"));
    let daemon_env = env(container(ds, "atlhyper-metrics"));
    assert_eq!(
        settings_key(&agent_env, "AGENT_NODE_INTERVAL"),
        settings_key(&daemon_env, "METRICS_COLLECT_INTERVAL"),
        "AGENT_NODE_INTERVAL and METRICS_COLLECT_INTERVAL come from the same setting"
    );
}

/// The key of the shared settings ConfigMap an env entry reads; panics when it has its own value.
fn settings_key<'a>(env: &'a BTreeMap<String, Value>, name: &str) -> &'a str {
    let e = env
        .get(name)
        .unwrap_or_else(|| panic!("env {name} is not set"));
    assert_eq!(
        str_at(e, "valueFrom.configMapKeyRef.name"),
        "atlhyper-settings",
        "{name} comes from the shared settings ConfigMap, not a second copy of the value"
    );
    str_at(e, "valueFrom.configMapKeyRef.key")
}

/// What an operator checks before installing: Linux nodes only, versioned images, probes that
/// say whether the daemon delivers, disruption budgets, shared settings from one generated
/// ConfigMap whose keys exist, and the NetworkPolicy example.
#[test]
fn manifests_are_ready_for_an_operator() {
    let docs = k8s_docs();
    let k = docs
        .iter()
        .map(|(_, d)| d)
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("Kustomization"))
        .expect("kustomization.yaml");
    let tags: BTreeMap<&str, &str> = seq_at(k, "images")
        .iter()
        .map(|i| (str_at(i, "name"), str_at(i, "newTag")))
        .collect();
    let generated = seq_at(k, "configMapGenerator")
        .iter()
        .find(|g| str_at(g, "name") == "atlhyper-settings")
        .expect("a configMapGenerator named atlhyper-settings");
    let keys: BTreeSet<&str> = seq_at(generated, "literals")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for (kind, name, container_name) in [
        ("DaemonSet", "atlhyper-metrics", "atlhyper-metrics"),
        ("Deployment", "atlhyper-agent", "atlhyper-agent"),
        ("Deployment", "atlhyper-master", "atlhyper-master"),
    ] {
        let w = find(&docs, kind, name);
        assert_eq!(
            at(w, "spec.template.spec.nodeSelector")
                .and_then(|n| n.get("kubernetes.io/os"))
                .and_then(Value::as_str),
            Some("linux"),
            "{name}: nodeSelector kubernetes.io/os: linux"
        );
        let c = container(w, container_name);
        let image = str_at(c, "image");
        let (repo, tag) = image.rsplit_once(':').expect("image with a tag");
        assert!(
            tag != "latest" && tag.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{name}: image {image} is pinned to a version"
        );
        assert_eq!(
            tags.get(repo),
            Some(&tag),
            "{name}: kustomize tag of {repo}"
        );
        for e in seq_at(c, "env") {
            if let Some(key) = at(e, "valueFrom.configMapKeyRef.key").and_then(Value::as_str) {
                assert!(
                    keys.contains(key),
                    "{name}: env {} reads {key}, which the generator does not define",
                    str_at(e, "name")
                );
            }
        }
    }
    let master_env = env(container(
        find(&docs, "Deployment", "atlhyper-master"),
        "atlhyper-master",
    ));
    let agent_env = env(container(
        find(&docs, "Deployment", "atlhyper-agent"),
        "atlhyper-agent",
    ));
    assert_eq!(
        settings_key(&master_env, "MASTER_CLUSTER_ID"),
        settings_key(&agent_env, "AGENT_CLUSTER_ID"),
        "the cluster id comes from one setting"
    );

    let daemon = container(
        find(&docs, "DaemonSet", "atlhyper-metrics"),
        "atlhyper-metrics",
    );
    assert_eq!(str_at(daemon, "livenessProbe.httpGet.path"), "/health");
    assert_eq!(str_at(daemon, "readinessProbe.httpGet.path"), "/ready");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            str_at(daemon, &format!("{probe}.httpGet.port")),
            "metrics",
            "the daemon's {probe} uses its metrics port"
        );
    }

    for name in ["atlhyper-master", "atlhyper-agent"] {
        let pdb = find(&docs, "PodDisruptionBudget", name);
        let w = find(&docs, "Deployment", name);
        assert_eq!(
            at(pdb, "spec.selector.matchLabels"),
            at(w, "spec.selector.matchLabels"),
            "{name}: the budget selects the Deployment's pods"
        );
        assert_eq!(
            at(pdb, "spec.maxUnavailable").and_then(Value::as_u64),
            Some(1),
            "{name}: a single replica must stay drainable"
        );
    }

    let policy_text = read(&root().join("deploy/k8s/network-policy/network-policies.yaml"));
    let policies: Vec<Value> = serde_norway::Deserializer::from_str(&policy_text)
        .map(|de| Value::deserialize(de).expect("network policy YAML"))
        .collect();
    let agent_policy = policies
        .iter()
        .find(|p| str_at(p, "metadata.name") == "atlhyper-agent")
        .expect("a NetworkPolicy for the agent");
    let ingress_ports: Vec<u64> = seq_at(agent_policy, "spec.ingress")
        .iter()
        .flat_map(|r| seq_at(r, "ports").iter())
        .filter_map(|p| p.get("port").and_then(Value::as_u64))
        .collect();
    assert!(
        !ingress_ports.is_empty() && ingress_ports.iter().all(|p| *p == 8082),
        "the agent takes only its own port: {ingress_ports:?}"
    );
    let egress_ports: BTreeSet<u64> = seq_at(agent_policy, "spec.egress")
        .iter()
        .flat_map(|r| seq_at(r, "ports").iter())
        .filter_map(|p| p.get("port").and_then(Value::as_u64))
        .collect();
    assert_eq!(
        egress_ports,
        BTreeSet::from([53, 8080]),
        "the agent reaches only the master and DNS"
    );
}

#[test]
fn master_deployment_pvc_and_service() {
    let docs = k8s_docs();
    let dep = find(&docs, "Deployment", "atlhyper-master");
    let svc = find(&docs, "Service", "atlhyper-master");
    let pvc = find(&docs, "PersistentVolumeClaim", "atlhyper-master-data");
    assert_eq!(
        at(dep, "spec.replicas").and_then(Value::as_u64),
        Some(1),
        "SQLite has one writer"
    );
    assert_eq!(
        str_at(dep, "spec.strategy.type"),
        "Recreate",
        "a rolling update would run two writers on one RWO volume"
    );
    non_root_pod(dep, "master");
    assert!(
        at(dep, "spec.template.spec.securityContext.fsGroup").is_some(),
        "fsGroup so the non-root user can write the volume"
    );
    let c = container(dep, "atlhyper-master");
    restricted_container(c, "master container");
    probes_hit_health(c, "master");
    service_targets_workload(svc, dep);
    assert!(at(pvc, "spec.resources.requests.storage").is_some());

    let volume = seq_at(dep, "spec.template.spec.volumes")
        .iter()
        .find(|v| {
            at(v, "persistentVolumeClaim.claimName").and_then(Value::as_str)
                == Some(str_at(pvc, "metadata.name"))
        })
        .expect("the master mounts the PVC");
    let mount = seq_at(c, "volumeMounts")
        .iter()
        .find(|m| m.get("name") == volume.get("name"))
        .expect("the PVC volume is mounted");
    let data_dir = str_at(mount, "mountPath");

    // The database lives on the volume (the root filesystem is read-only).
    let env = env(c);
    let db_vars: Vec<&String> = env
        .keys()
        .filter(|k| k.contains("DB") || k.contains("DATA"))
        .collect();
    assert!(
        !db_vars.is_empty(),
        "the master is told where its data goes"
    );
    for k in db_vars {
        let v = env_value(&env, k);
        assert!(
            v.starts_with(data_dir),
            "{k}={v} must be under the PVC mount {data_dir}"
        );
    }

    // The agent pushes to this Service on its port.
    let agent = find(&docs, "Deployment", "atlhyper-agent");
    let agent_env = self::env(container(agent, "atlhyper-agent"));
    let url = agent_env
        .iter()
        .find(|(k, _)| k.contains("MASTER") && (k.contains("URL") || k.contains("ADDR")))
        .map(|(k, _)| env_value(&agent_env, k))
        .expect("the agent is told the master's URL");
    assert!(url.contains(&format!("//{}.", str_at(svc, "metadata.name"))));
    assert!(service_ports(svc).contains(&url_port(url)));
}

fn probes_hit_health(c: &Value, what: &str) {
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            str_at(c, &format!("{probe}.httpGet.path")),
            "/health",
            "{what}: {probe} on /health"
        );
        let port = at(c, &format!("{probe}.httpGet.port")).expect("probe port");
        let named = seq_at(c, "ports").iter().any(|p| {
            p.get("name") == Some(port)
                || p.get("containerPort").and_then(Value::as_u64) == port.as_u64()
        });
        assert!(named, "{what}: {probe} port is a container port");
    }
}

fn service_ports(svc: &Value) -> Vec<u16> {
    seq_at(svc, "spec.ports")
        .iter()
        .map(|p| {
            at(p, "port")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .expect("service port")
        })
        .collect()
}

/// The Service's selector matches the pod labels and its targetPorts name container ports.
fn service_targets_workload(svc: &Value, workload: &Value) {
    let selector = at(svc, "spec.selector")
        .and_then(Value::as_mapping)
        .expect("selector");
    let labels = at(workload, "spec.template.metadata.labels")
        .and_then(Value::as_mapping)
        .expect("pod labels");
    for (k, v) in selector {
        assert_eq!(labels.get(k), Some(v), "selector {k:?} matches the pods");
    }
    let match_labels = at(workload, "spec.selector.matchLabels")
        .and_then(Value::as_mapping)
        .expect("matchLabels");
    for (k, v) in match_labels {
        assert_eq!(labels.get(k), Some(v), "matchLabels {k:?} matches the pods");
    }
    let containers = seq_at(workload, "spec.template.spec.containers");
    for p in seq_at(svc, "spec.ports") {
        let target = p.get("targetPort").expect("targetPort");
        let ok = containers
            .iter()
            .flat_map(|c| seq_at(c, "ports"))
            .any(|cp| {
                cp.get("name") == Some(target)
                    || cp.get("containerPort").and_then(Value::as_u64) == target.as_u64()
            });
        assert!(ok, "targetPort {target:?} is a container port");
    }
}

#[test]
fn secret_keys_exist_for_every_reference() {
    let docs = k8s_docs();
    let secret = find(&docs, "Secret", "atlhyper-tokens");
    let keys: BTreeSet<String> = at(secret, "stringData")
        .or_else(|| at(secret, "data"))
        .and_then(Value::as_mapping)
        .expect("secret data")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let mut refs = 0;
    for (file, doc) in &docs {
        let Some(containers) = at(doc, "spec.template.spec.containers") else {
            continue;
        };
        for c in containers.as_sequence().expect("containers") {
            for e in c
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(r) = at(e, "valueFrom.secretKeyRef") {
                    refs += 1;
                    assert_eq!(str_at(r, "name"), "atlhyper-tokens", "{file}");
                    let key = str_at(r, "key");
                    assert!(keys.contains(key), "{file}: secret key {key} is missing");
                }
            }
        }
    }
    // daemon token, agent's two tokens, master's agent/viewer/operator tokens
    assert!(refs >= 6, "tokens come from the Secret ({refs} references)");
}

#[test]
fn kustomization_lists_every_manifest_and_image() {
    let docs = k8s_docs();
    let k = docs
        .iter()
        .map(|(_, d)| d)
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("Kustomization"))
        .expect("kustomization.yaml");
    assert_eq!(str_at(k, "namespace"), "atlhyper");
    let listed: BTreeSet<&str> = seq_at(k, "resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let files: BTreeSet<&str> = docs
        .iter()
        .map(|(f, _)| f.as_str())
        .filter(|f| *f != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, files,
        "kustomization resources == the manifest files"
    );

    let images: BTreeSet<&str> = seq_at(k, "images")
        .iter()
        .map(|i| str_at(i, "name"))
        .collect();
    for (file, doc) in &docs {
        if let Some(containers) = at(doc, "spec.template.spec.containers") {
            for c in containers.as_sequence().expect("containers") {
                let image = str_at(c, "image");
                let name = image.rsplit_once(':').map_or(image, |(n, _)| n);
                assert!(
                    images.contains(name),
                    "{file}: image {name} is in kustomization images"
                );
                let bin = str_at(c, "name");
                assert!(
                    name.ends_with(&format!("/{bin}")),
                    "{file}: container {bin} runs the image of that binary ({name})"
                );
            }
        }
    }
}

/// Node and the Prometheus Operator schema check of e2e/ (`monitoring-crds.mjs`, its packages
/// from `npm ci` there): the script's path when installed. Missing under `CI=true` is a failure.
fn monitoring_validator() -> Option<PathBuf> {
    let e2e = root().join("e2e");
    let packages = [
        e2e.join("node_modules/@kubernetes-models/prometheus-operator/package.json"),
        e2e.join("node_modules/yaml/package.json"),
        e2e.join("node_modules/typescript/package.json"),
    ];
    let mut needed = vec!["/usr/bin/node"];
    needed.extend(packages.iter().filter_map(|p| p.to_str()));
    atlhyper_testkit::real_programs_here(
        &needed,
        "apt-get install -y nodejs npm, then `npm ci` in e2e/",
    )
    .then(|| e2e.join("monitoring-crds.mjs"))
}

/// Runs the schema check on `files`: whether it passed, and what it printed (stdout, stderr).
fn validate_monitoring(script: &Path, files: &[&Path]) -> (bool, String, String) {
    let out = std::process::Command::new("/usr/bin/node")
        .arg(script)
        .args(files)
        .output()
        .expect("run node");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const MONITORING: &str = "deploy/k8s/monitoring/monitoring.yaml";

/// The PodMonitor, ServiceMonitor and PrometheusRule are valid monitoring.coreos.com/v1 objects
/// (the generated validators and TypeScript declarations of @kubernetes-models/prometheus-operator,
/// pinned in e2e/), with no field the API lacks.
#[test]
fn monitoring_objects_pass_the_prometheus_operator_schemas() {
    let Some(script) = monitoring_validator() else {
        return;
    };
    let (ok, stdout, stderr) = validate_monitoring(&script, &[&root().join(MONITORING)]);
    assert!(ok, "{MONITORING}: {stderr}");
    assert!(
        stdout.contains("3 Prometheus Operator objects valid"),
        "{stdout}"
    );
}

/// The check can fail: a copy with a bad duration, a secret reference without its key and a
/// rule `for` that is no duration is refused, each problem named by its field; so is a copy with
/// misspelt (unknown) fields.
#[test]
fn a_broken_monitoring_object_is_refused_with_its_field() {
    let Some(script) = monitoring_validator() else {
        return;
    };
    let text = read(&root().join(MONITORING));
    let mut broken = text.clone();
    for (from, to) in [
        ("interval: 15s", "interval: every 15 seconds"),
        ("key: viewer-token", "secretKey: viewer-token"),
        ("for: 30m", "for: half an hour"),
    ] {
        assert!(broken.contains(from), "{MONITORING} has `{from}`");
        broken = broken.replacen(from, to, 1);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("monitoring.yaml");
    fs::write(&copy, &broken).expect("write the broken copy");
    let (ok, _, stderr) = validate_monitoring(&script, &[&copy]);
    assert!(!ok, "the broken copy passed");
    for field in [
        "PodMonitor atlhyper/atlhyper-metrics: data/spec/podMetricsEndpoints/0/interval must match",
        "ServiceMonitor atlhyper/atlhyper-master: data/spec/endpoints/0/authorization/credentials must have required property key",
        "PrometheusRule atlhyper/atlhyper-default-alerts: data/spec/groups/0/rules/0/for must match",
    ] {
        assert!(stderr.contains(field), "`{field}` missing in:\n{stderr}");
    }

    // Fields the API does not have: `kubectl apply` refuses them, and so does the check.
    let mut unknown = text.clone();
    for (from, to) in [
        ("relabelings:", "relabellings:"),
        ("annotations:", "anotations:"),
    ] {
        assert!(unknown.contains(from), "{MONITORING} has `{from}`");
        unknown = unknown.replacen(from, to, 1);
    }
    fs::write(&copy, &unknown).expect("write the copy with unknown fields");
    let (ok, _, stderr) = validate_monitoring(&script, &[&copy]);
    assert!(!ok, "the copy with unknown fields passed");
    for field in [
        "PodMonitor atlhyper/atlhyper-metrics: Object literal may only specify known properties, and '\"relabellings\"' does not exist",
        "PrometheusRule atlhyper/atlhyper-default-alerts: Object literal may only specify known properties, and '\"anotations\"' does not exist",
    ] {
        assert!(stderr.contains(field), "`{field}` missing in:\n{stderr}");
    }

    // A kind the check does not know is refused, not passed over.
    let (ok, _, stderr) = validate_monitoring(
        &script,
        &[&root().join("deploy/k8s/monitoring/kustomization.yaml")],
    );
    assert!(!ok && stderr.contains("kind \"Kustomization\""), "{stderr}");
}

/// One Dockerfile instruction: keyword and its (continuation-joined) arguments.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // comment inside a continued instruction
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (kw, rest) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        out.push((kw.to_ascii_uppercase(), rest.trim().to_owned()));
        pending.clear();
    }
    assert!(
        pending.is_empty(),
        "Dockerfile ends inside a continued line"
    );
    out
}

/// Binaries of a crate: `src/bin/<name>.rs`, `src/bin/<name>/main.rs`, or `src/main.rs`.
fn crate_bins(crate_dir: &Path) -> BTreeSet<String> {
    let mut bins = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(crate_dir.join("src/bin")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") {
                bins.insert(p.file_stem().expect("stem").to_string_lossy().into_owned());
            } else if p.join("main.rs").exists() {
                bins.insert(p.file_name().expect("name").to_string_lossy().into_owned());
            }
        }
    }
    let manifest = read(&crate_dir.join("Cargo.toml"));
    let mut in_bin = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && line.starts_with("name")
            && let Some((_, v)) = line.split_once('=')
        {
            bins.insert(v.trim().trim_matches('"').to_owned());
        }
    }
    bins
}

#[test]
fn dockerfiles_are_multi_stage_non_root_and_run_a_real_binary() {
    let expected = [
        ("metrics", "atlhyper-agent", "atlhyper-metrics"),
        ("agent", "atlhyper-agent", "atlhyper-agent"),
        ("master", "atlhyper-master", "atlhyper-master"),
    ];
    for (file, krate, bin) in expected {
        let path = root().join(format!("deploy/docker/{file}.Dockerfile"));
        let text = read(&path);
        let ins = dockerfile_instructions(&text);
        let what = path.display().to_string();

        let froms: Vec<&String> = ins
            .iter()
            .filter(|(k, _)| k == "FROM")
            .map(|(_, a)| a)
            .collect();
        assert!(froms.len() >= 2, "{what}: multi-stage");
        let first = froms[0];
        assert!(
            first.to_ascii_lowercase().ends_with(" as builder"),
            "{what}: first stage is named builder ({first})"
        );
        assert!(
            first.starts_with("rust:"),
            "{what}: builder is the Rust image"
        );
        let last = froms[froms.len() - 1];
        assert!(
            last.contains("distroless") || last.starts_with("scratch"),
            "{what}: final stage is distroless or scratch ({last})"
        );

        let final_stage_start = ins
            .iter()
            .rposition(|(k, _)| k == "FROM")
            .expect("final FROM");
        let final_stage = &ins[final_stage_start..];
        assert!(
            final_stage
                .iter()
                .any(|(k, a)| k == "COPY" && a.contains("--from=builder") && a.contains(bin)),
            "{what}: final stage copies {bin} from the builder"
        );
        assert!(
            !final_stage.iter().any(|(k, _)| k == "RUN"),
            "{what}: the final stage has no shell to RUN anything"
        );
        let user = final_stage
            .iter()
            .rfind(|(k, _)| k == "USER")
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("{what}: USER in the final stage"));
        let uid = user.split(':').next().unwrap_or(user);
        assert!(
            uid.parse::<u32>().is_ok_and(|u| u != 0),
            "{what}: USER is a numeric non-root uid ({user}), so runAsNonRoot can verify it"
        );
        let entry = final_stage
            .iter()
            .rfind(|(k, _)| k == "ENTRYPOINT")
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("{what}: ENTRYPOINT"));
        assert_eq!(
            entry,
            format!("[\"/usr/local/bin/{bin}\"]"),
            "{what}: exec-form ENTRYPOINT (no shell in the image)"
        );

        let build = ins
            .iter()
            .find(|(k, a)| k == "RUN" && a.contains("cargo build"))
            .map(|(_, a)| a)
            .unwrap_or_else(|| panic!("{what}: cargo build"));
        for needle in [
            "--locked".to_owned(),
            "--profile dist".to_owned(),
            format!("-p {krate}"),
            format!("--bin {bin}"),
        ] {
            assert!(build.contains(&needle), "{what}: cargo build has {needle}");
        }
        let bins = crate_bins(&root().join(krate));
        assert!(
            bins.contains(bin),
            "{what}: crate {krate} has a binary {bin} (it has {bins:?})"
        );
        let ignore = root().join(format!("deploy/docker/{file}.Dockerfile.dockerignore"));
        assert!(
            read(&ignore).lines().any(|l| l.trim() == "target"),
            "{}: the build context leaves out target/",
            ignore.display()
        );
    }
}

/// `[Section]` -> key -> values (a key may repeat).
fn unit_file(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not key=value: {line}", n + 1));
        assert!(!section.is_empty(), "line {}: key outside a section", n + 1);
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    out
}

#[test]
fn systemd_units_run_the_binaries_unprivileged() {
    for (unit, bin, env_file) in [
        ("atlhyper-metrics", "atlhyper-metrics", "metrics"),
        ("atlhyper-agent", "atlhyper-agent", "agent"),
        ("atlhyper-master", "atlhyper-master", "master"),
    ] {
        let path = root().join(format!("deploy/systemd/{unit}.service"));
        let u = unit_file(&read(&path));
        let what = path.display().to_string();
        let service = &u["Service"];
        let one = |k: &str| -> &str {
            service
                .get(k)
                .and_then(|v| v.last())
                .map(String::as_str)
                .unwrap_or_else(|| panic!("{what}: [Service] {k}"))
        };
        assert_eq!(one("ExecStart"), format!("/usr/local/bin/{bin}"));
        assert_eq!(
            one("EnvironmentFile"),
            format!("/etc/atlhyper/{env_file}.env")
        );
        assert_eq!(one("Restart"), "always");
        assert_eq!(one("DynamicUser"), "yes", "{what}: unprivileged user");
        assert_eq!(one("NoNewPrivileges"), "yes");
        assert_eq!(one("CapabilityBoundingSet"), "", "{what}: no capabilities");
        assert_eq!(one("ProtectSystem"), "strict");
        assert_eq!(u["Install"]["WantedBy"], ["multi-user.target"]);
        assert!(u["Unit"].contains_key("After"));
        // The example env file next to the unit exists and is KEY=VALUE.
        let env = read(&root().join(format!("deploy/systemd/{env_file}.env")));
        for line in env.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, _) = line.split_once('=').expect("KEY=VALUE");
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{env_file}.env: {k}"
            );
        }
    }
    // The master keeps its database in its StateDirectory.
    let master = unit_file(&read(
        &root().join("deploy/systemd/atlhyper-master.service"),
    ));
    assert_eq!(master["Service"]["StateDirectory"], ["atlhyper"]);
}

/// All `.rs` text under `<crate>/src`.
fn crate_source(krate: &str) -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&read(&p));
            }
        }
    }
    let mut out = String::new();
    walk(&root().join(krate).join("src"), &mut out);
    out
}

/// Every variable a deploy file sets is one the binary reads (as a quoted name in its crate's
/// source, e.g. clap's `env = "METRICS_AGENT_ADDR"`), so a renamed setting cannot silently turn a
/// manifest into a no-op.
#[test]
fn every_environment_variable_set_is_read_by_its_binary() {
    let crates_of = |bin: &str| -> &'static [&'static str] {
        match bin {
            "atlhyper-metrics" => &["atlhyper-agent", "atlhyper-collect"],
            "atlhyper-agent" => &["atlhyper-agent"],
            "atlhyper-master" => &["atlhyper-master"],
            other => panic!("unknown binary {other}"),
        }
    };
    let mut set: Vec<(String, String, String)> = Vec::new(); // (where, binary, variable)
    for (file, doc) in k8s_docs() {
        let Some(containers) = at(&doc, "spec.template.spec.containers") else {
            continue;
        };
        for c in containers.as_sequence().expect("containers") {
            let bin = str_at(c, "name").to_owned();
            for name in env(c).into_keys() {
                set.push((file.clone(), bin.clone(), name));
            }
        }
    }
    for (env_file, bin) in [
        ("metrics", "atlhyper-metrics"),
        ("agent", "atlhyper-agent"),
        ("master", "atlhyper-master"),
    ] {
        let text = read(&root().join(format!("deploy/systemd/{env_file}.env")));
        for line in text.lines().map(str::trim) {
            // Commented-out examples (`#NODE_NAME=...`) are checked too.
            let line = line.trim_start_matches('#');
            if let Some((k, _)) = line.split_once('=')
                && !k.is_empty()
                && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                set.push((format!("{env_file}.env"), bin.to_owned(), k.to_owned()));
            }
        }
    }
    assert!(set.len() > 20, "found the variables ({})", set.len());
    let mut sources: BTreeMap<&str, String> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (place, bin, var) in &set {
        let read_somewhere = crates_of(bin).iter().any(|krate| {
            sources
                .entry(krate)
                .or_insert_with(|| crate_source(krate))
                .contains(&format!("\"{var}\""))
        });
        if !read_somewhere {
            unknown.push(format!("{place}: {var} (for {bin})"));
        }
    }
    assert!(
        unknown.is_empty(),
        "variables no binary reads:\n{}",
        unknown.join("\n")
    );
}

/// `systemd-analyze verify` on copies of the units whose ExecStart points at an existing file
/// (the real binaries are installed only on a target host). Skipped where systemd is absent.
#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze not installed; unit syntax checked by the parser test only");
        return;
    };
    assert!(out.status.success());
    let dir = std::env::temp_dir().join(format!("atlhyper-units-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let true_bin = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("true(1)");
    let mut units = Vec::new();
    for unit in ["atlhyper-metrics", "atlhyper-agent", "atlhyper-master"] {
        let text = read(&root().join(format!("deploy/systemd/{unit}.service")))
            .replace(&format!("/usr/local/bin/{unit}"), true_bin);
        let p = dir.join(format!("{unit}.service"));
        fs::write(&p, text).expect("write unit");
        units.push(p);
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("run systemd-analyze");
    let _ = fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about the host's own units or a missing systemd manager are not ours.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("atlhyper-")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// The master settings shown commented out with their default (`#MASTER_X=value` in
/// master.env, `# - name: MASTER_X` + `#   value: "v"` in k8s/master.yaml) show the value the
/// binary really defaults to (its clap default), so the documentation cannot drift.
#[test]
fn documented_master_defaults_are_the_binarys() {
    use clap::Args;
    let cmd = atlhyper_master::MasterArgs::augment_args(clap::Command::new("atlhyper-master"));
    let default_of = |var: &str| -> Option<String> {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == var))?;
        let values: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        Some(values.join(","))
    };
    let mut documented: Vec<(String, String, String)> = Vec::new(); // (where, var, value)
    let env_file = read(&root().join("deploy/systemd/master.env"));
    for line in env_file.lines().map(str::trim) {
        if let Some((k, v)) = line.strip_prefix('#').and_then(|l| l.split_once('='))
            && k.starts_with("MASTER_")
            && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            documented.push(("master.env".into(), k.to_owned(), v.trim().to_owned()));
        }
    }
    let yaml = read(&root().join("deploy/k8s/master.yaml"));
    let mut pending: Option<String> = None;
    for line in yaml.lines().map(str::trim) {
        let Some(comment) = line.strip_prefix('#').map(str::trim) else {
            pending = None;
            continue;
        };
        if let Some(name) = comment.strip_prefix("- name:") {
            let name = name.split('#').next().unwrap_or("").trim();
            pending = name.starts_with("MASTER_").then(|| name.to_owned());
        } else if let (Some(var), Some(value)) = (&pending, comment.strip_prefix("value:")) {
            let value = value.trim().trim_matches('"').to_owned();
            documented.push(("k8s/master.yaml".into(), var.clone(), value));
            pending = None;
        }
    }
    assert!(
        documented
            .iter()
            .any(|(w, v, _)| w == "k8s/master.yaml" && v == "MASTER_MAX_PENDING_COMMANDS"),
        "found the commented settings in k8s/master.yaml: {documented:?}"
    );
    let mut wrong = Vec::new();
    for (place, var, value) in &documented {
        match default_of(var) {
            Some(default) if default == *value => {}
            Some(default) => {
                wrong.push(format!("{place}: {var}={value}, the default is {default}"))
            }
            None => wrong.push(format!("{place}: {var} has no default in MasterArgs")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What cert-manager writes into a Certificate's Secret.
const CERT_MANAGER_KEYS: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// The variables that name a PEM file a binary reads.
fn is_pem_setting(name: &str) -> bool {
    [
        "_TLS_CERT",
        "_TLS_KEY",
        "_TLS_CLIENT_CA",
        "_CA_FILE",
        "_CLIENT_CERT",
        "_CLIENT_KEY",
    ]
    .iter()
    .any(|suffix| name.ends_with(suffix))
}

/// The host of a `scheme://host:port` URL.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// The workloads an overlay patches, by name, with its JSON patches applied to the base (as
/// kustomize does, RFC 6902, `test` operations included); all three must be patched.
fn render_overlay(base: &[(String, Value)], kustomization: &Value) -> BTreeMap<String, Value> {
    let mut rendered: BTreeMap<String, Value> = BTreeMap::new();
    for p in seq_at(kustomization, "patches") {
        let (kind, name) = (str_at(p, "target.kind"), str_at(p, "target.name"));
        let mut doc = serde_json::to_value(find(base, kind, name)).expect("as JSON");
        let ops: Value = serde_norway::from_str(str_at(p, "patch")).expect("patch YAML");
        let ops: json_patch::Patch =
            serde_json::from_value(serde_json::to_value(ops).expect("as JSON"))
                .unwrap_or_else(|e| panic!("{kind}/{name}: not a JSON patch: {e}"));
        json_patch::patch(&mut doc, &ops)
            .unwrap_or_else(|e| panic!("{kind}/{name}: the patch does not apply: {e}"));
        rendered.insert(name.to_owned(), serde_json::from_value(doc).expect("back"));
    }
    assert_eq!(rendered.len(), 3, "master, agent and daemon are patched");
    rendered
}

/// The binary and the crate of a workload's container.
fn bin_and_crate(workload: &str) -> (&'static str, &'static str) {
    match workload {
        "atlhyper-master" => ("atlhyper-master", "atlhyper-master"),
        "atlhyper-agent" => ("atlhyper-agent", "atlhyper-agent"),
        "atlhyper-metrics" => ("atlhyper-metrics", "atlhyper-agent"),
        other => panic!("unexpected workload {other}"),
    }
}

/// A file one of an overlay's containers reads through an environment variable, traced to
/// the Secret and key that fill it.
#[derive(Debug)]
struct SecretFile {
    bin: &'static str,
    var: String,
    secret: String,
    key: String,
}

/// deploy/k8s/`overlay` (whose resources must be the base and `own`) applied to the base: the
/// base, the three patched workloads, and every variable of their
/// containers that `wanted` picks, each checked to be read by its binary and to lie in a
/// read-only directory mount (a subPath mount never sees a rotated Secret) of a Secret volume,
/// and traced to that Secret and key.
struct Overlay {
    base: Vec<(String, Value)>,
    rendered: BTreeMap<String, Value>,
    files: Vec<SecretFile>,
}

fn overlay_files(overlay: &str, own: &str, wanted: fn(&str) -> bool) -> Overlay {
    let dir = root().join("deploy/k8s").join(overlay);
    let kustomization: Value =
        serde_norway::from_str(&read(&dir.join("kustomization.yaml"))).expect("kustomization");
    let resources: BTreeSet<&str> = seq_at(&kustomization, "resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(resources, BTreeSet::from(["../", own]));
    let base = k8s_docs();
    let rendered = render_overlay(&base, &kustomization);
    let mut sources: BTreeMap<&str, String> = BTreeMap::new();
    let mut files = Vec::new();
    for (name, workload) in &rendered {
        let (bin, krate) = bin_and_crate(name);
        let c = container(workload, bin);
        // Volume name -> (Secret, file -> key when the volume lists its items).
        let mut secrets: BTreeMap<&str, (&str, BTreeMap<&str, &str>)> = BTreeMap::new();
        for v in seq_at(workload, "spec.template.spec.volumes") {
            if let Some(secret) = at(v, "secret.secretName").and_then(Value::as_str) {
                let items = at(v, "secret.items")
                    .and_then(Value::as_sequence)
                    .map(|items| {
                        items
                            .iter()
                            .map(|i| (str_at(i, "path"), str_at(i, "key")))
                            .collect()
                    })
                    .unwrap_or_default();
                secrets.insert(str_at(v, "name"), (secret, items));
            }
        }
        let source = sources.entry(krate).or_insert_with(|| crate_source(krate));
        for (var, entry) in env(c) {
            if !wanted(&var) {
                continue;
            }
            assert!(source.contains(&format!("\"{var}\"")), "{bin} reads {var}");
            let path = str_at(&entry, "value");
            let mount = seq_at(c, "volumeMounts")
                .iter()
                .find(|m| path.starts_with(&format!("{}/", str_at(m, "mountPath"))))
                .unwrap_or_else(|| panic!("{bin}: {var}={path} is in no mount"));
            assert!(
                bool_at(mount, "readOnly"),
                "{bin}: {path} mounted read-only"
            );
            assert!(
                at(mount, "subPath").is_none(),
                "{bin}: {path} is mounted with subPath, which never sees a rotation"
            );
            let file = &path[str_at(mount, "mountPath").len() + 1..];
            let (secret, items) = secrets
                .get(str_at(mount, "name"))
                .unwrap_or_else(|| panic!("{bin}: {var} is not on a Secret volume"));
            let key = if items.is_empty() {
                file
            } else {
                items
                    .get(file)
                    .unwrap_or_else(|| panic!("{bin}: {file} is not among the volume's items"))
            };
            files.push(SecretFile {
                bin,
                var,
                secret: (*secret).to_owned(),
                key: key.to_owned(),
            });
        }
    }
    Overlay {
        base,
        rendered,
        files,
    }
}

/// The cluster id the base's settings give (`cluster-id=` of `atlhyper-settings`).
fn settings_cluster_id(base: &[(String, Value)]) -> &str {
    let base_kustomization = base
        .iter()
        .map(|(_, d)| d)
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("Kustomization"))
        .expect("deploy/k8s/kustomization.yaml");
    seq_at(base_kustomization, "configMapGenerator")
        .iter()
        .filter(|g| str_at(g, "name") == "atlhyper-settings")
        .flat_map(|g| seq_at(g, "literals"))
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix("cluster-id="))
        .expect("cluster-id in atlhyper-settings")
}

/// deploy/k8s/tls: the base manifests with the overlay's JSON patches applied, checked against the certificates of
/// certificates.yaml and what the binaries read: every PEM path lies in a read-only mount of
/// a Secret cert-manager fills, under a key it writes; every variable is read by its binary;
/// the URLs the clients are given name hosts the server certificates cover; the agent's client
/// certificate names the cluster id the agent sends.
#[test]
fn tls_overlay_mounts_the_certificates_the_binaries_read() {
    let dir = root().join("deploy/k8s/tls");
    let Overlay {
        base,
        rendered,
        files,
    } = overlay_files("tls", "certificates.yaml", is_pem_setting);

    // The certificates: Secret name -> (DNS names, usages), and the issuers they use.
    let text = read(&dir.join("certificates.yaml"));
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|de| Value::deserialize(de).expect("certificates.yaml"))
        .collect();
    let issuers: BTreeSet<&str> = docs
        .iter()
        .filter(|d| str_at(d, "kind") == "Issuer")
        .map(|d| str_at(d, "metadata.name"))
        .collect();
    let mut certs: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for d in docs.iter().filter(|d| str_at(d, "kind") == "Certificate") {
        assert_eq!(str_at(d, "apiVersion"), "cert-manager.io/v1");
        let issuer = str_at(d, "spec.issuerRef.name");
        assert!(issuers.contains(issuer), "issuer {issuer} is defined");
        let strings = |path| -> Vec<&str> {
            at(d, path)
                .and_then(Value::as_sequence)
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        certs.insert(
            str_at(d, "spec.secretName"),
            (strings("spec.dnsNames"), strings("spec.usages")),
        );
    }
    let names_of = |secret: &str| &certs.get(secret).unwrap_or_else(|| panic!("{secret}")).0;
    let usages_of = |secret: &str| &certs[secret].1;

    for SecretFile {
        bin,
        var,
        secret,
        key,
    } in &files
    {
        assert!(
            CERT_MANAGER_KEYS.contains(&key.as_str()),
            "{bin}: {var} reads key {key} of {secret}, which cert-manager does not write"
        );
        names_of(secret);
        let wanted = if var.ends_with("_CLIENT_CERT") || var.ends_with("_CLIENT_KEY") {
            "client auth"
        } else {
            "server auth"
        };
        if !key.starts_with("ca") {
            assert!(
                usages_of(secret).contains(&wanted),
                "{bin}: {var} uses {secret}, a certificate for {wanted}"
            );
        }
    }
    let checked = files.len();
    assert!(checked >= 9, "PEM settings checked: {checked}");

    // The clients are sent to hosts the server certificates name, over https.
    let agent = env(container(&rendered["atlhyper-agent"], "atlhyper-agent"));
    let master_url = env_value(&agent, "AGENT_MASTER_URL");
    assert!(master_url.starts_with("https://"), "{master_url}");
    assert!(names_of("atlhyper-master-tls").contains(&url_host(master_url)));
    let daemon = env(container(&rendered["atlhyper-metrics"], "atlhyper-metrics"));
    let agent_addr = env_value(&daemon, "METRICS_AGENT_ADDR");
    assert!(agent_addr.starts_with("https://"), "{agent_addr}");
    assert!(names_of("atlhyper-agent-tls").contains(&url_host(agent_addr)));
    // The agent's client certificate names the cluster id it sends (from the settings).
    let cluster_id = settings_cluster_id(&base);
    assert_eq!(
        names_of("atlhyper-agent-client"),
        &[cluster_id],
        "the master maps the client certificate's DNS name to the cluster"
    );
    // Probes: the kubelet has no client certificate for a master that requires one, and
    // speaks HTTPS to the agent's TLS receiver.
    let master = container(&rendered["atlhyper-master"], "atlhyper-master");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert!(at(master, &format!("{probe}.httpGet")).is_none(), "{probe}");
        assert!(
            at(master, &format!("{probe}.tcpSocket")).is_some(),
            "{probe}"
        );
        let agent = container(&rendered["atlhyper-agent"], "atlhyper-agent");
        assert_eq!(str_at(agent, &format!("{probe}.httpGet.scheme")), "HTTPS");
    }
}

/// The systemd drop-ins of `deploy/systemd/<dir>`, named `atlhyper-*-<dir>.conf`: every
/// `Environment=VAR=%d/NAME` has its `LoadCredential=NAME:`, and the binary of the unit reads
/// VAR. The number of credentials checked, and the variables set.
fn check_drop_ins(dir: &str) -> (usize, BTreeSet<String>) {
    let path = root().join("deploy/systemd").join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "drop-ins: {files:?}");
    let mut checked = 0;
    let mut vars = BTreeSet::new();
    for file in files {
        let stem = file.file_name().unwrap().to_string_lossy().into_owned();
        let bin = stem
            .strip_suffix(&format!("-{dir}.conf"))
            .unwrap_or_else(|| panic!("{stem}: named atlhyper-*-{dir}.conf"));
        let krate = if bin == "atlhyper-metrics" {
            "atlhyper-agent"
        } else {
            bin
        };
        let source = crate_source(krate);
        let unit = unit_file(&read(&file));
        let service = &unit["Service"];
        let loaded: BTreeSet<&str> = service["LoadCredential"]
            .iter()
            .map(|l| l.split_once(':').expect("NAME:PATH").0)
            .collect();
        for setting in &service["Environment"] {
            let (var, value) = setting.split_once('=').expect("VAR=VALUE");
            assert!(
                source.contains(&format!("\"{var}\"")),
                "{stem}: {bin} reads {var}"
            );
            vars.insert(var.to_owned());
            if let Some(credential) = value.strip_prefix("%d/") {
                assert!(
                    loaded.contains(credential),
                    "{stem}: {var} names credential {credential}, never loaded"
                );
                checked += 1;
            }
        }
    }
    (checked, vars)
}

/// The systemd TLS drop-ins load every credential they name.
#[test]
fn systemd_tls_drop_ins_load_every_credential_they_name() {
    let (checked, _) = check_drop_ins("tls");
    assert!(checked >= 6, "credentials checked: {checked}");
}

/// The systemd token drop-ins give the agent and the daemon their token files as credentials.
#[test]
fn systemd_token_drop_ins_load_every_token_file_they_name() {
    let (checked, vars) = check_drop_ins("tokens");
    assert_eq!(checked, 3, "credentials checked");
    let want = [
        "AGENT_NODE_TOKEN_FILE",
        "AGENT_TOKEN_FILE",
        "METRICS_TOKEN_FILE",
    ];
    assert_eq!(vars, want.iter().map(|v| v.to_string()).collect());
}

/// deploy/k8s/token-files: the base with every token moved from an environment variable to a
/// file of a mounted Secret. Checked: no token is left in the environment; each `*_TOKEN_FILE`
/// is read by its binary and lies in a read-only directory mount (a subPath mount never sees
/// a rotated Secret) of the overlay's Secret, under a key it has; the files hold what their
/// binaries parse, and agree with each other (the agent sends one of the master's agent tokens
/// for the configured cluster, the daemons one of the agent's node tokens).
#[test]
fn token_files_overlay_mounts_every_token_file_the_binaries_read() {
    let dir = root().join("deploy/k8s/token-files");
    let secret: Value =
        serde_norway::from_str(&read(&dir.join("token-files.yaml"))).expect("token-files.yaml");
    assert_eq!(str_at(&secret, "kind"), "Secret");
    let secret_name = str_at(&secret, "metadata.name");
    let file_of = |key: &str| str_at(&secret, &format!("stringData.{key}")).to_owned();

    let Overlay {
        base,
        rendered,
        files: mounted,
    } = overlay_files("token-files", "token-files.yaml", |var| {
        var.ends_with("_TOKEN_FILE")
    });
    for (name, workload) in &rendered {
        let (bin, _) = bin_and_crate(name);
        for var in env(container(workload, bin)).keys() {
            assert!(
                !(var.ends_with("_TOKEN") || var.ends_with("_TOKENS")),
                "{bin}: {var} still comes from the environment"
            );
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for f in &mounted {
        assert_eq!(
            f.secret, secret_name,
            "{}: {} is not on the {secret_name} volume",
            f.bin, f.var
        );
        files.insert(f.var.clone(), file_of(&f.key));
    }
    let vars: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        vars,
        [
            "AGENT_NODE_TOKEN_FILE",
            "AGENT_TOKEN_FILE",
            "MASTER_TOKEN_FILE",
            "METRICS_TOKEN_FILE"
        ]
    );

    // The placeholders are refused for what they are, not for the format around them.
    let real = |text: &str| text.replace("replace-me-", "0123456789abcdef-");
    let e = atlhyper_agent::parse_node_token_file(&files["AGENT_NODE_TOKEN_FILE"]).unwrap_err();
    assert!(e.contains("example value from deploy/"), "{e}");
    let node_tokens = atlhyper_agent::parse_node_token_file(&real(&files["AGENT_NODE_TOKEN_FILE"]))
        .expect("node-tokens in the agent's format");
    let one_token = |var: &str| {
        let text = real(&files[var]);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{var}: one token");
        assert_eq!(
            lines[0].split_whitespace().count(),
            1,
            "{var}: the token alone"
        );
        lines[0].to_owned()
    };
    let sent_to_agent = one_token("METRICS_TOKEN_FILE");
    assert!(
        node_tokens.iter().any(|t| t.secret == sent_to_agent),
        "the daemons send one of the agent's node tokens"
    );
    let sent_to_master = one_token("AGENT_TOKEN_FILE");
    let cluster_id = settings_cluster_id(&base);
    let master = real(&files["MASTER_TOKEN_FILE"]);
    let mut roles = BTreeSet::new();
    for line in master
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        roles.insert(fields[0].to_owned());
        match fields[..] {
            ["agent", _, token, cluster] => {
                assert_eq!(cluster, cluster_id, "the agent line names the cluster");
                assert_eq!(
                    token, sent_to_master,
                    "the agent sends the master's agent token"
                );
            }
            ["viewer" | "operator", _, _] => {}
            _ => panic!("master-tokens: {line:?} is not ROLE NAME TOKEN [CLUSTER]"),
        }
    }
    assert_eq!(
        roles,
        BTreeSet::from(["agent", "operator", "viewer"].map(String::from))
    );
}
