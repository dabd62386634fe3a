import type { CollectorConfig } from "../config.js";
import { compileGoRegexp } from "../../common/regex.js";

export type AllowedAction = CollectorConfig["actions"]["allowed"][number];

/** A parameter value that is missing, undeclared, or does not match its pattern: answered 422. */
export class ParamError extends Error {}

const PLACEHOLDER = /^\{\{([a-z][a-z0-9_]*)\}\}$/;

/** Characters no parameter may hold whatever its pattern says: they split lines in logs and argv in scripts. */
const CONTROL = /[\u0000-\u001f\u007f]/;

const MAX_VALUE_LENGTH = 1024;

/**
 * An allow-listed action: its argv with `{{param}}` elements replaced by validated values. Patterns are
 * anchored (the whole value must match), and a value only ever fills a whole argv element of a command run
 * without a shell, so `nginx; rm -rf /` would be one (refused) argument, never a second command.
 */
export class CompiledAction {
  private readonly patterns = new Map<string, { pattern: RegExp; required: boolean }>();

  constructor(readonly spec: AllowedAction) {
    for (const [name, param] of Object.entries(spec.params)) {
      this.patterns.set(name, { pattern: compileGoRegexp(param.pattern, true), required: param.required });
    }
  }

  get name(): string {
    return this.spec.name;
  }

  argv(params: Record<string, string>): string[] {
    for (const name of Object.keys(params)) {
      if (!this.patterns.has(name)) throw new ParamError(`unknown parameter ${JSON.stringify(name.slice(0, 64))}`);
    }
    for (const [name, { pattern, required }] of this.patterns) {
      const value = params[name];
      if (value === undefined) {
        if (required) throw new ParamError(`missing required parameter ${name}`);
        continue;
      }
      if (value.length > MAX_VALUE_LENGTH || CONTROL.test(value) || !pattern.test(value))
        throw new ParamError(`parameter ${name} does not match its pattern`);
    }
    return this.spec.command.flatMap((arg) => {
      const placeholder = PLACEHOLDER.exec(arg);
      if (placeholder === null) return [arg];
      const value = params[placeholder[1]!];
      // An optional parameter left out drops its argv element rather than passing an empty argument.
      return value === undefined ? [] : [value];
    });
  }
}

export function compileAllowList(actions: AllowedAction[]): Map<string, CompiledAction> {
  return new Map(actions.map((action) => [action.name, new CompiledAction(action)]));
}
