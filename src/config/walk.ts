// Finding one's way in the schema: the node under defaults, optionals and pipes, and the mapping
// at a path. issues.ts names the keys an unknown key could have been; effective.ts writes a
// config back in its units.
import { z } from 'zod';

/** The schema inside a default, prefault, optional, nullable or pipe; undefined for any other. */
export function unwrapOnce(schema: z.ZodType): z.ZodType | undefined {
  if (
    schema instanceof z.ZodPrefault ||
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodNullable
  )
    return schema.unwrap() as z.ZodType;
  // A preprocess is a transform into the schema; a transform is a schema into a function.
  if (schema instanceof z.ZodPipe)
    return (schema.out instanceof z.ZodTransform ? schema.in : schema.out) as z.ZodType;
  return undefined;
}

/** The object or list under every wrapper of `schema`. */
function container(schema: z.ZodType): z.ZodObject | z.ZodArray | undefined {
  let node: z.ZodType | undefined = schema;
  for (let depth = 0; node !== undefined && depth < 10; depth += 1) {
    if (node instanceof z.ZodObject || node instanceof z.ZodArray) return node;
    node = unwrapOnce(node);
  }
  return undefined;
}

/** The mapping at `path` of `schema`, through lists (numeric path parts). */
export function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  const node = container(schema);
  if (node === undefined) return undefined;
  if (path.length === 0) return node instanceof z.ZodObject ? node : undefined;
  const [head, ...rest] = path;
  if (node instanceof z.ZodObject && typeof head === 'string') {
    const child = (node.shape as Record<string, z.ZodType | undefined>)[head];
    return child && objectAt(child, rest);
  }
  if (node instanceof z.ZodArray && typeof head === 'number')
    return objectAt(node.element as z.ZodType, rest);
  return undefined;
}
