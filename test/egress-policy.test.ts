import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeRefusal, EgressPolicy, literalRefusal, parseCidr } from '@vigil/egress';

// The policy is a pure function of an address: nothing here connects anywhere.
describe('egress policy: which addresses http-poll may reach', () => {
  const policy = new EgressPolicy();

  it('refuses loopback, private, link-local, unique-local, multicast, unspecified and mapped forms', () => {
    const refused: [address: string, range: string][] = [
      ['10.1.2.3', '10.0.0.0/8'],
      ['172.16.0.1', '172.16.0.0/12'],
      ['172.31.255.254', '172.16.0.0/12'],
      ['192.168.1.1', '192.168.0.0/16'],
      ['100.64.0.1', '100.64.0.0/10'],
      ['169.254.169.254', '169.254.0.0/16'],
      ['fe80::1', 'fe80::/10'],
      ['fe80::1%eth0', 'fe80::/10'],
      ['fc00::1', 'fc00::/7'],
      ['fd12:3456::1', 'fc00::/7'],
      ['::ffff:10.0.0.1', '10.0.0.0/8'],
      ['::ffff:a9fe:a9fe', '169.254.0.0/16'],
      ['::ffff:127.0.0.1', '127.0.0.0/8'],
      ['64:ff9b::10.0.0.1', '10.0.0.0/8'],
      ['224.0.0.1', '224.0.0.0/4'],
      ['ff02::1', 'ff00::/8'],
      ['0.0.0.0', '0.0.0.0/8'],
      ['::', '::/128'],
      ['127.0.0.1', '127.0.0.0/8'],
      ['127.255.0.9', '127.0.0.0/8'],
      ['::1', '::1/128'],
      ['255.255.255.255', '255.255.255.255/32'],
      ['240.0.0.1', '240.0.0.0/4'],
      ['192.0.2.7', '192.0.2.0/24'],
      ['2001:db8::1', '2001:db8::/32'],
    ];
    for (const [address, range] of refused) {
      assert.equal(policy.refusal(address)?.range, range, address);
    }
  });

  it('names the IPv4 address a mapped one stands for, and how to allow it', () => {
    const refusal = policy.refusal('::ffff:10.0.0.1');
    assert.ok(refusal);
    assert.equal(
      describeRefusal(refusal),
      '::ffff:10.0.0.1 (IPv4 10.0.0.1) is in 10.0.0.0/8 (private); list a range holding it in HTTP_POLL_ALLOW_CIDRS to allow it',
    );
  });

  it('accepts public addresses, v4 and v6, mapped and NAT64 ones included', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(policy.refusal(address), undefined, address);
    }
    assert.equal(policy.refusal('64:ff9b::8.8.8.8'), undefined);
  });

  it('admits what the allow-list holds, and only that', () => {
    const allowing = new EgressPolicy(['127.0.0.0/8', 'fd00:1::/32'].map(parseCidr));
    for (const address of ['127.0.0.1', '127.9.9.9', '::ffff:127.0.0.1', 'fd00:1::5']) {
      assert.equal(allowing.refusal(address), undefined, address);
    }
    for (const address of ['::1', '10.0.0.1', '169.254.169.254', 'fd00:2::5']) {
      assert.notEqual(allowing.refusal(address), undefined, address);
    }
  });

  it('parses CIDRs strictly', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('::1/128'), { address: '::1', prefix: 128, family: 'ipv6' });
    assert.throws(() => parseCidr('10.0.0.1'), /not a CIDR/);
    assert.throws(() => parseCidr('10.0.0.0/33'), /at most \/32/);
    assert.throws(() => parseCidr('fd00::/129'), /at most \/128/);
    assert.throws(() => parseCidr('10.1.0.0/8'), /bits set past \/8/);
    assert.throws(() => parseCidr('fd00::1/64'), /bits set past \/64/);
    assert.throws(() => parseCidr('010.0.0.0/8'), /not a CIDR/);
    assert.throws(() => parseCidr('example.com/8'), /not a CIDR/);
  });

  it('judges a URL by its host only when that host is an IP address', () => {
    assert.equal(literalRefusal(policy, 'http://169.254.169.254/latest/meta-data')?.range, '169.254.0.0/16');
    assert.equal(literalRefusal(policy, 'http://[::1]:8080/')?.range, '::1/128');
    // The URL parser's spellings of 127.0.0.1 are caught too.
    assert.equal(literalRefusal(policy, 'http://0x7f.1/')?.range, '127.0.0.0/8');
    assert.equal(literalRefusal(policy, 'http://2130706433/')?.range, '127.0.0.0/8');
    assert.equal(literalRefusal(policy, 'http://localhost/'), undefined);
    assert.equal(literalRefusal(policy, 'https://8.8.8.8/'), undefined);
    assert.equal(literalRefusal(policy, 'not a url'), undefined);
  });
});
