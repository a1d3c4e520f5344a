// Requests the UI makes to the registry API on a visitor's behalf (warm, referrers), in-process through
// the app: with client authentication on they carry a short token for the visitor and that repository,
// so they get exactly what the visitor's own client would.
import type { Principal } from '../auth/authorizer.ts';
import type { AuthAction } from '../config/config.ts';
import type { RegistryDeps } from '../routes/deps.ts';

export async function visitorHeaders(registry: RegistryDeps, principal: Principal, name: string, actions: readonly AuthAction[] = ['pull']): Promise<Record<string, string>> {
  const auth = registry.auth;
  if (!auth || principal.kind === 'anonymous') return {};
  const subject = principal.kind === 'user' ? { kind: 'user' as const, name: principal.name } : { kind: 'token' as const, name: principal.name, createdAt: principal.createdAt };
  const { token } = await auth.tokenService.issue(subject, [{ type: 'repository', name, actions }]);
  return { authorization: `Bearer ${token}` };
}
