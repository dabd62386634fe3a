import { type Labels, sortedNames } from "../../proto/labels.js";

// The alert contract: what the ruler hands to whatever acts on alerts (the notifier, the remediation) after every
// group evaluation. The ruler owns it; consumers take it as it is.

/** An alert as Alertmanager's API takes it: every firing alert, and each alert once when it resolves. */
export interface AlertNotice {
  labels: Labels;
  annotations: Labels;
  state: "firing" | "resolved";
  /** RFC 3339: when the alert fired. */
  startsAt: string;
  /**
   * RFC 3339: when it resolved. A firing alert has none; the notifier then resolves it by itself
   * `resolve_timeout_ms` after the last notice that carried it, as Alertmanager treats alerts without an end.
   */
  endsAt?: string;
  generatorURL: string;
  /** alertFingerprint(labels). */
  fingerprint: string;
}

/** Receives, after every group evaluation, the group's firing alerts and those resolved by that evaluation. */
export interface AlertSink {
  send(alerts: AlertNotice[]): void;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const SEPARATOR = 0xff;

/**
 * Prometheus's model.LabelSet.Fingerprint, as Alertmanager shows it: FNV-1a 64 over the label names in byte
 * order, each name and value followed by the byte 0xff, printed as 16 lower-case hex digits. Equal to what
 * Alertmanager's API reports for the same labels, so responders can correlate both.
 */
export function alertFingerprint(labels: Labels): string {
  let hash = FNV_OFFSET;
  const add = (byte: number): void => {
    hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK;
  };
  for (const name of sortedNames(labels)) {
    for (const byte of Buffer.from(name, "utf8")) add(byte);
    add(SEPARATOR);
    for (const byte of Buffer.from(labels[name]!, "utf8")) add(byte);
    add(SEPARATOR);
  }
  return hash.toString(16).padStart(16, "0");
}
