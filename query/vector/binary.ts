import { METRIC_NAME, dropLabels, keepLabels, labelsKey, sortedLabelsOf, type Labels } from "../../proto/labels.js";
import { arithmetic, compare, isComparison } from "../../common/vector/arithmetic.js";
import {
  EvaluationError,
  type ArithmeticOp,
  type ComparisonOp,
  type Sample,
  type Semantics,
  type SetOp,
  type VectorMatching,
} from "../../common/vector/types.js";

// Binary operators between vectors and scalars, with Prometheus' vector matching.

const DEFAULT_MATCHING: VectorMatching = { on: false, labels: [], card: "one-to-one", include: [] };

function withoutMetricName(labels: Labels, semantics: Semantics): Labels {
  return semantics.dropMetricName && labels[METRIC_NAME] !== undefined ? dropLabels(labels, [METRIC_NAME]) : labels;
}

/**
 * `vector op scalar`, or `scalar op vector` when `scalarOnLeft`. A comparison keeps the samples for which it holds,
 * with the vector's value, or with `returnBool` returns every sample with 1 or 0.
 */
export function vectorScalar(
  op: ArithmeticOp | ComparisonOp,
  vector: readonly Sample[],
  scalar: number,
  scalarOnLeft: boolean,
  returnBool: boolean,
  semantics: Semantics,
): Sample[] {
  const out: Sample[] = [];
  for (const sample of vector) {
    const left = scalarOnLeft ? scalar : sample.value;
    const right = scalarOnLeft ? sample.value : scalar;
    if (isComparison(op)) {
      const holds = compare(op, left, right);
      if (returnBool) out.push({ labels: withoutMetricName(sample.labels, semantics), value: holds ? 1 : 0 });
      else if (holds) out.push(sample);
    } else {
      out.push({ labels: withoutMetricName(sample.labels, semantics), value: arithmetic(op, left, right, semantics) });
    }
  }
  return out;
}

function signatureOf(labels: Labels, matching: VectorMatching, semantics: Semantics): string {
  if (matching.on) return labelsKey(keepLabels(labels, matching.labels));
  const ignored = semantics.dropMetricName ? [...matching.labels, METRIC_NAME] : matching.labels;
  return labelsKey(dropLabels(labels, ignored));
}

/** The labels of a matched pair: the "many" side's, reduced for one-to-one matching, plus `group_x` labels. */
function resultLabels(many: Labels, one: Labels, matching: VectorMatching, dropName: boolean): Labels {
  let entries = Object.entries(many);
  if (matching.card === "one-to-one") {
    const names = new Set(matching.labels);
    entries = entries.filter(([name]) => names.has(name) === matching.on);
  }
  if (dropName) entries = entries.filter(([name]) => name !== METRIC_NAME);
  const labels = new Map(entries);
  for (const name of matching.include) {
    const value = one[name];
    if (value !== undefined && value !== "") labels.set(name, value);
    else labels.delete(name);
  }
  return sortedLabelsOf(labels);
}

/**
 * `lhs op rhs` between two vectors, for arithmetic and comparison operators, with one-to-one matching unless
 * `group_left` / `group_right` ask for many-to-one / one-to-many.
 */
export function vectorBinary(
  op: ArithmeticOp | ComparisonOp,
  lhs: readonly Sample[],
  rhs: readonly Sample[],
  returnBool: boolean,
  matching: VectorMatching | undefined,
  semantics: Semantics,
): Sample[] {
  const match = matching ?? DEFAULT_MATCHING;
  const oneToMany = match.card === "one-to-many";
  const [many, one] = oneToMany ? [rhs, lhs] : [lhs, rhs];
  const dropName = semantics.dropMetricName && (!isComparison(op) || returnBool);

  const oneBySignature = new Map<string, Sample>();
  for (const sample of one) {
    const signature = signatureOf(sample.labels, match, semantics);
    if (oneBySignature.has(signature)) {
      throw new EvaluationError(
        `found duplicate series on the ${oneToMany ? "left" : "right"} hand-side;` +
          "many-to-many matching not allowed: matching labels must be unique on one side",
      );
    }
    oneBySignature.set(signature, sample);
  }

  const matched = new Map<string, Set<string>>();
  const out: Sample[] = [];
  for (const sample of many) {
    const signature = signatureOf(sample.labels, match, semantics);
    const other = oneBySignature.get(signature);
    if (other === undefined) continue;
    const labels = resultLabels(sample.labels, other.labels, match, dropName);
    const seen = matched.get(signature);
    if (match.card === "one-to-one") {
      if (seen !== undefined) {
        throw new EvaluationError(
          "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
        );
      }
      matched.set(signature, new Set());
    } else {
      const key = labelsKey(labels);
      if (seen === undefined) matched.set(signature, new Set([key]));
      else if (seen.has(key)) {
        throw new EvaluationError("multiple matches for labels: grouping labels must ensure unique matches");
      } else seen.add(key);
    }
    const [left, right] = oneToMany ? [other, sample] : [sample, other];
    if (isComparison(op)) {
      const holds = compare(op, left.value, right.value);
      if (returnBool) out.push({ labels, value: holds ? 1 : 0 });
      else if (holds) out.push({ labels, value: left.value });
    } else {
      out.push({ labels, value: arithmetic(op, left.value, right.value, semantics) });
    }
  }
  return out;
}

/** `and`, `or`, `unless`, matching on all labels unless `on` / `ignoring` say otherwise. */
export function vectorSetOp(
  op: SetOp,
  lhs: readonly Sample[],
  rhs: readonly Sample[],
  matching: VectorMatching | undefined,
  semantics: Semantics,
): Sample[] {
  const match = matching ?? DEFAULT_MATCHING;
  const signature = (sample: Sample) => signatureOf(sample.labels, match, semantics);
  switch (op) {
    case "and": {
      const right = new Set(rhs.map(signature));
      return lhs.filter((sample) => right.has(signature(sample)));
    }
    case "or": {
      const left = new Set(lhs.map(signature));
      return [...lhs, ...rhs.filter((sample) => !left.has(signature(sample)))];
    }
    case "unless": {
      const right = new Set(rhs.map(signature));
      return lhs.filter((sample) => !right.has(signature(sample)));
    }
  }
}
