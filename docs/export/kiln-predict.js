// kiln-predict.js runs a Kiln predictor exported with
// `kiln export MODEL --target wasm` in a browser (or any JavaScript engine
// with WebAssembly): a minimal WASI preview 1 host that gives the module its
// command line, stdin and stdout, and nothing else (no files, no network).
//
//   import { runPredictor } from "./kiln-predict.js";
//   const wasm = await (await fetch("churn.wasm")).arrayBuffer();
//   const { code, stdout, stderr } = await runPredictor(wasm, {
//     args: ["--format", "jsonl", "--passthrough", "id"],
//     stdin: '{"id": 1, "plan": "pro", "tenure": 12}\n',
//   });
//
// The module runs to completion on the calling thread: for large inputs,
// call runPredictor from a Web Worker. Compile once and reuse the
// WebAssembly.Module (runPredictor accepts one) to score several batches.
// docs/export.md describes the command line.

const ENOSYS = 52;
const EBADF = 8;

class Exit {
  constructor(code) {
    this.code = code;
  }
}

function concat(chunks) {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(n);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/**
 * Runs an exported predictor.
 * @param {BufferSource|WebAssembly.Module} module the .wasm file kiln export wrote
 * @param {{args?: string[], stdin?: string|Uint8Array}} options the command line
 *   (without the program name) and the rows on standard input
 * @returns {Promise<{code: number, stdout: string, stderr: string}>}
 */
export async function runPredictor(module, { args = [], stdin = "" } = {}) {
  const enc = new TextEncoder();
  const input = typeof stdin === "string" ? enc.encode(stdin) : stdin;
  const argv = ["predict.wasm", ...args].map((a) => enc.encode(a + "\0"));
  const out = [];
  const err = [];
  let inPos = 0;
  let memory;
  const view = () => new DataView(memory.buffer);
  const bytes = () => new Uint8Array(memory.buffer);
  const wasi = {
    args_sizes_get(argc, size) {
      view().setUint32(argc, argv.length, true);
      view().setUint32(size, argv.reduce((n, a) => n + a.length, 0), true);
      return 0;
    },
    args_get(ptrs, buf) {
      let p = buf;
      argv.forEach((a, i) => {
        view().setUint32(ptrs + 4 * i, p, true);
        bytes().set(a, p);
        p += a.length;
      });
      return 0;
    },
    environ_sizes_get(count, size) {
      view().setUint32(count, 0, true);
      view().setUint32(size, 0, true);
      return 0;
    },
    environ_get() {
      return 0;
    },
    clock_time_get(id, precision, ptr) {
      const ns = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
      view().setBigUint64(ptr, ns, true);
      return 0;
    },
    random_get(buf, len) {
      for (let p = 0; p < len; p += 65536) {
        crypto.getRandomValues(bytes().subarray(buf + p, buf + Math.min(len, p + 65536)));
      }
      return 0;
    },
    fd_write(fd, iovs, n, written) {
      if (fd !== 1 && fd !== 2) return EBADF;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const ptr = view().getUint32(iovs + 8 * i, true);
        const len = view().getUint32(iovs + 8 * i + 4, true);
        (fd === 1 ? out : err).push(bytes().slice(ptr, ptr + len));
        total += len;
      }
      view().setUint32(written, total, true);
      return 0;
    },
    fd_read(fd, iovs, n, read) {
      if (fd !== 0) return EBADF;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const ptr = view().getUint32(iovs + 8 * i, true);
        const len = view().getUint32(iovs + 8 * i + 4, true);
        const k = Math.min(len, input.length - inPos);
        bytes().set(input.subarray(inPos, inPos + k), ptr);
        inPos += k;
        total += k;
        if (k < len) break;
      }
      view().setUint32(read, total, true);
      return 0;
    },
    fd_fdstat_get(fd, ptr) {
      if (fd > 2) return EBADF;
      const v = view();
      v.setUint8(ptr, 2); // a character device
      v.setUint16(ptr + 2, 0, true);
      v.setBigUint64(ptr + 8, 0xffffffffffffffffn, true);
      v.setBigUint64(ptr + 16, 0xffffffffffffffffn, true);
      return 0;
    },
    fd_fdstat_set_flags() {
      return 0;
    },
    fd_prestat_get() {
      return EBADF; // no preopened directories
    },
    fd_close() {
      return 0;
    },
    sched_yield() {
      return 0;
    },
    poll_oneoff(subs, events, n, nevents) {
      // Nothing ever blocks here: every subscription is ready at once.
      const v = view();
      for (let i = 0; i < n; i++) {
        const s = subs + 48 * i;
        const e = events + 32 * i;
        v.setBigUint64(e, v.getBigUint64(s, true), true);
        v.setUint16(e + 8, 0, true);
        v.setUint8(e + 10, v.getUint8(s + 8));
      }
      v.setUint32(nevents, n, true);
      return 0;
    },
    proc_exit(code) {
      throw new Exit(code);
    },
  };
  const imports = {
    wasi_snapshot_preview1: new Proxy(wasi, { get: (t, k) => t[k] ?? (() => ENOSYS) }),
  };
  const res = await WebAssembly.instantiate(module, imports);
  const instance = res.instance ?? res;
  memory = instance.exports.memory;
  let code = 0;
  try {
    instance.exports._start();
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
    code = e.code;
  }
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(concat(out)), stderr: dec.decode(concat(err)) };
}
