// A libsignal peer for the live interoperability tests (tests/interop/README.md).
//
// Reads one JSON request per line on stdin and writes one JSON response per
// line on stdout; bytes travel as lowercase hex. Each request names a party
// (a libsignal device: identity, registration id, in-memory stores) and an
// operation. The driver is libsignal's own code path end to end: it never
// computes a protocol value itself.
'use strict';

const readline = require('readline');

const LIBS = {
  v3: 'libsignal-v3', // @signalapp/libsignal-client 0.28.0: v3 sessions
  current: 'libsignal-current', // @signalapp/libsignal-client 0.103.0: v4 only
};
const loaded = {};
function lib(name) {
  if (!(name in LIBS)) throw new Error(`unknown libsignal ${name}`);
  if (!(name in loaded)) loaded[name] = require(LIBS[name]);
  return loaded[name];
}

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const unhex = (text) => Buffer.from(text, 'hex');

// --- In-memory stores holding serialized records (copies, as a database would) ---

function makeStores(S, party) {
  const key = (address) => `${address.name()}.${address.deviceId()}`;
  class Sessions extends S.SessionStore {
    async saveSession(address, record) {
      party.sessions.set(key(address), Buffer.from(record.serialize()));
    }
    async getSession(address) {
      const bytes = party.sessions.get(key(address));
      return bytes === undefined ? null : S.SessionRecord.deserialize(bytes);
    }
    async getExistingSessions(addresses) {
      return Promise.all(addresses.map((a) => this.getSession(a)));
    }
  }
  class Identities extends S.IdentityKeyStore {
    async getIdentityKey() {
      return party.identity.privateKey;
    }
    async getLocalRegistrationId() {
      return party.registrationId;
    }
    async saveIdentity(address, publicKey) {
      const known = party.identities.get(key(address));
      const changed = known !== undefined && !known.equals(Buffer.from(publicKey.serialize()));
      party.identities.set(key(address), Buffer.from(publicKey.serialize()));
      // 0.28.0 answers "was an older key replaced"; 0.103.0 an IdentityChange (1 = replaced).
      return party.lib === 'v3' ? changed : changed ? 1 : 0;
    }
    async isTrustedIdentity(address, publicKey) {
      const known = party.identities.get(key(address));
      return known === undefined || known.equals(Buffer.from(publicKey.serialize()));
    }
    async getIdentity(address) {
      const known = party.identities.get(key(address));
      return known === undefined ? null : S.PublicKey.deserialize(known);
    }
  }
  class PreKeys extends S.PreKeyStore {
    async savePreKey(id, record) {
      party.prekeys.set(id, Buffer.from(record.serialize()));
    }
    async getPreKey(id) {
      const bytes = party.prekeys.get(id);
      if (bytes === undefined) throw new Error(`no prekey ${id}`);
      return S.PreKeyRecord.deserialize(bytes);
    }
    async removePreKey(id) {
      party.prekeys.delete(id);
    }
  }
  class SignedPreKeys extends S.SignedPreKeyStore {
    async saveSignedPreKey(id, record) {
      party.signedPrekeys.set(id, Buffer.from(record.serialize()));
    }
    async getSignedPreKey(id) {
      const bytes = party.signedPrekeys.get(id);
      if (bytes === undefined) throw new Error(`no signed prekey ${id}`);
      return S.SignedPreKeyRecord.deserialize(bytes);
    }
  }
  class KyberPreKeys extends S.KyberPreKeyStore {
    async saveKyberPreKey(id, record) {
      party.kyberPrekeys.set(id, Buffer.from(record.serialize()));
    }
    async getKyberPreKey(id) {
      const bytes = party.kyberPrekeys.get(id);
      if (bytes === undefined) throw new Error(`no Kyber prekey ${id}`);
      return S.KyberPreKeyRecord.deserialize(bytes);
    }
    // libsignal calls this after a Kyber prekey opened a session: a one-time
    // Kyber prekey is then removed (as a device deletes it), a last-resort one kept.
    async markKyberPreKeyUsed(id) {
      if (party.kyberOneTime.has(id)) {
        party.kyberPrekeys.delete(id);
        party.kyberOneTime.delete(id);
      }
    }
  }
  class SenderKeys extends S.SenderKeyStore {
    async saveSenderKey(sender, distributionId, record) {
      party.senderKeys.set(`${key(sender)}/${distributionId}`, Buffer.from(record.serialize()));
    }
    async getSenderKey(sender, distributionId) {
      const bytes = party.senderKeys.get(`${key(sender)}/${distributionId}`);
      return bytes === undefined ? null : S.SenderKeyRecord.deserialize(bytes);
    }
  }
  return {
    senderKeys: new SenderKeys(),
    sessions: new Sessions(),
    identities: new Identities(),
    prekeys: new PreKeys(),
    signedPrekeys: new SignedPreKeys(),
    kyberPrekeys: new KyberPreKeys(),
  };
}

