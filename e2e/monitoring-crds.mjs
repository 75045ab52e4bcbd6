// Checks Prometheus Operator objects (PodMonitor, ServiceMonitor, PrometheusRule) in YAML files
// against the monitoring.coreos.com/v1 schemas, with the validators that
// @kubernetes-models/prometheus-operator (pinned in package.json) generates from the operator's
// API types: types, required fields, enums and patterns (durations, relabel actions, ...).
// Unknown fields are not reported: the generated schemas allow them, as the API server prunes them.
//
//   node monitoring-crds.mjs FILE...
//
// Exit 0 when every document of every file is a valid object of a known kind, 1 with one line per
// problem on stderr otherwise, 2 when called without a file. The packages declare node >= 22;
// Debian's node 20 runs them (tests/deploy_manifests.rs runs this script there).

import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const MODELS = { PodMonitor, ServiceMonitor, PrometheusRule };

/** The problems of one document (an empty list when it is valid). */
function documentProblems(object) {
  if (object === null || typeof object !== "object" || Array.isArray(object)) {
    return ["not a Kubernetes object"];
  }
  const Model = MODELS[object.kind];
  if (Model === undefined) {
    return [`kind ${JSON.stringify(object.kind)} is none of ${Object.keys(MODELS).join(", ")}`];
  }
  try {
    // The model keeps the document's apiVersion, so a wrong one fails its enum.
    new Model(object).validate();
    return [];
  } catch (e) {
    return [e.message];
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node monitoring-crds.mjs FILE...");
  process.exit(2);
}
const problems = [];
let valid = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    problems.push(`${file}: ${e.message}`);
    continue;
  }
  for (const [index, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) {
      problems.push(...doc.errors.map((e) => `${file}: document ${index + 1}: ${e.message}`));
      continue;
    }
    const object = doc.toJS();
    if (object === null) continue; // an empty document between separators
    const name = `${object?.kind ?? "?"} ${object?.metadata?.namespace ?? ""}/${object?.metadata?.name ?? "?"}`;
    const found = documentProblems(object);
    problems.push(...found.map((p) => `${file}: ${name}: ${p}`));
    if (found.length === 0) valid += 1;
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
if (valid === 0) {
  console.error(`no Prometheus Operator object in ${files.join(", ")}`);
  process.exit(1);
}
console.log(`${valid} Prometheus Operator objects valid (monitoring.coreos.com/v1)`);
