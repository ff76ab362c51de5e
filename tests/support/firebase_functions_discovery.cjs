// What `firebase deploy --only functions` would deploy, as firebase-tools itself reads it, offline:
// firebase.json's codebases (validated by firebase-tools), each discovered by its runtime delegate
// (for Python: functions.yaml, firebase-tools' detectFromYaml) and resolved into the backend the deploy
// plans from (params, regions, secrets), and packaged as deploy would upload it.
// Prints {codebases: [{codebase, language, runtime, endpoints, upload: OUT_DIR/<codebase>.zip}]} as JSON.
//   node firebase_functions_discovery.cjs FIREBASE_TOOLS_LIB PROJECT_DIR PROJECT_ID OUT_DIR
// (the archives are copied to OUT_DIR: firebase-tools removes its temporary files on exit).
const fs = require("fs");
const path = require("path");
const [lib, projectDir, projectId, outDir] = process.argv.slice(2);
const { Config } = require(path.join(lib, "config"));
const { normalizeAndValidate } = require(path.join(lib, "functions", "projectConfig"));
const runtimes = require(path.join(lib, "deploy", "functions", "runtimes"));
const build = require(path.join(lib, "deploy", "functions", "build"));
const backend = require(path.join(lib, "deploy", "functions", "backend"));
const { prepareFunctionsUpload } = require(path.join(lib, "deploy", "functions", "prepareFunctionsUpload"));

function copied(file, name) {
  const target = path.join(outDir, name);
  fs.copyFileSync(file, target);
  return target;
}

(async () => {
  const config = Config.load({ cwd: projectDir, configPath: "firebase.json" });
  const out = [];
  for (const codebase of normalizeAndValidate(config.src.functions)) {
    const sourceDir = path.join(projectDir, codebase.source);
    const delegate = await runtimes.getRuntimeDelegate({ projectId, projectDir, sourceDir, runtime: codebase.runtime });
    const wanted = await delegate.discoverBuild({}, {});
    const { backend: resolved } = await build.resolveBackend({
      build: wanted,
      firebaseConfig: { projectId },
      userEnvOpt: { functionsSource: sourceDir, projectId },
      userEnvs: {},
      nonInteractive: true,
      isEmulator: false,
    });
    // The archive deploy would upload (firebase-tools' own packaging, codebase.ignore applied).
    const { pathToSource } = await prepareFunctionsUpload(projectDir, sourceDir, { ...codebase, ignore: [...(codebase.ignore || [])] }, []);
    out.push({
      codebase,
      language: delegate.language,
      runtime: delegate.runtime,
      endpoints: backend.allEndpoints(resolved),
      upload: copied(pathToSource, `${codebase.codebase}.zip`),
    });
  }
  process.stdout.write(JSON.stringify({ codebases: out }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
