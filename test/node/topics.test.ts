import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../src/errors';
import { configEntriesOf } from '../../src/node';
import { parseConfigEntries } from '../../src/node/topics';

describe('topic configs', () => {
  it('min.insync.replicas (Kafka name, default 1): a whole number ≥ 1, listed by describeConfigs', () => {
    expect(parseConfigEntries([]).minInsyncReplicas).toBe(1);
    expect(parseConfigEntries([{ name: 'min.insync.replicas', value: '2' }]).minInsyncReplicas).toBe(2);
    for (const value of ['0', '-1', '1.5', '', 'two']) expect(() => parseConfigEntries([{ name: 'min.insync.replicas', value }]), value).toThrow(InvalidConfigError);
    expect(configEntriesOf(parseConfigEntries([{ name: 'min.insync.replicas', value: '3' }]))).toContainEqual({ name: 'min.insync.replicas', value: '3' });
  });
});
