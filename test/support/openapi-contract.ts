import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/** Checks HTTP answers against an OpenAPI 3.1 document (the management API's). */

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** Validates answers against the served OpenAPI document: the operation's schema for the status. */
export function contract(document: any) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema({ $id: 'openapi', components: document.components });
  const templates = Object.keys(document.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const checked = new Set<string>();
  return {
    checked,
    validate(method: string, path: string, answer: Answer) {
      const found = templates.find((t) => t.pattern.test(path.split('?')[0]));
      if (!found) throw new Error(`no path in the OpenAPI document matches ${path}`);
      const operation = document.paths[found.template][method.toLowerCase()];
      if (!operation) throw new Error(`${method} ${found.template} is not in the OpenAPI document`);
      const response = operation.responses[String(answer.status)];
      if (!response) throw new Error(`${method} ${found.template} does not document status ${answer.status}: ${JSON.stringify(answer.body)}`);
      checked.add(`${method} ${found.template} ${answer.status}`);
      if (!response.content) {
        expect(answer.body).toBe('');
        return;
      }
      const [type, media] = Object.entries(response.content)[0] as [string, { schema: any }];
      expect(answer.headers.get('content-type')).toContain(type);
      const schema = JSON.parse(JSON.stringify(media.schema).replace(/"#\/components/g, '"openapi#/components'));
      const valid = ajv.validate(schema, answer.body);
      if (!valid) throw new Error(`${method} ${path} ${answer.status} does not match the document: ${ajv.errorsText()} in ${JSON.stringify(answer.body)}`);
    },
  };
}

