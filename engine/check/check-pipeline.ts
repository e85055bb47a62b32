import { checkExpression } from './expression-check.ts';
import { schemaShape, type SchemaLookup } from './schema-shape.ts';
import { ANY, type Shape } from './shape.ts';

/** Where an expression sits in a pipeline file, and what it reads. */
export interface ExpressionSite {
  /** Its key in the pipeline file (`['sinks', 0, 'with', 'audience']`). */
  path: ReadonlyArray<string | number>;
  source: string;
  /** `event`: the filter and the transform; `output`: `when:` and sink expressions. */
  over: 'event' | 'output';
}

/** One finding of a pipeline check, at an offset inside the expression at `path`. */
export interface SiteFinding {
  path: ReadonlyArray<string | number>;
  offset: number;
  severity: 'error' | 'warning';
  message: string;
}

/**
 * Checks a pipeline's expressions: the filter and the transform against the event's shape (its
 * input schema, or ANY without one), then `when:` and sink expressions against the transform's
 * inferred output (the event itself when there is no transform), with `$input` the event.
 */
export function checkPipelineSchema(schema: { id: string; lookup: SchemaLookup } | undefined, sites: readonly ExpressionSite[]): SiteFinding[] {
  const event = schema ? schemaShape(schema.lookup(schema.id)?.schema, schema.id, schema.lookup) : ANY;
  return checkPipelineExpressions(event, sites);
}

/** checkPipelineSchema with the event's shape given. */
export function checkPipelineExpressions(event: Shape, sites: readonly ExpressionSite[]): SiteFinding[] {
  const findings: SiteFinding[] = [];
  const run = (site: ExpressionSite, input: Shape, inputName: string, variables?: Record<string, Shape>) => {
    const result = checkExpression(site.source, { input, inputName, variables });
    const label = site.path.filter((p) => p !== 'with').join('.');
    for (const f of result.findings) findings.push({ path: site.path, offset: f.offset, severity: f.severity, message: `${label}: ${f.message}` });
    return result.output;
  };
  let output: Shape = event;
  let outputName = 'the event';
  for (const site of sites.filter((s) => s.over === 'event')) {
    const shape = run(site, event, 'the event');
    if (site.path.length === 1 && site.path[0] === 'transform') {
      output = shape;
      outputName = "the transform's output";
    }
  }
  for (const site of sites.filter((s) => s.over === 'output')) run(site, output, outputName, { input: event });
  return findings;
}
