import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

// A build of the part of kustomize that deploy/kubernetes uses (resources, namespace, labels,
// configMapGenerator), so that the manifests are checked as they would be applied on a machine without
// kustomize. Any other kustomization field is an error here rather than something silently left out; where
// `kubectl kustomize` exists, the test also compares this build with it.

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
};

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  resources?: string[];
  configMapGenerator?: { name: string; files?: string[]; envs?: string[] }[];
}

const SUPPORTED = new Set(["apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator"]);
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"]);

/** Every document of a YAML stream; `<<` merge keys are read as Compose and kustomize read them. */
export function parseYamlDocuments(text: string, source: string): unknown[] {
  return parseAllDocuments(text, { merge: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS();
  });
}

function readKustomization(dir: string): Kustomization {
  const file = join(dir, "kustomization.yaml");
  if (!existsSync(file)) throw new Error(`${dir} has no kustomization.yaml`);
  const k = parseYamlDocuments(readFileSync(file, "utf8"), file)[0] as Kustomization;
  const unsupported = Object.keys(k).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0)
    throw new Error(`${file}: fields this build does not implement: ${unsupported.join(", ")}`);
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization")
    throw new Error(`${file}: not a v1beta1 Kustomization`);
  return k;
}

/** KEY=VALUE lines, as kustomize reads an `envs` file: blank lines and # comments skipped. */
export function parseEnvFile(text: string): Record<string, string> {
  const data: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`not KEY=VALUE: ${line}`);
    data[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return data;
}

function generateConfigMap(
  dir: string,
  generator: NonNullable<Kustomization["configMapGenerator"]>[number],
): K8sObject {
  const data: Record<string, string> = {};
  for (const env of generator.envs ?? []) Object.assign(data, parseEnvFile(readFileSync(join(dir, env), "utf8")));
  for (const entry of generator.files ?? []) {
    const [key, path] = entry.includes("=") ? (entry.split("=", 2) as [string, string]) : [basename(entry), entry];
    data[key] = readFileSync(join(dir, path), "utf8");
  }
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: generator.name }, data };
}

/** The objects `kustomize build dir` emits, ConfigMap names without their hash suffix. */
export function buildKustomization(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  const objects: K8sObject[] = [];
  for (const resource of k.resources ?? []) {
    const path = resolve(dir, resource);
    if (!existsSync(path)) throw new Error(`${dir}: resource ${resource} does not exist`);
    if (statSync(path).isDirectory()) objects.push(...buildKustomization(path));
    else
      objects.push(...(parseYamlDocuments(readFileSync(path, "utf8"), path).filter((o) => o !== null) as K8sObject[]));
  }
  for (const generator of k.configMapGenerator ?? []) objects.push(generateConfigMap(dir, generator));
  for (const object of objects) {
    if (k.namespace !== undefined && !CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = k.namespace;
    for (const label of k.labels ?? []) {
      if (label.includeSelectors || label.includeTemplates)
        throw new Error(`${dir}: labels into selectors or templates are not implemented here`);
      object.metadata.labels = { ...object.metadata.labels, ...label.pairs };
    }
  }
  const seen = new Set<string>();
  for (const object of objects) {
    const id = objectId(object);
    if (seen.has(id)) throw new Error(`${dir}: ${id} is defined twice`);
    seen.add(id);
  }
  return objects;
}

export function objectId(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

/** `kubectl kustomize dir` with the generated names' hash suffixes taken off, or null without kubectl. */
export function kubectlKustomize(dir: string, generatedNames: string[]): K8sObject[] | null {
  const result = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  if (result.error !== undefined) return null;
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  const suffix = new RegExp(
    `\\b(${generatedNames.map((n) => n.replace(/[.-]/g, "\\$&")).join("|")})-[a-z0-9]{10}\\b`,
    "g",
  );
  return parseYamlDocuments(result.stdout.replace(suffix, "$1"), `kubectl kustomize ${dir}`) as K8sObject[];
}
