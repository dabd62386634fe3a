import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ContractError } from "../common/ingest-contract.js";
import { type Batch, batchPart, type MetricMetadata } from "../proto/batch.js";
import { labelsOf, NO_LABELS } from "../proto/labels.js";
import { screenBatch } from "../proto/validate.js";
import { receiverContract } from "./helpers/contract.js";

// The ingestion contract and the aggregator's row-by-row screening with what main added beside them: OTLP metric
// family metadata, and Loki's ingest defaults (service_name, detected_level) added after the receiver.

const NOW_NS = BigInt(Date.now()) * 1_000_000n;
const GOOD: MetricMetadata = { name: "jobs_total", type: "counter", help: "Jobs done.", unit: "" };
const BAD: MetricMetadata = { name: "bad-name", type: "gauge", help: "", unit: "" };

describe("ingestion contract: metric family metadata", () => {
  it("refuses a request with invalid metadata (400, invalid_metadata), and screening keeps the valid metadata", () => {
    const { contract } = receiverContract();
    assert.throws(
      () => contract.admit("t", { metadata: [GOOD, BAD] }),
      (err: unknown) => err instanceof ContractError && err.status === 400 && err.reason === "invalid_metadata",
    );
    assert.doesNotThrow(() => contract.admit("t", { metadata: [GOOD] }));
    const screened = contract.screen("t", { metadata: [GOOD, BAD] });
    assert.deepEqual(screened.data.metadata, [GOOD]);
    assert.equal(screened.refused.get("invalid_metadata")?.count, 1);
  });

  it("counts metadata in the request's size after decoding", () => {
    const { contract } = receiverContract({
      collector: { limits: { max_body_bytes: 4096, max_decompressed_bytes: 8192 } },
    });
    const large = { ...GOOD, help: "h".repeat(4000) };
    assert.doesNotThrow(() => contract.admit("t", { metadata: [large] }));
    assert.throws(
      () => contract.admit("t", { metadata: [large, { ...large, name: "b" }, { ...large, name: "c" }] }),
      (err: unknown) => err instanceof ContractError && err.status === 413,
    );
  });
});

describe("ingestion contract: Loki's ingest defaults are checked as shipped", () => {
  it("does not count service_name towards max_labels, as Loki, and names it when a shipped label breaks a limit", () => {
    const { contract } = receiverContract({ aggregator: { limits: { max_labels: 3 } } });
    // Two labels and the collector's node label: three as counted, four with the discovered service_name.
    const stream = {
      labels: labelsOf([
        ["app", "a"],
        ["env", "e"],
      ]),
      entries: [{ timeUnixNano: NOW_NS, line: "x", metadata: NO_LABELS }],
    };
    assert.doesNotThrow(() => contract.admit("t", { streams: [stream] }));
    const tooMany = {
      ...stream,
      labels: labelsOf([
        ["app", "a"],
        ["env", "e"],
        ["zone", "z"],
      ]),
    };
    assert.throws(
      () => contract.admit("t", { streams: [tooMany] }),
      (err: unknown) =>
        err instanceof ContractError && err.reason === "too_many_labels" && /service_name="a"/.test(err.message),
    );
  });

  it("counts the detected_level metadata in an entry's size: an entry that fits a batch only without it is refused", () => {
    const maxBatchBytes = 64 << 10;
    const sections = (discover: boolean) => ({
      collector: { batch: { max_batch_bytes: maxBatchBytes }, limits: { discover_log_levels: discover } },
    });
    const fits = (line: string, discover: boolean) => {
      try {
        receiverContract(sections(discover)).contract.admit("t", {
          streams: [
            { labels: labelsOf([["app", "a"]]), entries: [{ timeUnixNano: NOW_NS, line, metadata: NO_LABELS }] },
          ],
        });
        return true;
      } catch (err) {
        if (err instanceof ContractError && err.reason === "entry_too_large") return false;
        throw err;
      }
    };
    // The longest line that fits without a level, found by search; with `detected_level=unknown` it no longer fits.
    let [low, high] = [0, maxBatchBytes];
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (fits("x".repeat(mid), false)) low = mid;
      else high = mid - 1;
    }
    assert.ok(low > 0 && fits("x".repeat(low), false));
    assert.equal(fits("x".repeat(low), true), false);
  });
});

describe("aggregator screening: metric family metadata row by row", () => {
  it("keeps the valid metadata and the rows with them, and refuses the invalid metadata as rows of their own", () => {
    const batch: Batch = {
      tenant: "t",
      nodeId: "n",
      site: "",
      region: "",
      sequence: 1,
      incarnation: "",
      createdUnixNano: NOW_NS,
      streams: [
        { labels: labelsOf([["app", "a"]]), entries: [{ timeUnixNano: NOW_NS, line: "ok", metadata: NO_LABELS }] },
      ],
      series: [],
      metadata: [GOOD, BAD],
    };
    const limits = { max_labels: 15, max_label_name_bytes: 1024, max_label_value_bytes: 2048, max_line_bytes: 1 << 18 };
    const { valid, refused } = screenBatch(batch, limits);
    assert.deepEqual(valid.metadata, [GOOD]);
    assert.equal(valid.streams.length, 1);
    assert.deepEqual(
      refused.map((r) => [r.error.reason, r.rows.metadata, r.rows.streams.length]),
      [["invalid_metadata", [BAD], 0]],
    );
    const part = batchPart(batch, "invalid_metadata", refused[0]!.rows);
    assert.deepEqual(part.metadata, [BAD], "a piece carries its own metadata, not the whole batch's");
    assert.equal(batchPart(batch, "a", { streams: batch.streams, series: [] }).metadata, undefined);
  });
});
