#!/usr/bin/env node
/*
 * Independent Data Integrity verifier for EduFed's interop tests.
 *
 * Why: our Python signer/verifier could agree with itself and still be wrong. This script checks the same
 * documents with Digital Bazaar's JavaScript stack (jsonld-signatures, @digitalbazaar/data-integrity,
 * @digitalbazaar/eddsa-rdfc-2022-cryptosuite, @digitalbazaar/vc), which is what most other implementations and
 * the W3C test suites use.
 *
 * Input (stdin, one JSON object):
 *   {"document": {...}, "controllers": {"<id>": {...}}, "contexts": {"<IRI>": {...}}, "kind": "record"|"credential"}
 *   or, for a VerifiablePresentation, "kind": "presentation" with "challenge" (required) and "domain".
 * Output (stdout, one JSON line): {"verified": bool, "error": "..."}
 *
 * The document loader serves only what it is given (plus did:key, which is derived from the key itself, and the
 * security contexts that jsonld-signatures ships); anything else throws. It never touches the network.
 */
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as vc from '@digitalbazaar/vc';
import {didKey, isObject, readStdin} from './common.mjs';
import jsigs from 'jsonld-signatures';
import {gunzipSync} from 'node:zlib';

const {purposes: {AssertionProofPurpose}} = jsigs;

// Where a controller document may list (or embed) a verification method.
const VM_RELATIONS = [
  'verificationMethod', 'assertionMethod', 'authentication', 'capabilityInvocation', 'capabilityDelegation',
  'keyAgreement'
];



