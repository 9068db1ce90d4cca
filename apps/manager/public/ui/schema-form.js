// A form built from a kind's params JSON Schema: strings (enums as a list), integers, numbers and
// booleans get inputs of their own, nested objects a group of fields, anything else JSON text.
import { h } from './dom.js';

const typeOf = (schema) => {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type) return type;
  if (schema.enum) return 'enum';
  if (schema.properties) return 'object';
  return 'json';
};

// Zod states an unbounded integer's range as the safe-integer limits; they say nothing to a user.
const bound = (value) => (typeof value === 'number' && Math.abs(value) < Number.MAX_SAFE_INTEGER ? value : undefined);

/**
 * Renders the fields of `schema` (an object schema) filled with `values`, else the defaults.
 * Returns the element and read(), which gives the params or throws naming the field at fault.
 */
export function schemaForm(schema, values = {}, path = 'params') {
  const properties = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const readers = [];
  const rows = [];
  for (const [name, prop] of Object.entries(properties)) {
    const id = `${path}.${name}`;
    const has = Object.prototype.hasOwnProperty.call(values ?? {}, name);
    // A secret (writeOnly) comes back from the API as "***": it is never shown, and must be given again.
    const value = prop.writeOnly ? (has ? undefined : prop.default) : has ? values[name] : prop.default;
    const isRequired = required.has(name) && prop.default === undefined;
    const label = h(
      'label',
      { for: id },
      name,
      isRequired ? h('span', { class: 'required', title: 'required' }, ' *') : '',
    );
    const hint = prop.description ? h('small', { class: 'hint' }, prop.description) : '';
    const type = typeOf(prop);
    let input;
    let read;
    if (type === 'object' && prop.properties) {
      const nested = schemaForm(prop, value ?? {}, id);
      rows.push(h('fieldset', { class: 'nested' }, h('legend', {}, name), hint, nested.element));
      readers.push([name, () => nested.read(), true]);
      continue;
    } else if (prop.enum || type === 'enum') {
      input = h(
        'select',
        { id, name: id, required: isRequired },
        isRequired ? '' : h('option', { value: '' }, '—'),
        prop.enum.map((option) =>
          h('option', { value: JSON.stringify(option), selected: option === value }, String(option)),
        ),
      );
      read = () => (input.value === '' ? undefined : JSON.parse(input.value));
    } else if (type === 'boolean') {
      input = h('input', { id, name: id, type: 'checkbox', checked: value === true });
      read = () => input.checked;
    } else if (type === 'integer' || type === 'number') {
      const min = bound(prop.minimum) ?? bound(prop.exclusiveMinimum);
      const max = bound(prop.maximum) ?? bound(prop.exclusiveMaximum);
      input = h('input', {
        id,
        name: id,
        type: 'number',
        step: type === 'integer' ? '1' : 'any',
        min,
        max,
        required: isRequired,
        value: typeof value === 'number' ? String(value) : '',
      });
      read = () => {
        if (input.value.trim() === '') return undefined;
        const n = Number(input.value);
        if (!Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
          throw new Error(`${id}: ${type === 'integer' ? 'a whole number' : 'a number'} is needed`);
        }
        return n;
      };
    } else if (type === 'string') {
      input = h('input', {
        id,
        name: id,
        type: prop.writeOnly || prop.format === 'password' ? 'password' : 'text',
        placeholder: prop.writeOnly && has ? 'secret: enter it again' : undefined,
        required: isRequired,
        minlength: prop.minLength,
        maxlength: prop.maxLength,
        value: typeof value === 'string' ? value : '',
      });
      read = () => (input.value === '' && !isRequired ? undefined : input.value);
    } else {
      input = h('textarea', { id, name: id, rows: 3, required: isRequired, placeholder: 'JSON' });
      input.value = value === undefined ? '' : JSON.stringify(value, null, 2);
      read = () => {
        if (input.value.trim() === '') return undefined;
        try {
          return JSON.parse(input.value);
        } catch {
          throw new Error(`${id}: not valid JSON`);
        }
      };
    }
    rows.push(h('div', { class: 'field' }, label, input, hint));
    readers.push([name, read, isRequired]);
  }
  const element = h(
    'div',
    { class: 'schema-form' },
    rows.length ? rows : h('p', { class: 'muted' }, 'This kind takes no params.'),
  );
  const read = () => {
    const params = {};
    for (const [name, readField, isRequired] of readers) {
      const value = readField();
      if (value === undefined) {
        if (isRequired) throw new Error(`${path}.${name} is required`);
        continue;
      }
      params[name] = value;
    }
    return params;
  };
  return { element, read };
}
