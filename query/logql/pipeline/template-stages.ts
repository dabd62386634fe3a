import type { Labels } from "../../../proto/labels.js";
import type { LabelFormatItem } from "../../../common/logql/syntax/ast.js";
import { compileTemplate, type CompiledTemplate } from "../../../common/go/template/executor.js";
import { TemplateExecError } from "../../../common/go/template/values.js";
import { ERROR_LABEL, type LabelsBuilder } from "../../../common/logql/pipeline/labels-builder.js";
import { StageError, type StageFn } from "../../../common/logql/pipeline/parsers.js";

const TEMPLATE_ERROR = "TemplateFormatErr";

/** The labels a template sees: every label including the error labels, as Loki's LabelsBuilder.Map() gives them. */
function templateData(labels: LabelsBuilder): Labels {
  return labels.labels();
}

function execute(
  template: CompiledTemplate,
  data: Labels,
  tsNs: bigint,
  line: string,
  labels: LabelsBuilder,
): string | undefined {
  try {
    return template.execute(data, { line, tsNs });
  } catch (err) {
    if (!(err instanceof TemplateExecError)) throw err;
    labels.setError(TEMPLATE_ERROR, err.message);
    return undefined;
  }
}

/**
 * `| line_format "..."`. A template that is exactly `{{.name}}` reads the label directly, as Loki does, so it
 * never sees `__error__`; a failing template keeps the line and sets TemplateFormatErr.
 */
export function lineFormatStage(source: string): StageFn {
  const template = compileTemplate("line", source);
  const simple = template.simpleField;
  if (simple !== undefined) return (_ts, _line, labels) => labels.get(simple) ?? "";
  return (tsNs, line, labels) => execute(template, templateData(labels), tsNs, line, labels) ?? line;
}

/**
 * `| label_format a="{{.x}}", b=c`. Renames move the value and delete the source. All templates of one stage see
 * the labels as they were before its first template ran, as in Loki.
 */
export function labelFormatStage(items: LabelFormatItem[]): StageFn {
  const seen = new Set<string>();
  for (const item of items) {
    if (item.label === ERROR_LABEL) throw new StageError(`${ERROR_LABEL} cannot be formatted`);
    if (seen.has(item.label))
      throw new StageError(`multiple label name '${item.label}' not allowed in a single format operation`);
    seen.add(item.label);
  }
  const compiled = items.map((item) =>
    item.kind === "template"
      ? { item, template: compileTemplate("label", item.template) }
      : { item, template: undefined },
  );
  return (tsNs, line, labels) => {
    let data: Labels | undefined;
    for (const { item, template } of compiled) {
      if (item.kind === "rename") {
        const value = labels.get(item.from);
        if (value !== undefined) {
          labels.set(item.label, value);
          labels.delete(item.from);
        }
        continue;
      }
      data ??= templateData(labels);
      const value = execute(template!, data, tsNs, line, labels);
      if (value !== undefined) labels.set(item.label, value);
    }
    return line;
  };
}