// --- Parties ---

const parties = new Map();

function party(name) {
  const found = parties.get(name);
  if (found === undefined) throw new Error(`no party ${name}`);
  return found;
}

function address(S, peer) {
  return S.ProtocolAddress.new(peer.name, peer.device_id);
}

function localAddress(S, p) {
  return S.ProtocolAddress.new(p.name, p.deviceId);
}

function nowMs() {
  return Date.now();
}

// libsignal's PreKeyBundle from the fields the bundle op answers.
function preKeyBundle(S, b) {
  const key = (text) => (text === null ? null : S.PublicKey.deserialize(unhex(text)));
  const args = [
    b.registration_id,
    b.device_id,
    b.prekey_id,
    key(b.prekey),
    b.signed_prekey_id,
    key(b.signed_prekey),
    unhex(b.signed_prekey_signature),
    key(b.identity_key),
  ];
  if (b.kyber_prekey_id !== null) {
    args.push(
      b.kyber_prekey_id,
      S.KEMPublicKey.deserialize(unhex(b.kyber_prekey)),
      unhex(b.kyber_prekey_signature),
    );
  }
  return S.PreKeyBundle.new(...args);
}

// A request's optional `now` (Unix seconds) as the Date 0.103.0's calls take; absent: the wall clock.
function when(now) {
  return now === undefined || now === null ? undefined : new Date(now * 1000);
}

// processPreKeyBundle as each library's API takes it.
function processBundle(p, remote, bundle, now) {
  const S = lib(p.lib);
  return p.lib === 'v3'
    ? S.processPreKeyBundle(bundle, remote, p.stores.sessions, p.stores.identities)
    : S.processPreKeyBundle(bundle, remote, localAddress(S, p), p.stores.sessions, p.stores.identities, when(now));
}

// signalEncrypt as each library's API takes it (0.103.0 also takes the local address and now).
function encryptTo(p, remote, plaintext, now) {
  const S = lib(p.lib);
  return p.lib === 'v3'
    ? S.signalEncrypt(plaintext, remote, p.stores.sessions, p.stores.identities)
    : S.signalEncrypt(plaintext, remote, localAddress(S, p), p.stores.sessions, p.stores.identities, when(now));
}

// signalDecryptPreKey or signalDecrypt by CiphertextMessageType (3 PreKey, 2 Whisper).
function decryptFrom(p, remote, type, body) {
  const S = lib(p.lib);
  const local = p.lib === 'v3' ? [] : [localAddress(S, p)];
  if (type === S.CiphertextMessageType.PreKey) {
    return S.signalDecryptPreKey(
      S.PreKeySignalMessage.deserialize(body),
      remote,
      ...local,
      p.stores.sessions,
      p.stores.identities,
      p.stores.prekeys,
      p.stores.signedPrekeys,
      p.stores.kyberPrekeys,
    );
  }
  if (type === S.CiphertextMessageType.Whisper) {
    return S.signalDecrypt(
      S.SignalMessage.deserialize(body),
      remote,
      ...local,
      p.stores.sessions,
      p.stores.identities,
    );
  }
  throw new Error(`unsupported message type ${type}`);
}

