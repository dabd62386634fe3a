import { join } from "node:path";
import ts from "typescript";
import type { K8sObject } from "./kustomize.js";

// Two checks of Kubernetes objects against the API's OpenAPI schema as the kubernetes-models package ships it:
// its generated validators (types, formats, required fields, enums), and its TypeScript interfaces, which catch
// what those validators let through, as the API server's strict field validation does: a field the API does
// not have (a misspelt `readinesProbe` is otherwise ignored by the cluster, silently).

function modelPath(o: K8sObject): string {
  return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

/** The schema validator's complaint about `o`, or null when it is valid. */
export async function schemaError(o: K8sObject): Promise<string | null> {
  let module: Record<string, new (data: unknown) => { validate(): void }>;
  try {
    module = (await import(modelPath(o))) as typeof module;
  } catch {
    return `no schema for ${o.apiVersion} ${o.kind}`;
  }
  const Model = module[o.kind];
  if (Model === undefined) return `no model ${o.kind} in ${modelPath(o)}`;
  try {
    new Model(o).validate();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Type-checks each object as a literal of its kind's interface; returns one message per unknown field or
 * wrong type, naming the object by `names[i]`.
 */
export function strictFieldErrors(objects: K8sObject[], names: string[], repoRoot: string): string[] {
  const file = join(repoRoot, "__deploy_manifests__.ts");
  const lines = objects.map(
    (o, i) => `export const m${i}: import("${modelPath(o)}").I${o.kind} = ${JSON.stringify(o)};`,
  );
  const source = lines.join("\n") + "\n";
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (
    (exists) => (name: string) =>
      name === file || exists(name)
  )(host.fileExists.bind(host));
  host.readFile = (name) => (name === file ? source : readFile(name));
  host.getSourceFile = (name, language, onError, create) =>
    name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, onError, create);
  const program = ts.createProgram([file], options, host);
  const sourceFile = program.getSourceFile(file)!;
  return ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
    const line = d.start === undefined ? -1 : sourceFile.getLineAndCharacterOfPosition(d.start).line;
    return `${names[line] ?? "?"}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}
