// Grafana Loki's answers (main of 2026-08, single binary, pattern ingester on) to the Logs Drilldown requests of
// test/loki-drilldown.test.ts, recorded after pushing drilldownStreams(t0) to it. Times are relative to t0: log
// timestamps as nanoseconds after it, pattern samples as seconds after it. Loki lists fields, values, labels and
// series in no fixed order; the test compares those as sets.

export interface RecordedAnswer {
  /** The request (parameters not URL-encoded), with `${RANGE}` for start=t0&end=t0+15m. */
  path: string;
  headers: Record<string, string>;
  status: number;
  body: unknown;
}

export const LOKI_DRILLDOWN_ANSWERS: RecordedAnswer[] = [
  {
    path: '/loki/api/v1/detected_fields?query={env=~".+"}&${RANGE}',
    headers: {},
    status: 200,
    body: {
      fields: [
        {
          label: "status",
          type: "int",
          cardinality: 4,
          parsers: ["logfmt"],
        },
        {
          label: "host",
          type: "string",
          cardinality: 5,
          parsers: ["logfmt"],
        },
        {
          label: "trace_id",
          type: "string",
          cardinality: 8,
          parsers: null,
        },
        {
          label: "user_name",
          type: "string",
          cardinality: 3,
          parsers: ["json"],
          jsonPath: ["user", "name"],
        },
        {
          label: "ok",
          type: "boolean",
          cardinality: 2,
          parsers: ["logfmt"],
        },
        {
          label: "duration",
          type: "duration",
          cardinality: 35,
          parsers: ["logfmt"],
        },
        {
          label: "user",
          type: "string",
          cardinality: 3,
          parsers: ["logfmt"],
        },
        {
          label: "user_id",
          type: "int",
          cardinality: 8,
          parsers: ["json"],
          jsonPath: ["user", "id"],
        },
        {
          label: "paid",
          type: "boolean",
          cardinality: 2,
          parsers: ["json"],
          jsonPath: ["paid"],
        },
        {
          label: "latency",
          type: "int",
          cardinality: 8,
          parsers: ["json"],
          jsonPath: ["latency"],
        },
        {
          label: "path",
          type: "string",
          cardinality: 3,
          parsers: ["logfmt"],
        },
        {
          label: "msg",
          type: "string",
          cardinality: 9,
          parsers: ["logfmt", "json"],
          jsonPath: ["msg"],
        },
        {
          label: "size",
          type: "bytes",
          cardinality: 5,
          parsers: ["logfmt"],
        },
        {
          label: "detected_level",
          type: "string",
          cardinality: 7,
          parsers: null,
        },
        {
          label: "retry",
          type: "int",
          cardinality: 3,
          parsers: ["json"],
          jsonPath: ["retry"],
        },
        {
          label: "level",
          type: "string",
          cardinality: 8,
          parsers: ["logfmt", "json"],
          jsonPath: ["level"],
        },
      ],
      limit: 1000,
    },
  },
  {
    path: '/loki/api/v1/detected_fields?query={app="api"} | logfmt | status >= 400&${RANGE}',
    headers: {},
    status: 200,
    body: {
      fields: [
        {
          label: "level",
          type: "string",
          cardinality: 4,
          parsers: ["logfmt"],
        },
        {
          label: "user",
          type: "string",
          cardinality: 3,
          parsers: ["logfmt"],
        },
        {
          label: "status",
          type: "int",
          cardinality: 2,
          parsers: ["logfmt"],
        },
        {
          label: "path",
          type: "string",
          cardinality: 3,
          parsers: ["logfmt"],
        },
        {
          label: "size",
          type: "bytes",
          cardinality: 5,
          parsers: ["logfmt"],
        },
        {
          label: "msg",
          type: "string",
          cardinality: 1,
          parsers: ["logfmt"],
        },
        {
          label: "detected_level",
          type: "string",
          cardinality: 4,
          parsers: null,
        },
        {
          label: "ok",
          type: "boolean",
          cardinality: 2,
          parsers: ["logfmt"],
        },
        {
          label: "duration",
          type: "duration",
          cardinality: 48,
          parsers: ["logfmt"],
        },
      ],
      limit: 1000,
    },
  },
  {
    path: '/loki/api/v1/detected_fields?query={foo="bar"}&${RANGE}',
    headers: {},
    status: 200,
    body: {
      fields: [
        {
          label: "detected_level",
          type: "string",
          cardinality: 1,
          parsers: null,
        },
      ],
      limit: 1000,
    },
  },
  {
    path: '/loki/api/v1/detected_field/level/values?query={env=~".+"}&${RANGE}',
    headers: {},
    status: 200,
    body: {
      limit: 1000,
      values: ["WARN", "error", "critical", "info", "debug", "ERROR", "warning", "INFO"],
    },
  },
  {
    path: '/loki/api/v1/detected_field/detected_level/values?query={env=~".+"}&${RANGE}',
    headers: {},
    status: 200,
    body: {
      limit: 1000,
      values: ["info", "debug", "warn", "error", "trace", "unknown", "critical"],
    },
  },
  {
    path: '/loki/api/v1/detected_field/user_name/values?query={env=~".+"}&${RANGE}',
    headers: {},
    status: 200,
    body: {
      limit: 1000,
      values: ["carol", "bob", "alice"],
    },
  },
  {
    path: '/loki/api/v1/detected_field/nope/values?query={env=~".+"}&${RANGE}',
    headers: {},
    status: 200,
    body: {},
  },
  {
    path: '/loki/api/v1/detected_labels?query={env=~".+"}&${RANGE}',
    headers: {},
    status: 200,
    body: {
      detectedLabels: [
        {
          label: "namespace",
          cardinality: 1,
        },
        {
          label: "service_name",
          cardinality: 5,
        },
        {
          label: "cluster",
          cardinality: 1,
        },
        {
          label: "level",
          cardinality: 1,
        },
        {
          label: "app",
          cardinality: 2,
        },
        {
          label: "env",
          cardinality: 2,
        },
        {
          label: "container",
          cardinality: 1,
        },
        {
          label: "job",
          cardinality: 1,
        },
      ],
    },
  },
  {
    path: "/loki/api/v1/detected_labels?${RANGE}",
    headers: {},
    status: 200,
    body: {
      detectedLabels: [
        {
          label: "env",
          cardinality: 2,
        },
        {
          label: "app",
          cardinality: 2,
        },
        {
          label: "service_name",
          cardinality: 6,
        },
        {
          label: "namespace",
          cardinality: 1,
        },
        {
          label: "foo",
          cardinality: 1,
        },
        {
          label: "level",
          cardinality: 1,
        },
        {
          label: "job",
          cardinality: 1,
        },
        {
          label: "container",
          cardinality: 1,
        },
        {
          label: "cluster",
          cardinality: 1,
        },
      ],
    },
  },
  {
    path: '/loki/api/v1/patterns?query={job="nginx"}&${RANGE}&step=60s',
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: [
        {
          pattern: '<_> - - "GET /api/cart HTTP/1.1" 404 <_> "-" "curl/8.2"',
          level: "unknown",
          samples: [
            [0, 1],
            [60, 4],
            [120, 3],
            [180, 3],
            [240, 4],
            [300, 3],
            [360, 3],
            [420, 4],
            [480, 3],
            [540, 3],
            [600, 1],
          ],
        },
        {
          pattern: '<_> - - "GET /api/orders HTTP/1.1" 304 <_> "-" "curl/8.1"',
          level: "unknown",
          samples: [
            [0, 2],
            [60, 3],
            [120, 3],
            [180, 4],
            [240, 3],
            [300, 3],
            [360, 4],
            [420, 3],
            [480, 3],
            [540, 4],
          ],
        },
        {
          pattern: '<_> - - "GET /api/users HTTP/1.1" 200 <_> "-" "curl/8.0"',
          level: "unknown",
          samples: [
            [0, 2],
            [60, 3],
            [120, 4],
            [180, 3],
            [240, 3],
            [300, 4],
            [360, 3],
            [420, 3],
            [480, 4],
            [540, 3],
          ],
        },
      ],
    },
  },
  {
    path: '/loki/api/v1/patterns?query={container="worker"}&${RANGE}&step=300s',
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: [
        {
          pattern: "ERROR failed to connect to db host=<_>",
          level: "error",
          samples: [
            [0, 15],
            [300, 16],
            [600, 1],
          ],
        },
      ],
    },
  },
  {
    path: '/loki/api/v1/patterns?query={foo="bar"}&${RANGE}&step=300s',
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: [
        {
          pattern: "plain line number <_> with nothing to say",
          level: "unknown",
          samples: [
            [0, 15],
            [300, 17],
          ],
        },
      ],
    },
  },
  {
    path: '/loki/api/v1/query_range?query={app="api"} | logfmt | status >= 500&${RANGE}&limit=3',
    headers: {
      "X-Loki-Response-Encoding-Flags": "categorize-labels",
    },
    status: 200,
    body: {
      status: "success",
      data: {
        resultType: "streams",
        encodingFlags: ["categorize-labels"],
        result: [
          {
            stream: {
              app: "api",
              cluster: "c1",
              env: "prod",
              service_name: "api",
            },
            values: [
              [
                "600000000000",
                'level=info msg="request served" path=/api/cart status=500 duration=815ms size=1KB user=carol ok=false',
                {
                  structuredMetadata: {
                    detected_level: "info",
                  },
                  parsed: {
                    duration: "815ms",
                    level: "info",
                    msg: "request served",
                    ok: "false",
                    path: "/api/cart",
                    size: "1KB",
                    status: "500",
                    user: "carol",
                  },
                },
              ],
              [
                "576000000000",
                'level=info msg="request served" path=/api/orders status=500 duration=667ms size=2KB user=bob ok=false',
                {
                  structuredMetadata: {
                    detected_level: "info",
                  },
                  parsed: {
                    duration: "667ms",
                    level: "info",
                    msg: "request served",
                    ok: "false",
                    path: "/api/orders",
                    size: "2KB",
                    status: "500",
                    user: "bob",
                  },
                },
              ],
              [
                "552000000000",
                'level=WARN msg="request served" path=/api/users status=500 duration=519ms size=3KB user=alice ok=false',
                {
                  structuredMetadata: {
                    detected_level: "warn",
                  },
                  parsed: {
                    duration: "519ms",
                    level: "WARN",
                    msg: "request served",
                    ok: "false",
                    path: "/api/users",
                    size: "3KB",
                    status: "500",
                    user: "alice",
                  },
                },
              ],
            ],
          },
        ],
      },
    },
  },
  {
    path: '/loki/api/v1/query_range?query={service_name="checkout"} | json | line_format "{{.msg}}"&${RANGE}&limit=2',
    headers: {
      "X-Loki-Response-Encoding-Flags": "categorize-labels",
    },
    status: 200,
    body: {
      status: "success",
      data: {
        resultType: "streams",
        encodingFlags: ["categorize-labels"],
        result: [
          {
            stream: {
              env: "prod",
              namespace: "shop",
              service_name: "checkout",
            },
            values: [
              [
                "583000000000",
                "order 1092 placed",
                {
                  structuredMetadata: {
                    detected_level: "critical",
                    trace_id: "t0b1de4",
                  },
                  parsed: {
                    latency: "11.5",
                    level: "critical",
                    msg: "order 1092 placed",
                    paid: "false",
                    retry: "2",
                    user_id: "92",
                    user_name: "carol",
                  },
                },
              ],
              [
                "559000000000",
                "order 1088 placed",
                {
                  structuredMetadata: {
                    detected_level: "error",
                    trace_id: "t0aa228",
                  },
                  parsed: {
                    latency: "11",
                    level: "ERROR",
                    msg: "order 1088 placed",
                    paid: "true",
                    retry: "1",
                    user_id: "88",
                    user_name: "bob",
                  },
                },
              ],
            ],
          },
        ],
      },
    },
  },
  {
    path: '/loki/api/v1/query_range?query={service_name="checkout"}&${RANGE}&limit=2',
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: {
        resultType: "streams",
        result: [
          {
            stream: {
              detected_level: "critical",
              env: "prod",
              namespace: "shop",
              service_name: "checkout",
              trace_id: "t0b1de4",
            },
            values: [
              [
                "583000000000",
                '{"level":"critical","msg":"order 1092 placed","user":{"name":"carol","id":92},"latency":11.5,"retry":2,"paid":false}',
              ],
            ],
          },
          {
            stream: {
              detected_level: "error",
              env: "prod",
              namespace: "shop",
              service_name: "checkout",
              trace_id: "t0aa228",
            },
            values: [
              [
                "559000000000",
                '{"level":"ERROR","msg":"order 1088 placed","user":{"name":"bob","id":88},"latency":11,"retry":1,"paid":true}',
              ],
            ],
          },
        ],
      },
    },
  },
  {
    path: "/loki/api/v1/series?match[]={}&${RANGE}",
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: [
        {
          container: "worker",
          env: "dev",
          service_name: "worker",
        },
        {
          app: "web",
          env: "dev",
          level: "warn",
          service_name: "web",
        },
        {
          env: "prod",
          service_name: "api",
          app: "api",
          cluster: "c1",
        },
        {
          env: "dev",
          job: "nginx",
          service_name: "nginx",
        },
        {
          env: "prod",
          namespace: "shop",
          service_name: "checkout",
        },
        {
          foo: "bar",
          service_name: "unknown_service",
        },
      ],
    },
  },
  {
    path: "/loki/api/v1/label/service_name/values?${RANGE}",
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: ["api", "checkout", "nginx", "unknown_service", "web", "worker"],
    },
  },
  {
    path: "/loki/api/v1/label/level/values?${RANGE}",
    headers: {},
    status: 200,
    body: {
      status: "success",
      data: ["warn"],
    },
  },
];
