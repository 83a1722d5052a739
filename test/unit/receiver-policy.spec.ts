import { buildConfig } from '../../src/config/config';
import {
  embeddedIPv4,
  ReceiverPolicy,
  ReceiverRefused,
  type Resolver,
} from '../../src/webhooks/receiver-policy';

const required = {
  BARGE_POSTGRES_URL: 'postgres://u:p@db:5432/barge',
  BARGE_STORAGE_ENDPOINT: 'http://minio:9000',
  BARGE_STORAGE_ACCESS_KEY: 'ak',
  BARGE_STORAGE_SECRET_KEY: 'sk',
  BARGE_STORAGE_BUCKET: 'barge',
};

/** The policy of a server with the default configuration: https only, public addresses only. */
const byDefault = new ReceiverPolicy(buildConfig(required).webhooks);

/** A resolver that must not be asked (IP literals need none). */
const noDns: Resolver = () => Promise.reject(new Error('DNS must not be asked'));

describe('ReceiverPolicy', () => {
  it.each([
    '127.0.0.1',
    '127.10.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254', // cloud metadata
    '100.100.100.200', // Alibaba's metadata (carrier-grade NAT range)
    '0.0.0.0',
    '0.1.2.3',
    '224.0.0.1',
    '255.255.255.255',
    '198.18.0.1',
    '192.0.2.10',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    'fd00:ec2::254', // AWS's IPv6 metadata
    'fc00::5',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe', // 169.254.169.254, IPv4-mapped in hex
    '::10.0.0.1', // IPv4-compatible
    '64:ff9b::a00:1', // NAT64 of 10.0.0.1
    '2002:a00:1::1', // 6to4 of 10.0.0.1
    '2001:db8::1',
  ])('refuses %s by default', (address) => {
    expect(byDefault.refusal(address)).toMatch(/loopback, private, link-local or reserved/);
  });

  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])(
    'accepts the public address %s',
    (address) => {
      expect(byDefault.refusal(address)).toBeNull();
    },
  );

  it('unwraps IPv4 inside IPv6', () => {
    expect(embeddedIPv4('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(embeddedIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIPv4('2002:c0a8:101::')).toBe('192.168.1.1');
    expect(embeddedIPv4('::1')).toBeNull();
    expect(embeddedIPv4('2606:4700::1')).toBeNull();
  });

  it.each([
    ['http://hooks.example.com/x', /must use https/],
    ['ftp://hooks.example.com/x', /must use https/],
    ['https://user:pw@hooks.example.com/x', /credentials/],
    ['not a url', /not a valid absolute URL/],
    [`https://example.com/${'a'.repeat(2100)}`, /longer than 2048/],
  ])('refuses the form of %s', (url, message) => {
    expect(() => byDefault.parse(url)).toThrow(message);
  });

  it('checks IP literals without DNS, in every spelling the URL parser accepts', async () => {
    for (const url of [
      'https://10.0.0.1/hook',
      'https://[::ffff:10.0.0.1]/hook',
      'https://[fd00::1]:8443/hook',
      'https://0.0.0.0/hook',
      'https://2130706433/hook', // 127.0.0.1 as one number
      'https://0x7f.1/hook', // 127.0.0.1, hex and short
      'https://169.254.169.254/latest/meta-data/',
    ]) {
      await expect(byDefault.resolve(byDefault.parse(url), noDns)).rejects.toThrow(ReceiverRefused);
    }
  });

  it('refuses a name when any address it resolves to is not public', async () => {
    const resolver: Resolver = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.1', family: 4 },
    ];
    await expect(byDefault.resolve(new URL('https://hooks.example.com/'), resolver)).rejects.toThrow(
      /hooks.example.com resolves to 10.0.0.1/,
    );
    const failing: Resolver = () => Promise.reject(new Error('ENOTFOUND'));
    await expect(byDefault.resolve(new URL('https://nowhere.example/'), failing)).rejects.toThrow(
      /could not be resolved/,
    );
  });

  it('lets the operator allow networks and require hosts', async () => {
    const local = new ReceiverPolicy({
      allowedNetworks: ['127.0.0.0/8', '::1/128'],
      allowedHosts: [],
      allowHttp: true,
    });
    expect(local.refusal('127.0.0.1')).toBeNull();
    expect(local.refusal('::1')).toBeNull();
    expect(local.refusal('::ffff:127.0.0.1')).toBeNull();
    expect(local.refusal('10.0.0.1')).not.toBeNull();
    await expect(local.resolve(local.parse('http://127.0.0.1:9/x'), noDns)).resolves.toEqual([
      { address: '127.0.0.1', family: 4 },
    ]);

    const pinned = new ReceiverPolicy({
      allowedNetworks: [],
      allowedHosts: ['*.example.com', 'hooks.acme.io'],
      allowHttp: false,
    });
    expect(pinned.parse('https://a.b.example.com/x').hostname).toBe('a.b.example.com');
    expect(pinned.parse('https://HOOKS.acme.io/x').hostname).toBe('hooks.acme.io');
    expect(() => pinned.parse('https://example.com/x')).toThrow(/not one this server delivers/);
    expect(() => pinned.parse('https://evil-example.com/x')).toThrow(/not one this server delivers/);
  });
});