const ops = {
  // {name, lib, device_id?, registration_id?, identity_private?} -> {identity_key, registration_id}
  create(req) {
    const S = lib(req.lib);
    const privateKey =
      req.identity_private === undefined
        ? S.PrivateKey.generate()
        : S.PrivateKey.deserialize(unhex(req.identity_private));
    const p = {
      name: req.name,
      lib: req.lib,
      deviceId: req.device_id ?? 1,
      registrationId: req.registration_id ?? 1 + Math.floor(Math.random() * 16380),
      identity: { privateKey, publicKey: privateKey.getPublicKey() },
      sessions: new Map(),
      identities: new Map(),
      prekeys: new Map(),
      signedPrekeys: new Map(),
      kyberPrekeys: new Map(),
      senderKeys: new Map(),
      kyberOneTime: new Set(),
    };
    p.stores = makeStores(S, p);
    parties.set(req.name, p);
    return {
      identity_key: hex(p.identity.publicKey.serialize()),
      registration_id: p.registrationId,
    };
  },

  // {name, signed_prekey_id, prekey_id?, kyber_prekey_id?, kyber_last_resort?} -> the bundle a
  // server would serve. The Kyber prekey is a last resort unless kyber_last_resort is false.
  async bundle(req) {
    const p = party(req.name);
    const S = lib(p.lib);
    const signed = S.PrivateKey.generate();
    const signedPublic = signed.getPublicKey().serialize();
    const signature = p.identity.privateKey.sign(signedPublic);
    const record = S.SignedPreKeyRecord.new(
      req.signed_prekey_id,
      nowMs(),
      signed.getPublicKey(),
      signed,
      signature,
    );
    await p.stores.signedPrekeys.saveSignedPreKey(req.signed_prekey_id, record);
    const out = {
      registration_id: p.registrationId,
      device_id: p.deviceId,
      identity_key: hex(p.identity.publicKey.serialize()),
      signed_prekey_id: req.signed_prekey_id,
      signed_prekey: hex(signedPublic),
      signed_prekey_signature: hex(signature),
      prekey_id: null,
      prekey: null,
      kyber_prekey_id: null,
      kyber_prekey: null,
      kyber_prekey_signature: null,
    };
    if (req.prekey_id !== undefined && req.prekey_id !== null) {
      const prekey = S.PrivateKey.generate();
      const prekeyRecord = S.PreKeyRecord.new(req.prekey_id, prekey.getPublicKey(), prekey);
      await p.stores.prekeys.savePreKey(req.prekey_id, prekeyRecord);
      out.prekey_id = req.prekey_id;
      out.prekey = hex(prekey.getPublicKey().serialize());
    }
    if (req.kyber_prekey_id !== undefined && req.kyber_prekey_id !== null) {
      const pair = S.KEMKeyPair.generate();
      const kyberSignature = p.identity.privateKey.sign(pair.getPublicKey().serialize());
      const kyberRecord = S.KyberPreKeyRecord.new(req.kyber_prekey_id, nowMs(), pair, kyberSignature);
      await p.stores.kyberPrekeys.saveKyberPreKey(req.kyber_prekey_id, kyberRecord);
      if (req.kyber_last_resort === false) p.kyberOneTime.add(req.kyber_prekey_id);
      out.kyber_prekey_id = req.kyber_prekey_id;
      out.kyber_prekey = hex(pair.getPublicKey().serialize());
      out.kyber_prekey_signature = hex(kyberSignature);
    }
    return out;
  },

  // {name, peer: {name, device_id}, bundle: <as bundle returns>} -> {}
  async process_bundle(req) {
    const p = party(req.name);
    await processBundle(p, address(lib(p.lib), req.peer), preKeyBundle(lib(p.lib), req.bundle), req.now);
    return {};
  },

  // {name, peer, plaintext, now?} -> {type: CiphertextMessageType (2 Whisper, 3 PreKey), body}
  async encrypt(req) {
    const p = party(req.name);
    const message = await encryptTo(p, address(lib(p.lib), req.peer), unhex(req.plaintext), req.now);
    return { type: message.type(), body: hex(message.serialize()) };
  },

  // {name, peer, type: 2|3, body} -> {plaintext}
  async decrypt(req) {
    const p = party(req.name);
    const remote = address(lib(p.lib), req.peer);
    return { plaintext: hex(await decryptFrom(p, remote, req.type, unhex(req.body))) };
  },

  // {lib, type, body} -> the fields libsignal's deserializer reads (no session needed)
  parse(req) {
    const S = lib(req.lib);
    const body = unhex(req.body);
    if (req.type === S.CiphertextMessageType.PreKey) {
      const m = S.PreKeySignalMessage.deserialize(body);
      return {
        version: m.version(),
        registration_id: m.registrationId(),
        prekey_id: m.preKeyId(),
        signed_prekey_id: m.signedPreKeyId(),
      };
    }
    if (req.type === S.CiphertextMessageType.Whisper) {
      const m = S.SignalMessage.deserialize(body);
      const out = { version: m.messageVersion(), counter: m.counter(), body: hex(m.body()) };
      if (req.lib === 'current') out.pq_ratchet = hex(m.pqRatchet());
      return out;
    }
    throw new Error(`unsupported message type ${req.type}`);
  },

  // {name, peer} -> {identity_key} the peer identity libsignal stored, or null
  identity(req) {
    const p = party(req.name);
    const known = p.identities.get(`${req.peer.name}.${req.peer.device_id}`);
    return {
      own: hex(p.identity.publicKey.serialize()),
      peer: known === undefined ? null : hex(known),
    };
  },

  // {name, peer} -> {local, remote}: the registration ids libsignal's session record holds
  async registration_ids(req) {
    const p = party(req.name);
    const S = lib(p.lib);
    const record = await p.stores.sessions.getSession(address(S, req.peer));
    if (record === null) throw new Error('no session with that peer');
    return { local: record.localRegistrationId(), remote: record.remoteRegistrationId() };
  },

  // {name, peer} -> {record}: the serialized session record libsignal's store holds
  session_record(req) {
    const p = party(req.name);
    const bytes = p.sessions.get(`${req.peer.name}.${req.peer.device_id}`);
    if (bytes === undefined) throw new Error('no session with that peer');
    return { record: hex(bytes) };
  },

  // {lib, workload: "setup"|"pingpong"|"burst", units, length?}
  //   -> {elapsed_ns, cpu_ns, ops, record_bytes}
  // libsignal talking to itself inside this process, timed around libsignal's calls only.
  async bench(req) {
    const run = BENCH[req.workload];
    if (run === undefined) throw new Error(`unknown workload ${req.workload}`);
    return run(req.lib, req.units, req.length ?? 1);
  },
};

