import type { Ajv2020, ErrorObject } from 'ajv/dist/2020';
import { describeRefusal, EGRESS_URL_KEYWORD, literalRefusal, type EgressPolicy } from '@vigil/egress';

type KeywordCheck = ((annotation: unknown, data: unknown) => boolean) & { errors?: Partial<ErrorObject>[] };

/**
 * Teaches Ajv the annotation a kind puts on a URL its service fetches under the egress policy:
 * a URL whose host is a refused IP address fails at create, with the reason. A host name is
 * judged only when the service resolves it.
 */
export function addEgressKeyword(ajv: Ajv2020, policy: EgressPolicy): Ajv2020 {
  const validate: KeywordCheck = (annotation, data) => {
    const refusal = annotation === true && typeof data === 'string' ? literalRefusal(policy, data) : undefined;
    if (!refusal) return true;
    validate.errors = [{ keyword: EGRESS_URL_KEYWORD, message: `is refused: ${describeRefusal(refusal)}`, params: {} }];
    return false;
  };
  return ajv.addKeyword({ keyword: EGRESS_URL_KEYWORD, errors: true, validate });
}
