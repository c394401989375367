import { isPlainObject } from './plain.js';

/**
 * The kubernetes-models validators are ajv code compiled from the CRD and
 * OpenAPI schemas. Like the API server's default they accept unknown fields
 * (the API server would prune them; `kubectl apply --validate=strict`
 * rejects them). A misspelt field (`failStratgy`) is a silent security bug
 * here, so this runs the same compiled validator over a recording proxy and
 * reports every key it never looked at:
 *  - a schema with `properties` reads each declared property by name;
 *  - a map schema (additionalProperties) enumerates the keys: all are known;
 *  - a free-form object (x-kubernetes-preserve-unknown-fields, e.g.
 *    WasmPlugin pluginConfig) is never read at all: its subtree is skipped.
 */

interface Seen {
  accessed: Set<PropertyKey>;
  enumerated: boolean;
}

function recorder(root: unknown, seen: Map<object, Seen>): unknown {
  const proxies = new Map<object, object>();
  const wrap = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    const cached = proxies.get(v);
    if (cached) return cached;
    const info: Seen = { accessed: new Set(), enumerated: false };
    seen.set(v, info);
    const p = new Proxy(v, {
      get(target, key, receiver) {
        info.accessed.add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        info.accessed.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        info.enumerated = true;
        return Reflect.ownKeys(target);
      },
      getOwnPropertyDescriptor(target, key) {
        info.accessed.add(key);
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
    });
    proxies.set(v, p);
    return p;
  };
  return wrap(root);
}

function pointer(path: ReadonlyArray<string | number>): string {
  return path.length === 0 ? '/' : path.map((p) => `/${p}`).join('');
}

/** Keys of `doc` that `validate` never read, as JSON pointers; `freeForm` pointers are not looked into. */
export function unknownKeys(doc: unknown, validate: (data: unknown) => void, freeForm: readonly string[] = []): string[] {
  const seen = new Map<object, Seen>();
  validate(recorder(doc, seen));
  const out: string[] = [];
  const walk = (v: unknown, path: Array<string | number>): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, [...path, i]));
      return;
    }
    if (!isPlainObject(v)) return;
    const info = seen.get(v);
    if (info === undefined || info.accessed.size === 0) return; // free-form: the schema never looked inside
    for (const [k, child] of Object.entries(v)) {
      const at = pointer([...path, k]);
      if (freeForm.includes(at)) continue;
      if (!info.enumerated && !info.accessed.has(k)) out.push(at);
      else walk(child, [...path, k]);
    }
  };
  walk(doc, []);
  return out;
}