// --- Fingerprints and sender keys (tests/interop/test_live_groups.py) ---

Object.assign(ops, {
  // {lib, version, local_id, local_key, remote_id, remote_key, scanned?} (hex; keys 05 ‖ u)
  // -> {display, scannable, matches?}: libsignal's Fingerprint.new with 5200 iterations
  fingerprint(req) {
    const S = lib(req.lib);
    const key = (text) => S.PublicKey.deserialize(unhex(text));
    const f = S.Fingerprint.new(
      5200,
      req.version,
      unhex(req.local_id),
      key(req.local_key),
      unhex(req.remote_id),
      key(req.remote_key),
    );
    const scannable = f.scannableFingerprint();
    const out = {
      display: f.displayableFingerprint().toString(),
      scannable: hex(scannable.toBuffer()),
    };
    if (req.scanned !== undefined) {
      out.matches = scannable.compare(S.ScannableFingerprint._fromBuffer(unhex(req.scanned)));
    }
    return out;
  },

  // {name, distribution_id (UUID text)} -> {distribution}: this party's SenderKeyDistributionMessage
  async sk_create(req) {
    const p = party(req.name);
    const S = lib(p.lib);
    const m = await S.SenderKeyDistributionMessage.create(
      localAddress(S, p),
      req.distribution_id,
      p.stores.senderKeys,
    );
    return { distribution: hex(m.serialize()) };
  },

  // {name, peer, distribution} -> {}: process the peer's distribution message
  async sk_process(req) {
    const p = party(req.name);
    const S = lib(p.lib);
    const m = S.SenderKeyDistributionMessage.deserialize(unhex(req.distribution));
    await S.processSenderKeyDistributionMessage(address(S, req.peer), m, p.stores.senderKeys);
    return {};
  },

  // {name, distribution_id, plaintext} -> {type, body}: groupEncrypt as this party
  async group_encrypt(req) {
    const p = party(req.name);
    const S = lib(p.lib);
    const m = await S.groupEncrypt(
      localAddress(S, p),
      req.distribution_id,
      p.stores.senderKeys,
      unhex(req.plaintext),
    );
    return { type: m.type(), body: hex(m.serialize()) };
  },

  // {name, peer, body} -> {plaintext}: groupDecrypt of the peer's SenderKeyMessage
  async group_decrypt(req) {
    const p = party(req.name);
    const S = lib(p.lib);
    const plaintext = await S.groupDecrypt(address(S, req.peer), p.stores.senderKeys, unhex(req.body));
    return { plaintext: hex(plaintext) };
  },
});
// --- In-process workloads for e2ee bench (README.md "Performance") ---

// clock() starts a measurement; clock(start) ends it: wall time and this process's CPU time
// (user + system, as Python's time.process_time that protocol/bench/timing.py uses).
function clock(start) {
  const now = { wall: process.hrtime.bigint(), cpu: process.cpuUsage() };
  if (start === undefined) return now;
  const cpu = process.cpuUsage(start.cpu);
  return { elapsed_ns: Number(now.wall - start.wall), cpu_ns: (cpu.user + cpu.system) * 1000 };
}

