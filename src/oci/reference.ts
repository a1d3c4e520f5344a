// Repository names and tags as the distribution-spec defines them ("Pulling manifests").
import { OciError } from './errors.ts';

const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** distribution limits the whole repository name to 255 characters. */
export const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && name.split('/').every((c) => NAME_COMPONENT.test(c));
}

export function assertValidName(name: string): void {
  if (name.length > MAX_NAME_LENGTH) {
    throw new OciError('NAME_INVALID', `repository name is longer than ${MAX_NAME_LENGTH} characters`, { detail: { length: name.length } });
  }
  if (!isValidName(name)) throw new OciError('NAME_INVALID', 'invalid repository name', { detail: { name } });
}

export function isTag(reference: string): boolean {
  return TAG.test(reference);
}
