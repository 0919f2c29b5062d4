// Compile the .py files under each directory given on the command line to
// __pycache__/*.pyc with Pyodide's own Python (the npm package, run by Node), so the
// bytecode's magic number is the runtime's. Invoked by durably.bundle.bytecode:
//   node compile_bytecode.mjs <node_modules/pyodide> <dir>...
// The .pyc files are "unchecked-hash": valid whatever the source's mtime, which
// unpacking a wheel resets.
import { pathToFileURL } from "node:url";
import path from "node:path";

const [pyodideDir, ...dirs] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: pyodideDir + path.sep });
dirs.forEach((dir, i) => pyodide.mountNodeFS(`/compile/${i}`, path.resolve(dir)));
pyodide.runPython(`
import compileall, py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
failed = [i for i in range(${dirs.length})
          if not compileall.compile_dir(f"/compile/{i}", quiet=1, invalidation_mode=mode)]
if failed:
    raise SystemExit(f"compiling failed in {failed}")
print(sys.implementation.cache_tag)
`);