const PLAINTEXT = Buffer.alloc(100); // protocol/bench/floor.py MESSAGE: 100 bytes
let benchParties = 0;

async function benchParty(libName, prefix) {
  benchParties += 1;
  const name = `bench-${prefix}-${benchParties}`;
  ops.create({ name, lib: libName, device_id: 1 });
  return party(name);
}

// A fresh bundle of `responder`: with a one-time prekey and, for 0.103.0, a one-time Kyber prekey.
async function benchBundle(responder) {
  const served = await ops.bundle({
    name: responder.name,
    signed_prekey_id: 1,
    prekey_id: 1,
    kyber_prekey_id: responder.lib === 'v3' ? null : 1,
    kyber_last_resort: false,
  });
  return preKeyBundle(lib(responder.lib), served);
}

// Set-up as protocol/bench/session_pair.py counts it: the initiator processes the bundle and
// encrypts the first message, the responder decrypts it; prekeys are made untimed.
async function benchSetup(libName, units) {
  const initiator = await benchParty(libName, 'initiator');
  const S = lib(libName);
  const from = localAddress(S, initiator);
  const responders = [];
  for (let i = 0; i < units; i += 1) {
    const responder = await benchParty(libName, 'responder');
    responders.push([responder, await benchBundle(responder)]);
  }
  const start = clock();
  for (const [responder, bundle] of responders) {
    const to = localAddress(S, responder);
    await processBundle(initiator, to, bundle);
    const first = await encryptTo(initiator, to, PLAINTEXT);
    await decryptFrom(responder, from, first.type(), first.serialize());
  }
  const [last] = responders[responders.length - 1];
  return { ...clock(start), ops: units, record_bytes: recordBytes(initiator, last) };
}

// Two parties with an acknowledged session (a first message and its answer).
async function benchPair(libName) {
  const S = lib(libName);
  const sides = [await benchParty(libName, 'a'), await benchParty(libName, 'b')];
  const to = sides.map((p) => localAddress(S, p));
  await processBundle(sides[0], to[1], await benchBundle(sides[1]));
  const pair = {
    sides,
    async send(side) {
      const message = await encryptTo(sides[side], to[1 - side], PLAINTEXT);
      return [message.type(), message.serialize()];
    },
    async receive(side, [type, body]) {
      await decryptFrom(sides[side], to[1 - side], type, body);
    },
  };
  await pair.receive(1, await pair.send(0));
  await pair.receive(0, await pair.send(1));
  return pair;
}

function recordBytes(p, peer) {
  return p.sessions.get(`${peer.name}.${peer.deviceId}`).length;
}

// Strict alternation, one operation = one encrypt and its decrypt (workloads.py ping_pong).
async function benchPingPong(libName, units) {
  const pair = await benchPair(libName);
  const start = clock();
  for (let i = 0; i < units; i += 1) {
    const sender = i & 1;
    await pair.receive(1 - sender, await pair.send(sender));
  }
  return { ...clock(start), ops: units, record_bytes: recordBytes(...pair.sides) };
}

// `length` messages on one open sending chain per fresh pair (workloads.py burst).
async function benchBurst(libName, units, length) {
  const pairs = [];
  for (let i = 0; i < units; i += 1) {
    const pair = await benchPair(libName);
    await pair.receive(1, await pair.send(0));
    pairs.push(pair);
  }
  const start = clock();
  for (const pair of pairs) {
    const sent = [];
    for (let n = 0; n < length; n += 1) sent.push(await pair.send(0));
    for (const message of sent) await pair.receive(1, message);
  }
  const last = pairs[pairs.length - 1];
  return { ...clock(start), ops: units * length, record_bytes: recordBytes(...last.sides) };
}

const BENCH = { setup: benchSetup, pingpong: benchPingPong, burst: benchBurst };

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
    const op = ops[req.op];
    if (op === undefined) throw new Error(`unknown op ${req.op}`);
    const start = process.hrtime.bigint();
    const answer = await op(req);
    return { ok: true, elapsed_ns: Number(process.hrtime.bigint() - start), ...answer };
  } catch (error) {
    const name = error?.constructor?.name ?? 'Error';
    return { ok: false, error: name, code: error?.code ?? null, message: String(error?.message) };
  }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    process.stdout.write(`${JSON.stringify(await handle(line))}\n`);
  }
}

main();
