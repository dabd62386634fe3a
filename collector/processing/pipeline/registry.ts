import { criStage, dockerStage } from "../stages/container.js";
import { detectedLevelStage } from "../stages/detected-level.js";
import { dropStage } from "../stages/drop.js";
import { jsonStage } from "../stages/json.js";
import {
  labelAllowStage,
  labelDropStage,
  labelsStage,
  staticLabelsStage,
  structuredMetadataStage,
} from "../stages/labels.js";
import { limitStage } from "../stages/limit.js";
import { logfmtStage } from "../stages/logfmt.js";
import { matchStage } from "../stages/match.js";
import { metricsStage } from "../stages/metrics.js";
import { outputStage, tenantStage } from "../stages/output.js";
import { redactStage } from "../stages/redact.js";
import { regexStage } from "../stages/regex.js";
import { relabelStage } from "../stages/relabel.js";
import { replaceStage } from "../stages/replace.js";
import { samplingStage } from "../stages/sampling.js";
import { templateStage } from "../stages/template.js";
import { timestampStage } from "../stages/timestamp.js";
import { truncateStage } from "../stages/truncate.js";

// Every stage a pipeline can name, under its Promtail name: a stage is its module and one line here.
export const STAGES = {
  json: jsonStage,
  logfmt: logfmtStage,
  regex: regexStage,
  replace: replaceStage,
  template: templateStage,
  cri: criStage,
  docker: dockerStage,
  timestamp: timestampStage,
  labels: labelsStage,
  structured_metadata: structuredMetadataStage,
  static_labels: staticLabelsStage,
  labeldrop: labelDropStage,
  labelallow: labelAllowStage,
  tenant: tenantStage,
  output: outputStage,
  relabel: relabelStage,
  detected_level: detectedLevelStage,
  match: matchStage,
  drop: dropStage,
  limit: limitStage,
  sampling: samplingStage,
  truncate: truncateStage,
  redact: redactStage,
  metrics: metricsStage,
};

export type StageName = keyof typeof STAGES;
