import type { ObserverKind } from '@vigil/observer-sdk';
import { httpPoll } from './http-poll';
import { ticker } from './ticker';

export const builtInKinds: readonly ObserverKind[] = [ticker, httpPoll];
