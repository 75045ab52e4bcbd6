// Checks Prometheus Operator objects (PodMonitor, ServiceMonitor, PrometheusRule) in YAML files
// against the monitoring.coreos.com/v1 schemas of @kubernetes-models/prometheus-operator (pinned
// in package.json, generated from the operator's API types), in two passes:
// - its validators: types, required fields, enums and patterns (durations, relabel actions, ...);
// - its TypeScript declarations, for fields the API does not have: the generated schemas allow
//   unknown fields, but `kubectl apply` (strict field validation) refuses them, so every document
//   is type-checked as an object literal of its kind, whose unknown properties TypeScript reports.
//
//   node monitoring-crds.mjs FILE...
//
// Exit 0 when every document of every file is a valid object of a known kind, 1 with one line per
// problem on stderr otherwise, 2 when called without a file. The packages declare node >= 22;
// Debian's node 20 runs them (tests/deploy_manifests.rs runs this script there).

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parseAllDocuments } from "yaml";
import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const MODELS = { PodMonitor, ServiceMonitor, PrometheusRule };

/** How an object is named in a problem: kind namespace/name. */
function objectName(object) {
  return `${object?.kind ?? "?"} ${object?.metadata?.namespace ?? ""}/${object?.metadata?.name ?? "?"}`;
}

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

/**
 * Fields no object of its kind has, by type-checking every object as a literal of its kind's
 * declared interface: one list of problems per object, in order.
 */
function unknownFieldProblems(objects) {
  // A file that exists only in memory, beside this script so that node_modules resolves.
  const checked = path.join(path.dirname(fileURLToPath(import.meta.url)), "monitoring-objects.ts");
  let source = Object.keys(MODELS)
    .map((k) => `import type { I${k} } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${k}";\n`)
    .join("");
  const starts = [];
  objects.forEach((object, i) => {
    starts.push(source.length);
    source += `export const object${i}: I${object.kind} = ${JSON.stringify(object)};\n`;
  });
  const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const readSource = host.getSourceFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === checked ? ts.createSourceFile(name, source, language) : readSource(name, language, ...rest);
  host.fileExists = (name) => name === checked || exists(name);
  const program = ts.createProgram([checked], options, host);
  const problems = objects.map(() => []);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
    // Diagnostics outside the objects (the imports) belong to the check itself: report them all.
    const at = d.file?.fileName === checked ? d.start ?? 0 : 0;
    const index = starts.findLastIndex((start) => start <= at);
    (problems[index] ?? problems[0]).push(message);
  }
  return problems;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node monitoring-crds.mjs FILE...");
  process.exit(2);
}
const problems = [];
// Objects of a known kind that its validator accepts, for the unknown-field pass.
const checked = [];
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
    const found = documentProblems(object);
    if (found.length === 0) {
      checked.push({ file, object });
    } else {
      problems.push(...found.map((p) => `${file}: ${objectName(object)}: ${p}`));
    }
  }
}
if (checked.length > 0) {
  unknownFieldProblems(checked.map((c) => c.object)).forEach((found, i) => {
    const { file, object } = checked[i];
    problems.push(...found.map((p) => `${file}: ${objectName(object)}: ${p}`));
    if (found.length === 0) valid += 1;
  });
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
