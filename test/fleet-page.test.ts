import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { CollectorProcess } from "./helpers/collector-process.js";
import { type ApiAgent, writeKeys } from "./helpers/fleet.js";
import { freePort, KAFKA_BROKERS, REPO_ROOT, uniqueName } from "./helpers/services.js";
import { until } from "./helpers/wait.js";

// The fleet page of the query service, in a real browser: `bifrost all` (its collector an agent of its own fleet
// server, the inventory in its embedded store) and two more collectors in another region; Debian's Chromium,
// headless, driven by playwright-core, reads the page, filters it with its form, and checks the rollout's waves.
// With BIFROST_DOCS_SCREENSHOTS=1 it also writes docs/images/fleet-page.png.

const CHROMIUM = process.env["BIFROST_CHROMIUM"] ?? "/usr/bin/chromium";

describe(
  "fleet page",
  { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (bash deploy/local/services.sh install chromium)` },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-fleet-page-"));
    const source = join(dir, "source");
    let all: ChildProcess;
    let browser: Browser;
    let queryUrl = "";
    let fleetUrl = "";
    const collectors: CollectorProcess[] = [];

    before(async () => {
      mkdirSync(source);
      writeFileSync(join(source, "base.yaml"), "collector:\n  batch:\n    max_entries: 4000\n");
      writeFileSync(
        join(source, "eu.yaml"),
        "selector: { region: eu-west }\npriority: 10\nconfig:\n  collector:\n    limits: { max_labels: 25 }\n",
      );
      writeFileSync(join(source, "rollout.yaml"), "waves:\n  - { percent: 34 }\n  - { percent: 100 }\nsoak_ms: 500\n");
      const keys = writeKeys(dir);
      const [query, collectorPort, aggregator, fleet] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      queryUrl = `http://127.0.0.1:${query}`;
      fleetUrl = `http://127.0.0.1:${fleet}`;
      const agentKeys = { keys: [{ id: "fleet", algorithm: "ed25519", file: keys.publicFile }] };
      const fleetAgent = {
        enabled: true,
        url: `ws://127.0.0.1:${fleet}/v1/opamp`,
        heartbeat_interval_ms: 500,
        health_interval_ms: 500,
      };
      writeFileSync(
        join(dir, "all.yaml"),
        JSON.stringify({
          node: { id: "center-1", site: "hq", region: "eu-central" },
          all: { demo: false },
          storage: { path: join(dir, "data") },
          query: { listen: `127.0.0.1:${query}` },
          aggregator: { listen: `127.0.0.1:${aggregator}` },
          collector: {
            listen: `127.0.0.1:${collectorPort}`,
            otlp: { grpc_enabled: false },
            wal: { dir: join(dir, "wal") },
            actions: agentKeys,
            fleet: fleetAgent,
          },
          fleet: {
            listen: `127.0.0.1:${fleet}`,
            source_dir: source,
            poll_interval_ms: 300,
            rollout_tick_ms: 200,
            persist_interval_ms: 300,
            keys: [{ id: "fleet", algorithm: "ed25519", file: keys.privateFile }],
          },
        }),
      );
      const log = openSync(join(dir, "all.log"), "a");
      all = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), "all", "--config", join(dir, "all.yaml")], {
        stdio: ["ignore", log, log],
      });
      await until(
        "bifrost all serving the fleet page",
        async () => (await fetch(`${queryUrl}/fleet`).catch(() => null))?.status === 200,
        120_000,
      );
      for (const node of ["store-042-gw1", "store-043-gw1"]) {
        mkdirSync(join(dir, node));
        const collector = await CollectorProcess.configure(join(dir, node), {
          nodeId: node,
          kafka: { brokers: KAFKA_BROKERS, topic: uniqueName("fleet-page") },
          node: { site: node, region: "eu-west" },
          collector: { actions: agentKeys, fleet: { ...fleetAgent, labels: { tier: "gold" } } },
        });
        await collector.start();
        collectors.push(collector);
      }
      await until("three agents on the configuration of the completed rollout", async () => {
        const response = await fetch(`${fleetUrl}/fleet/api/v1/agents`);
        const { agents } = (await response.json()) as { agents: ApiAgent[] };
        return (
          agents.length === 3 && agents.every((a) => a.remote_status === "applied" && a.remote_hash === a.desired_hash)
        );
      });
      // A change once all three are in: a rollout with members in both waves.
      writeFileSync(join(source, "base.yaml"), "collector:\n  batch:\n    max_entries: 5000\n");
      await until("the second rollout completed", async () => {
        const { rollouts } = (await (await fetch(`${fleetUrl}/fleet/api/v1/rollouts`)).json()) as {
          rollouts: { status: string; waves: { members: string[] }[] }[];
        };
        return (
          rollouts.length === 2 &&
          rollouts[0]!.status === "completed" &&
          rollouts[0]!.waves.every((w) => w.members.length > 0)
        );
      });
      await until(
        "the page showing all three",
        async () => ((await (await fetch(`${queryUrl}/fleet`)).text()).match(/<tr title=/g) ?? []).length === 3,
      );
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    });

    after(async () => {
      await browser?.close();
      for (const collector of collectors) await collector.stop();
      if (all && all.exitCode === null) {
        const exited = new Promise((resolve) => all.once("exit", resolve));
        all.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    });

    it("lists every agent with its health, configuration, buffer and lag, and the rollout's waves", async () => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`${queryUrl}/fleet`);
      assert.equal(await page.title(), "Bifrost fleet");
      const rows = page.locator("#agents tr[title]");
      assert.equal(await rows.count(), 3);
      const text = await page.locator("#agents").innerText();
      for (const node of ["center-1", "store-042-gw1", "store-043-gw1"]) assert.match(text, new RegExp(node));
      assert.match(text, /bifrost-collector 0\.1\.0/);
      assert.equal(await page.locator("#agents .state.healthy").count(), 3);
      assert.equal(await page.locator("#agents .state.applied").count(), 3);
      const rollout = page.locator(".rollout").first();
      assert.match(await rollout.innerText(), /completed/);
      assert.equal(await rollout.locator(".state.passed").count(), 2);
      assert.ok((await rollout.locator(".state.ok").count()) >= 2, "gate results are shown");
      if (process.env["BIFROST_DOCS_SCREENSHOTS"] === "1")
        await page.screenshot({ path: join(REPO_ROOT, "docs", "images", "fleet-page.png"), fullPage: true });
      await page.close();
    });

    it("filters by region, site and state with its form", async () => {
      const page = await browser.newPage();
      await page.goto(`${queryUrl}/fleet`);
      await page.selectOption("select[name=region]", "eu-west");
      await page.click("button[type=submit]");
      await page.waitForURL(/region=eu-west/);
      assert.equal(await page.locator("#agents tr[title]").count(), 2);
      await page.selectOption("select[name=site]", "store-043-gw1");
      await page.click("button[type=submit]");
      await page.waitForURL(/site=store-043-gw1/);
      assert.equal(await page.locator("#agents tr[title]").count(), 1);
      await page.goto(`${queryUrl}/fleet?state=stale`);
      assert.match(await page.locator("#agents").innerText(), /No agent matches/);
      const bad = await fetch(`${queryUrl}/fleet?last_seen=soon`);
      assert.equal(bad.status, 400);
      await page.close();
    });
  },
);
