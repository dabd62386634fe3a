import { z } from "zod";
import { pipelineStagesSchema } from "../../processing/pipeline/schema.js";
import type { SchemaHelpers } from "../schema-helpers.js";

/** `collector.kubernetes`: container logs of the pods on this node, as the kubelet lays them out. */
export function kubernetesSchema(h: SchemaHelpers) {
  return z
    .strictObject({
      enabled: h.boolean().default(false).describe("tail the logs of this node's pods"),
      pods_root: z
        .string()
        .min(1)
        .default("/var/log/pods")
        .describe("the kubelet's pod log directory: <root>/<namespace>_<pod>_<uid>/<container>/<restart>.log"),
      format: z
        .enum(["auto", "cri", "docker"])
        .default("auto")
        .describe("cri (containerd, CRI-O), docker (json-file), or auto: each line as it looks"),
      labels: z.record(h.labelName, z.string()).default({}).describe("stream labels added to every line"),
      tenant: z.string().min(1).optional().describe("tenant of the lines; none means collector.default_tenant"),
      pipeline_stages: pipelineStagesSchema()
        .optional()
        .describe("processing stages of pod log lines; none means collector.pipeline_stages"),
      pod_labels: h
        .list(z.string().min(1))
        .default([
          "app.kubernetes.io/name",
          "app.kubernetes.io/instance",
          "app.kubernetes.io/component",
          "app",
          "component",
        ])
        .describe(
          'pod labels that become stream labels (name sanitized: app.kubernetes.io/name -> app_kubernetes_io_name); ["*"] takes all',
        ),
      pod_annotations: h
        .list(z.string().min(1))
        .default([])
        .describe("pod annotations that become stream labels, named the same way"),
      max_partial_lines: h
        .number(z.number().int().min(1))
        .default(100)
        .describe("a line split by the runtime into more pieces than this is delivered in parts"),
      partial_timeout_ms: h
        .duration(z.number().int().min(1))
        .default(5000)
        .describe("pieces of a line whose end does not come within this are delivered as they are"),
      positions_file: z
        .string()
        .default("")
        .describe("read positions kept across restarts; empty: kubernetes-positions.json beside the file positions"),
      api: z
        .strictObject({
          enabled: z
            .enum(["auto", "true", "false"])
            .default("auto")
            .describe("ask the API server for pod labels and annotations; auto: when running in a cluster"),
          url: z
            .string()
            .default("")
            .describe("API server URL; empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"),
          token_file: z
            .string()
            .default("/var/run/secrets/kubernetes.io/serviceaccount/token")
            .describe("bearer token, read again for each request (bound tokens rotate)"),
          ca_file: z
            .string()
            .default("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
            .describe("CA of the API server"),
          timeout_ms: h.duration(z.number().int().min(1)).default(5000).describe("per request"),
          refresh_ms: h
            .duration(z.number().int().min(1000))
            .default(300_000)
            .describe("a pod's labels are asked for again after this"),
        })
        .prefault({})
        .describe("pod metadata from the API server (get on pods); without it, labels come from the path alone"),
    })
    .prefault({})
    .describe(
      "Kubernetes pod logs: each line an entry of {namespace, pod, container, stream, pod labels}, CRI and Docker formats, partial lines joined",
    )
    .meta({
      examples: [
        {
          enabled: true,
          pod_labels: ["app.kubernetes.io/name", "app.kubernetes.io/instance", "team"],
          pod_annotations: ["example.com/owner"],
        },
      ],
    });
}

export type KubernetesConfig = z.infer<ReturnType<typeof kubernetesSchema>>;
