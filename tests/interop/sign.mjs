#!/usr/bin/env node
/*
 * Independent Data Integrity SIGNER for EduFed's interop tests: the other direction of verify.mjs.
 *
 * Why: "credentials issued elsewhere verify here" needs credentials that were issued elsewhere. This script
 * issues a VC 2.0 credential with Digital Bazaar's stack (@digitalbazaar/vc `issue`, DataIntegrityProof with
 * the eddsa-rdfc-2022 cryptosuite) as a did:key issuer, so EduFed's verifier is tested on proofs it did not make.
 *
 * Input (stdin, one JSON object):
 *   {"credential": {...}, "contexts": {"<IRI>": {...}},
 *    "privateKeyMultibase" (or "secretKeyMultibase"): "z3u2…",
 *    "publicKeyMultibase": "z6Mk…"                                    (a Multikey pair)
 *    or "seed": "<64 hex digits>"                                      (a 32-byte Ed25519 seed),
 *    "created": "2025-01-01T00:00:00Z"}                                (optional: fixes proof.created)
 * Output (stdout, one JSON line): the signed credential; on failure {"error": "..."} and exit code 1.
 *
 * The issuer is set to the key's did:key (issuer.id when the issuer is an object) and the proof's
 * verificationMethod is did:key:<publicKeyMultibase>#<publicKeyMultibase>. The document loader answers only from
 * the given contexts and did:key; it never touches the network.
 */
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as vc from '@digitalbazaar/vc';
import {didKey, isObject, readStdin} from './common.mjs';



function makeDocumentLoader(contexts) {
  return async function documentLoader(url) {
    if(Object.hasOwn(contexts, url)) {
      return {contextUrl: null, documentUrl: url, document: contexts[url]};
    }
    if(url.startsWith('did:key:')) {
      return {contextUrl: null, documentUrl: url, document: await didKey.get({url})};
    }
    throw new Error(`Document "${url}" was not given to the interop signer (it never fetches).`);
  };
}

// The Multikey pair (publicKeyMultibase, secretKeyMultibase) given, or derived from a seed.
async function multikeyOf(input) {
  if(typeof input.seed === 'string') {
    if(!/^[0-9a-fA-F]{64}$/.test(input.seed)) {
      throw new Error('"seed" must be 64 hex digits (32 bytes).');
    }
    const {publicKeyMultibase, secretKeyMultibase} = await Ed25519Multikey.generate(
      {seed: Buffer.from(input.seed, 'hex')});
    return {publicKeyMultibase, secretKeyMultibase};
  }
  // W3C vectors call it privateKeyMultibase; Multikey calls it secretKeyMultibase.
  const {publicKeyMultibase} = input;
  const secretKeyMultibase = input.secretKeyMultibase ?? input.privateKeyMultibase;
  if(typeof publicKeyMultibase !== 'string' || typeof secretKeyMultibase !== 'string') {
    throw new Error('Give "seed", or "publicKeyMultibase" with "privateKeyMultibase" (or "secretKeyMultibase").');
  }
  return {publicKeyMultibase, secretKeyMultibase};
}

export async function issue({credential, contexts = {}, created, ...key}) {
  if(!isObject(credential)) {
    throw new Error('"credential" must be a JSON object.');
  }
  if(!isObject(contexts)) {
    throw new Error('"contexts" must be a JSON object.');
  }
  const {publicKeyMultibase, secretKeyMultibase} = await multikeyOf(key);
  const did = `did:key:${publicKeyMultibase}`;
  const keyPair = await Ed25519Multikey.from({
    id: `${did}#${publicKeyMultibase}`, controller: did, publicKeyMultibase, secretKeyMultibase
  });
  const unsigned = structuredClone(credential);
  if(isObject(unsigned.issuer)) {
    unsigned.issuer.id = did;
  } else {
    unsigned.issuer = did;
  }
  const suite = new DataIntegrityProof({signer: keyPair.signer(), cryptosuite: eddsaRdfc2022, date: created});
  return vc.issue({credential: unsigned, suite, documentLoader: makeDocumentLoader(contexts)});
}

async function main() {
  try {
    const input = JSON.parse(await readStdin());
    const signed = await issue(isObject(input) ? input : {});
    process.stdout.write(JSON.stringify(signed) + '\n');
  } catch(error) {
    process.stdout.write(JSON.stringify({error: error?.message || String(error)}) + '\n');
    process.exitCode = 1;
  }
}

await main();