function asArray(value) {
  if(value === undefined || value === null) {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

// Resolve a (possibly relative, e.g. "#key-1") id against its controller document's id.
function absoluteId(id, base) {
  if(typeof id !== 'string') {
    return undefined;
  }
  if(id.startsWith('#')) {
    return base + id;
  }
  if(/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(id) || !base) {
    return id;
  }
  try {
    return new URL(id, base).href;
  } catch {
    return id;
  }
}

// The embedded verification method `url` inside `doc`, or undefined.
function findVerificationMethod(doc, url) {
  const base = typeof doc.id === 'string' ? doc.id : '';
  for(const relation of VM_RELATIONS) {
    for(const entry of asArray(doc[relation])) {
      if(isObject(entry) && absoluteId(entry.id, base) === url) {
        const method = {...entry, id: url};
        if(method.controller === undefined && base) {
          method.controller = base;
        }
        return method;
      }
    }
  }
  return undefined;
}

function stripFragment(url) {
  const hash = url.indexOf('#');
  return hash === -1 ? url : url.slice(0, hash);
}

export function makeDocumentLoader({controllers, contexts}) {
  return async function documentLoader(url) {
    const remote = document => ({contextUrl: null, documentUrl: url, document});
    if(Object.hasOwn(contexts, url)) {
      return remote(contexts[url]);
    }
    if(Object.hasOwn(controllers, url)) {
      return remote(controllers[url]);
    }
    const owner = stripFragment(url);
    if(Object.hasOwn(controllers, owner)) {
      const method = findVerificationMethod(controllers[owner], url);
      if(method) {
        return remote(method);
      }
      throw new Error(`Verification method "${url}" is not in the controller document given for "${owner}".`);
    }
    // A verification method with an id of its own (no fragment): look in every given controller document.
    for(const doc of Object.values(controllers)) {
      const method = isObject(doc) ? findVerificationMethod(doc, url) : undefined;
      if(method) {
        return remote(method);
      }
    }
    if(url.startsWith('did:key:')) {
      return remote(await didKey.get({url}));
    }
    throw new Error(`Document "${url}" was not given to the interop verifier (it never fetches).`);
  };
}

// A flat, readable message from jsonld-signatures' nested errors.
function describeError(error, seen = new Set()) {
  if(error === undefined || error === null) {
    return '';
  }
  if(Array.isArray(error)) {
    return error.map(e => describeError(e, seen)).filter(Boolean).join('; ');
  }
  if(typeof error !== 'object') {
    return String(error);
  }
  if(seen.has(error)) {
    return '';
  }
  seen.add(error);
  const parts = [];
  if(Array.isArray(error.errors) && error.errors.length > 0) {
    parts.push(describeError(error.errors, seen));
  } else if(error.message) {
    parts.push(error.message);
  }
  const cause = error.cause ?? error.details?.cause;
  if(cause) {
    const inner = describeError(cause, seen);
    if(inner && !parts.includes(inner)) {
      parts.push(`(${inner})`);
    }
  }
  return parts.filter(Boolean).join(' ');
}

function resultError(result) {
  const messages = [];
  for(const entry of asArray(result.results)) {
    if(!entry.verified) {
      messages.push(describeError(entry.error));
    }
  }
  if(result.statusResult && !result.statusResult.verified) {
    messages.push(describeError(result.statusResult.error));
  }
  if(messages.filter(Boolean).length === 0 && result.error) {
    messages.push(describeError(result.error));
  }
  return messages.filter(Boolean).join('; ') || 'verification failed';
}

// Without status lists in the payload, a credential that has a credentialStatus is reported, not passed.
async function refuseStatus() {
  return {verified: false, error: new Error('credentialStatus is not supported by the interop verifier.')};
}

// Bitstring Status List v1.0, checked here independently of EduFed: the list credential (given in the
// payload, as a verifier would have fetched it) must verify and be issued by the credential's issuer; the
// entry's bit (most significant bit first, GZIP + multibase base64url) must be clear.
function makeStatusChecker({statusLists, suite, documentLoader}) {
  return async ({credential}) => {
    const issuer = isObject(credential.issuer) ? credential.issuer.id : credential.issuer;
    for(const entry of asArray(credential.credentialStatus)) {
      if(entry.type !== 'BitstringStatusListEntry') {
        return {verified: false, error: new Error(`Unsupported status type ${entry.type}.`)};
      }
      const list = statusLists[entry.statusListCredential];
      if(!isObject(list)) {
        return {verified: false, error: new Error(`Status list ${entry.statusListCredential} not provided.`)};
      }
      const listIssuer = isObject(list.issuer) ? list.issuer.id : list.issuer;
      const listResult = await vc.verifyCredential({credential: list, suite, documentLoader,
        checkStatus: refuseStatus});
      if(!listResult.verified || listIssuer !== issuer) {
        return {verified: false, error: new Error('The status list credential does not verify for this issuer.')};
      }
      const encoded = list.credentialSubject.encodedList;
      if(typeof encoded !== 'string' || !encoded.startsWith('u')) {
        return {verified: false, error: new Error('encodedList must be multibase base64url.')};
      }
      const bits = gunzipSync(Buffer.from(encoded.slice(1), 'base64url'));
      const index = Number.parseInt(entry.statusListIndex, 10);
      const set = (bits[index >> 3] >> (7 - (index & 7))) & 1;
      if(set) {
        return {verified: false, error: new Error(`Credential is flagged for ${entry.statusPurpose}.`)};
      }
    }
    return {verified: true};
  };
}

// Why a presentation failed: its own proof, the holder binding, or one of its credentials.
function presentationError(result) {
  const messages = [];
  if(result.presentationResult && !result.presentationResult.verified) {
    messages.push(`presentation: ${resultError(result.presentationResult)}`);
  }
  for(const [index, entry] of asArray(result.credentialResults).entries()) {
    if(!entry.verified) {
      messages.push(`credential ${index}: ${resultError(entry)}`);
    }
  }
  if(messages.length === 0 && result.error) {
    messages.push(describeError(result.error));
  }
  return messages.join('; ') || 'verification failed';
}

// vc.verify (a holder-signed VerifiablePresentation): the authentication proof with the expected challenge
// and domain, every embedded credential, and (when the presentation names a holder) that the proving key
// belongs to that holder.
async function verifyPresentation({document, challenge, domain, suite, documentLoader}) {
  if(typeof challenge !== 'string' || challenge === '') {
    return {verified: false, error: 'A presentation needs a "challenge" to verify against.'};
  }
  if(domain !== undefined && typeof domain !== 'string') {
    return {verified: false, error: '"domain" must be a string.'};
  }
  const result = await vc.verify({
    presentation: document, challenge, domain, suite, documentLoader, checkStatus: refuseStatus
  });
  if(!result.verified) {
    return {verified: false, error: presentationError(result)};
  }
  if(document.holder !== undefined) {
    const holder = isObject(document.holder) ? document.holder.id : document.holder;
    for(const proof of asArray(document.proof)) {
      const method = isObject(proof.verificationMethod) ? proof.verificationMethod.id : proof.verificationMethod;
      if(typeof method !== 'string' || stripFragment(method) !== holder) {
        return {verified: false, error: `The presentation is proven by ${method}, not by its holder ${holder}.`};
      }
    }
  }
  return {verified: true, error: ''};
}

export async function verify({
  document, controllers = {}, contexts = {}, kind = 'record', challenge, domain, statusLists
}) {
  if(!isObject(document)) {
    return {verified: false, error: '"document" must be a JSON object.'};
  }
  if(!isObject(controllers) || !isObject(contexts)) {
    return {verified: false, error: '"controllers" and "contexts" must be JSON objects.'};
  }
  const documentLoader = makeDocumentLoader({controllers, contexts});
  const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
  if(kind === 'presentation') {
    return verifyPresentation({document, challenge, domain, suite, documentLoader});
  }
  let result;
  if(kind === 'record') {
    result = await jsigs.verify(document, {suite, purpose: new AssertionProofPurpose(), documentLoader});
  } else if(kind === 'credential') {
    const checkStatus = isObject(statusLists) ?
      makeStatusChecker({statusLists, suite, documentLoader}) : refuseStatus;
    result = await vc.verifyCredential({credential: document, suite, documentLoader, checkStatus});
  } else {
    return {verified: false, error: `Unknown kind "${kind}": expected "record", "credential" or "presentation".`};
  }
  if(result.verified) {
    return {verified: true, error: ''};
  }
  return {verified: false, error: resultError(result)};
}

async function main() {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch(error) {
    process.stdout.write(JSON.stringify({verified: false, error: `Input is not JSON: ${error.message}`}) + '\n');
    process.exitCode = 2;
    return;
  }
  let output;
  try {
    output = await verify(isObject(input) ? input : {});
  } catch(error) {
    output = {verified: false, error: describeError(error) || String(error)};
  }
  process.stdout.write(JSON.stringify(output) + '\n');
}

await main();
