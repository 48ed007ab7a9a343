"""slimhub benchmarks: what exporting and using the modules costs.

  python tools/bench.py [--nets=mobilenet_v2_100_224,inception_v3,pnasnet_large]
                        [--parts=inference,peer,export,size,regenerate,consumers]
                        [--repeats=5] [--regenerate_nets=...]
                        [--work_dir=bench_work] [--json_out=bench.json]

Every figure is measured on this machine in one run, side by side with its
baseline, as the median of --repeats runs (min and max shown):

1. inference: images/s of the exported modules -- TF1 module through
   hub.load's signature, TF2 __call__ eagerly and inside tf.function --
   against the raw Slim graph (TF1 session) with the same weights, in the
   same process, at batch 1 and 32. Target: ratio >= 0.95.
2. peer: the TF2 module (inside tf.function) against tf.keras.applications
   of the same architecture with random weights. Target: ratio >= 1.0.
3. export: wall time and peak RSS of `slimhub-export` v3 and v5 in a fresh
   process, against the floor of restoring and saving the same variables
   with tf.train.Checkpoint in a fresh process. Targets: time <= 3x the
   floor; peak RSS <= (TF import baseline) + 3x the checkpoint size.
4. size: bytes on disk of each module against its variables. Target <= 1.05x.
5. tflite (e.g. --nets=mobilenet_v1_100_224,mobilenet_v2_100_224,inception_v3
   --repeats=3): LiteRT images/s at batch 1 and 8, 2 threads, of the float
   and int8 (synthetic calibration) models of the v5 module and, where the
   net has a quantops module, its uint8 model, interleaved, with the file
   sizes. Target: int8 >= 2x float at batch 1 for the mobilenets (the
   target column); whether it can be met depends on the CPU having an int8
   dot product, which the machine line says (docs/tflite.md).
   tflite_ops: why int8 gains what it gains. Per op of the batch-1 float and
   int8 models, the CPU time of that op alone (a one-op model cut from the
   model, on LiteRT with its XNNPACK delegate, 1 thread), float and int8
   interleaved, median of --repeats rounds; and whether every op of each
   model is delegated to XNNPACK. CPU time (process_time), not wall time:
   on a loaded machine it stays near what the op costs.
6. regenerate: modules/hour of slimhub-regenerate per family on a stratified
   sample (--regenerate_nets, one small stem per family; feature_vector at
   versions 1/3/5) with --engine=local and --engine=beam at 2 workers, against
   an older slimhub's engine (--baseline_python: a venv of slimhub before
   the regenerate package, whose engine ran a fresh process per module),
   in --regenerate_rounds rounds of every engine in turn, and the projected
   time of the whole catalogue (per-module costs times the catalogue, plus
   the run's once-per-run part; see _projection). Targets: projection >= 2x
   shorter than the baseline; beam within 10% of local.
7. consumers: fine-tuning steps/s through the module consumers against
   their references, each side in a fresh process, in --consumer_rounds
   interleaved rounds (ratio per round, median of them): a Keras 3 fit step
   (train_on_batch) of slimhub.keras.KerasLayer against tf-keras with
   hub.KerasLayer on the same v5 module, and a training step of
   slimhub.hub_module on TF 2.21 against hub.Module of tensorflow-hub 0.15 on
   TF 2.15 (--hub015_python) on the same v3 module, both at
   --consumer_batch for each of --consumer_nets. Target: ratio >= 0.95.

Prints the machine (CPU, vector units, int8 dot product: what the tflite
figures hinge on) and a markdown table, and writes the JSON to --json_out,
the machine as its first record.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_NETS = ("mobilenet_v2_100_224", "inception_v3", "pnasnet_large")
PARTS = ("inference", "peer", "export", "size", "tflite", "tflite_ops",
         "regenerate", "consumers")
TFLITE_THREADS = 2
TFLITE_BATCHES = (1, 8)
REGENERATE_NETS = ("mobilenet_v1_025_128", "mobilenet_v2_035_96",
                   "mobilenet_v3_small_075_224", "inception_v1",
                   "resnet_v1_50")
REGENERATE_VERSIONS = "1,3,5"
REGENERATE_WORKERS = 2
# A built module's row in slimhub-regenerate's summary: key and seconds.
_SUMMARY_BUILT = re.compile(r"^built +(\S+) +([\d.]+)s$", re.MULTILINE)
# CPU flags (/proc/cpuinfo) of the vector units the figures depend on, and
# those that give int8 multiply-adds a dot product of their own (x86 VNNI,
# AMX; Arm's dot product and i8mm). Without one, an int8 multiply-add costs
# about what an f32 FMA does, and int8 models gain little over float
# (docs/tflite.md).
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "asimd")
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp",
                          "i8mm")
INT8_TARGET = 2.0  # int8 / float images/s at batch 1, for the mobilenets
# tf.keras.applications peers of the catalogue nets (None: no peer exists).
KERAS_PEERS = {
    "mobilenet_v2_100_224": "MobileNetV2", "inception_v3": "InceptionV3",
    "resnet_v2_50": "ResNet50V2", "nasnet_large": "NASNetLarge",
    "nasnet_mobile": "NASNetMobile", "inception_resnet_v2": "InceptionResNetV2",
    "mobilenet_v1_100_224": "MobileNet", "vgg_16": "VGG16",
}


def machine():
  """The machine the figures are measured on: CPU, cores, vector units and
  int8 dot products (the first processor of /proc/cpuinfo)."""
  try:
    with open("/proc/cpuinfo") as f:
      first = f.read().split("\n\n")[0]
  except OSError:
    first = ""
  fields = {}
  for line in first.splitlines():
    key, _, value = line.partition(":")
    fields.setdefault(key.strip(), value.strip())
  flags = set((fields.get("flags") or fields.get("Features") or "").split())
  return {"part": "machine",
          "cpu": fields.get("model name") or platform.processor()
                 or platform.machine(),
          "family": fields.get("cpu family", ""),
          "model": fields.get("model", ""),
          "cores": os.cpu_count(),
          "simd": [f for f in SIMD_FLAGS if f in flags],
          "int8_dot_product": [f for f in INT8_DOT_PRODUCT_FLAGS if f in flags]}


def machine_line(record):
  """One line naming the machine, for the top of the report."""
  family = (f" (family {record['family']}, model {record['model']})"
            if record["family"] else "")
  return (f"Machine: {record['cpu']}{family}, {record['cores']} cores; "
          f"SIMD: {' '.join(record['simd']) or 'none listed'}; "
          "int8 dot product: "
          + (" ".join(record["int8_dot_product"]) or "none"))


def _stats(values):
  return {"median": statistics.median(values), "min": min(values),
          "max": max(values), "runs": len(values)}


def _calibrated_iterations(run, min_seconds):
  """Warms `run` up; the number of calls that take about min_seconds."""
  for _ in range(3):
    run()
  start, calls = time.perf_counter(), 0
  while time.perf_counter() - start < min_seconds / 4:
    run()
    calls += 1
  per_call = (time.perf_counter() - start) / calls
  return max(1, int(min_seconds / per_call))


def _images_per_second(variants, batch, repeats, min_seconds=1.0):
  """{name: median/min/max images/s} of each `run()` in `variants`.

  The timed windows are interleaved (every variant once per round), so that
  drift of the machine's speed hits all variants alike.
  """
  iterations = {name: _calibrated_iterations(run, min_seconds)
                for name, run in variants.items()}
  rates = {name: [] for name in variants}
  for _ in range(repeats):
    for name, run in variants.items():
      start = time.perf_counter()
      for _ in range(iterations[name]):
        run()
      rates[name].append(
          iterations[name] * batch / (time.perf_counter() - start))
  return {name: _stats(values) for name, values in rates.items()}


class Workspace:
  """Deterministic checkpoints and exported modules, cached in work_dir."""

  def __init__(self, work_dir):
    self.work_dir = os.path.abspath(work_dir)

  def checkpoint(self, net):
    from slimhub.reference import untrained as make_checkpoint  # pylint: disable=g-import-not-at-top
    prefix = os.path.join(self.work_dir, "checkpoints", net, "model.ckpt")
    if not os.path.exists(prefix + ".index"):
      make_checkpoint.make_checkpoint(net, 1, prefix=prefix)
    return prefix

  def module(self, net, version, kind="classification"):
    from slimhub import export  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.work_dir, "modules", net, kind, str(version))
    if not os.path.exists(path):
      export.export_module(net, kind, version, self.checkpoint(net), path)
    return path


def bench_inference(workspace, net, repeats, peer):
  """Rows of images/s: raw Slim graph vs the modules (and the Keras peer)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  from slimhub import catalog  # pylint: disable=g-import-not-at-top
  from slimhub.reference import net_graph  # pylint: disable=g-import-not-at-top
  entry = catalog.find(net)
  size = entry.image_size
  raw = net_graph.build(entry.net, num_classes=1001, image_size=size)
  session = net_graph.restored_session(raw, workspace.checkpoint(net))
  tf1 = hub.load(workspace.module(net, 3)).signatures["default"]
  tf2 = tf.saved_model.load(workspace.module(net, 5))
  tf2_in_function = tf.function(lambda x: tf2(x))
  keras_model = None
  if peer and KERAS_PEERS.get(net):
    application = getattr(tf.keras.applications, KERAS_PEERS[net])
    keras_model = application(weights=None, input_shape=(size, size, 3))
    keras_in_function = tf.function(lambda x: keras_model(x, training=False))
  rows = []
  for batch in (1, 32):
    images = np.random.default_rng(0).uniform(
        0, 1, (batch, size, size, 3)).astype(np.float32)
    tensor = tf.constant(images)
    variants = {
        "raw Slim graph (session)": lambda: session.run(
            raw.output.logits, {raw.images: images}),
        "TF1 module, hub.load signature": lambda: tf1(images=tensor),
        "TF2 module, __call__ eager": lambda: tf2(tensor),
        "TF2 module, __call__ in tf.function": lambda: tf2_in_function(tensor),
    }
    if keras_model is not None:
      variants[f"tf.keras.applications.{KERAS_PEERS[net]} in tf.function"] = (
          lambda: keras_in_function(tensor))
    results = _images_per_second(variants, batch, repeats)
    base = results["raw Slim graph (session)"]["median"]
    tf2_speed = results["TF2 module, __call__ in tf.function"]["median"]
    for name, result in results.items():
      is_peer = name.startswith("tf.keras")
      rows.append({
          "part": "peer" if is_peer else "inference", "net": net,
          "batch": batch, "variant": name, "images_per_s": result,
          "ratio": (tf2_speed / result["median"] if is_peer
                    else result["median"] / base),
          "ratio_of": ("TF2 module / Keras" if is_peer
                       else "variant / raw Slim graph"),
          "target": ">= 1.0" if is_peer else ">= 0.95"})
  session.close()
  return rows


# Runs argv[2:] and writes "<wall seconds> <peak RSS bytes>" to argv[1]. The
# benchmark forks it instead of the measured command because Linux carries a
# process's RSS high-water mark across exec: a command forked straight from
# the (large) benchmark process would report the benchmark's own RSS.
_LAUNCHER_SCRIPT = textwrap.dedent("""
    import os, sys, time
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    _, status, usage = os.wait4(pid, 0)
    with open(sys.argv[1], "w") as f:
        f.write(f"{time.perf_counter() - start} {usage.ru_maxrss * 1024}")
    sys.exit(os.waitstatus_to_exitcode(status))
    """)


def _run_measured(command, env=None):
  """(wall seconds, peak RSS bytes) of a command run to completion."""
  with tempfile.NamedTemporaryFile("r", suffix=".measure") as result:
    process = subprocess.run(
        [sys.executable, "-c", _LAUNCHER_SCRIPT, result.name, *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        check=False)
    if process.returncode != 0:
      stderr = process.stderr.decode(errors="replace")
      raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    wall, peak_rss = result.read().split()
  return float(wall), int(peak_rss)


_FLOOR_SCRIPT = textwrap.dedent("""
    import sys, tensorflow as tf
    checkpoint, names, target = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    reader = tf.train.load_checkpoint(checkpoint)
    variables = [tf.Variable(reader.get_tensor(name)) for name in names]
    tf.train.Checkpoint(variables=variables).write(target)
    """)
_BASELINE_SCRIPT = "import tensorflow as tf; tf.constant(1.0) + 1.0"


def _tf1_module_variables(path):
  """{name: bytes} of the variables a TF1 module saves (= its checkpoint's)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(os.path.join(path, "variables",
                                                 "variables"))
  dtypes = reader.get_variable_to_dtype_map()
  return {name: int(np.prod(shape)) * dtypes[name].size
          for name, shape in reader.get_variable_to_shape_map().items()}


def bench_export(workspace, net, repeats):
  """Rows: export wall time / peak RSS vs the tf.train.Checkpoint floor."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  checkpoint = workspace.checkpoint(net)
  variables = _tf1_module_variables(workspace.module(net, 3))
  names = sorted(variables)
  checkpoint_bytes = sum(variables.values())
  scratch = os.path.join(workspace.work_dir, "scratch")
  floor_runs, baseline_runs = [], []
  for index in range(repeats):
    floor_runs.append(_run_measured(
        [sys.executable, "-c", _FLOOR_SCRIPT, checkpoint, ",".join(names),
         os.path.join(scratch, f"floor{index}", "ckpt")], env))
    baseline_runs.append(_run_measured(
        [sys.executable, "-c", _BASELINE_SCRIPT], env))
  floor_time = _stats([t for t, _ in floor_runs])
  baseline_rss = statistics.median(r for _, r in baseline_runs)
  rows = []
  for version in (3, 5):
    runs = [_run_measured(
        [sys.executable, "-m", "slimhub.exporters.export", f"--net={net}",
         "--kind=classification", f"--version={version}",
         f"--checkpoint={checkpoint}",
         f"--export_dir={os.path.join(scratch, f'v{version}')}",
         "--overwrite"], env) for _ in range(repeats)]
    wall = _stats([t for t, _ in runs])
    rss = _stats([r for _, r in runs])
    rss_budget = baseline_rss + 3 * checkpoint_bytes
    rows.append({
        "part": "export", "net": net, "version": version,
        "wall_s": wall, "floor_wall_s": floor_time,
        "time_ratio": wall["median"] / floor_time["median"],
        "peak_rss_bytes": rss, "tf_baseline_rss_bytes": baseline_rss,
        "checkpoint_bytes": checkpoint_bytes,
        "rss_budget_bytes": rss_budget,
        "rss_ratio_to_budget": rss["median"] / rss_budget,
        "target": "time <= 3x floor; RSS <= baseline + 3x checkpoint"})
  return rows


def _directory_bytes(path):
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def bench_size(workspace, net):
  rows = []
  variables = sum(_tf1_module_variables(workspace.module(net, 3)).values())
  for version in (3, 5):
    path = workspace.module(net, version)
    on_disk = _directory_bytes(path)
    rows.append({"part": "size", "net": net, "version": version,
                 "module_bytes": on_disk, "variables_bytes": variables,
                 "ratio": on_disk / variables, "target": "<= 1.05"})
  return rows


def family(net):
  """The family of a catalogue net, e.g. mobilenet_v2, inception, resnet."""
  return re.match(r"mobilenet_v\d|[a-z]+", net).group(0)


def _regenerate_run(python, checkpoint_dir, output_dir, nets, engine_flags):
  """(wall seconds, CPU seconds, {key: (net, seconds)}) of one
  slimhub-regenerate run: CPU of the processes it waited for; per module,
  the seconds its engine reports in the summary (from handing the module to
  a worker to its result; for the baseline, the module's whole process)."""
  shutil.rmtree(output_dir, ignore_errors=True)
  command = [python, "-m", "slimhub.exporters.regenerate",
             f"--checkpoint_dir={checkpoint_dir}",
             f"--output_dir={output_dir}", f"--versions={REGENERATE_VERSIONS}",
             "--handles=" + ",".join(f"{net}/feature_vector" for net in nets),
             *engine_flags]
  started, cpu = time.time(), _children_cpu()
  # From a neutral directory and without our PYTHONPATH: another venv's
  # python must import its own slimhub.
  environment = dict(os.environ)
  if python != sys.executable:
    environment.pop("PYTHONPATH", None)
  process = subprocess.run(command, capture_output=True, text=True,
                           cwd=tempfile.gettempdir(), env=environment,
                           check=False)
  wall, cpu = time.time() - started, _children_cpu() - cpu
  if process.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} failed:\n"
                       f"{(process.stdout + process.stderr)[-3000:]}")
  seconds = dict(_SUMMARY_BUILT.findall(process.stdout))
  with open(os.path.join(output_dir, "manifest.json")) as f:
    records = json.load(f)["modules"]
  return wall, cpu, {key: (record["net"], float(seconds[key]))
                     for key, record in records.items()}


def _children_cpu():
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def _projection(wall, modules, catalogue):
  """(per family: wall seconds a module costs at REGENERATE_WORKERS
  workers, the run's fixed seconds, the catalogue's projected seconds).

  A module costs its engine-reported seconds / workers. The rest of the
  run's wall time -- start-up, planning, the tail where fewer modules than
  workers are left -- is paid once per run, however many modules it builds.
  Families outside the sample cost the sample's mean.
  """
  per_family = {}
  for net, seconds in modules.values():
    per_family.setdefault(family(net), []).append(
        seconds / REGENERATE_WORKERS)
  per_module = {f: statistics.mean(s) for f, s in per_family.items()}
  busy = sum(s for values in per_family.values() for s in values)
  fixed = max(wall - busy, 0.0)
  default = statistics.mean(per_module.values())
  return per_module, fixed, fixed + sum(
      per_module.get(f, default) * count for f, count in catalogue.items())


def bench_regenerate(workspace, nets, baseline_python, rounds):
  """Each engine's per-family seconds per module and catalogue projection,
  over `rounds` rounds that run every engine in turn (this machine's speed
  drifts between minutes); ratios are taken within a round."""
  from slimhub import catalog  # pylint: disable=g-import-not-at-top
  from slimhub.reference import untrained as make_checkpoint  # pylint: disable=g-import-not-at-top
  checkpoint_dir = os.path.join(workspace.work_dir, "regenerate_checkpoints")
  for net in nets:
    entry = catalog.find(net)
    if not os.path.exists(os.path.join(checkpoint_dir, entry.tarball_folder)):
      make_checkpoint.make_checkpoint(net, 1, checkpoint_dir=checkpoint_dir)
  workers = str(REGENERATE_WORKERS)
  engines = {"local": (sys.executable, [f"--jobs={workers}"]),
             "beam": (sys.executable, ["--engine=beam",
                                       f"--direct_num_workers={workers}"])}
  if baseline_python and os.path.exists(baseline_python):
    engines["baseline"] = (baseline_python, [f"--jobs={workers}"])
  catalogue = {}
  for entry, _, _ in catalog.modules((), ()):
    catalogue[family(entry.net)] = catalogue.get(family(entry.net), 0) + 1
  runs = {name: [] for name in engines}
  for _ in range(rounds):
    for name, (python, flags) in engines.items():
      output = os.path.join(workspace.work_dir, "regenerate_" + name)
      wall, cpu, modules = _regenerate_run(python, checkpoint_dir, output,
                                           nets, flags)
      per_module, fixed, projected = _projection(wall, modules, catalogue)
      runs[name].append({"wall": wall, "cpu": cpu, "modules": len(modules),
                         "per_module": per_module, "fixed": fixed,
                         "projected_hours": projected / 3600})
  results = {}
  for name, engine_runs in runs.items():
    hours = [run["projected_hours"] for run in engine_runs]
    median = sorted(engine_runs, key=lambda run: run["projected_hours"])[
        (len(engine_runs) - 1) // 2]
    results[name] = dict(median, projected_range=[min(hours), max(hours)])
  ratios = {}
  def ratio(slower, faster):
    return statistics.median(
        a["projected_hours"] / b["projected_hours"]
        for a, b in zip(runs[slower], runs[faster]))
  if "baseline" in runs:
    ratios["baseline / local"] = ratio("baseline", "local")
    ratios["baseline / beam"] = ratio("baseline", "beam")
  ratios["beam / local"] = ratio("beam", "local")
  return {"catalogue": catalogue, "rounds": rounds, "engines": results,
          "ratios": ratios, "runs": runs}


def regenerate_markdown(result):
  engines = result["engines"]
  names = list(engines)
  out = ["| family | catalogue modules | " + " | ".join(
      f"{n} modules/h" for n in names) + " |",
         "|---|---:|" + "---:|" * len(names)]
  families = sorted({f for r in engines.values() for f in r["per_module"]})
  for f in families:
    out.append(f"| {f} | {result['catalogue'].get(f, 0)} | " + " | ".join(
        f"{3600 / engines[n]['per_module'][f]:.0f}"
        if f in engines[n]["per_module"] else "-" for n in names) + " |")
  out.append("| sample wall time (s) | | " + " | ".join(
      f"{engines[n]['wall']:.0f} ({engines[n]['modules']} modules)"
      for n in names) + " |")
  out.append("| of which once per run (s) | | " + " | ".join(
      f"{engines[n]['fixed']:.0f}" for n in names) + " |")
  out.append("| sample CPU time (s) | | " + " | ".join(
      f"{engines[n]['cpu']:.0f}" for n in names) + " |")
  out.append("| **projected catalogue (h)**, median [min–max] | "
             f"{sum(result['catalogue'].values())} | " + " | ".join(
                 f"{engines[n]['projected_hours']:.2f} "
                 f"[{engines[n]['projected_range'][0]:.2f}–"
                 f"{engines[n]['projected_range'][1]:.2f}]" for n in names)
             + " |")
  out.append("")
  out.append(f"Ratios of projections, median of {result['rounds']} rounds: "
             + "; ".join(f"{name} {value:.2f}"
                         for name, value in result["ratios"].items())
             + " (targets: baseline / engine >= 2.0, beam / local <= 1.10).")
  return "\n".join(out)


def _tflite_runner(path, batch, size):
  """A run() of one LiteRT invocation of the model at `path` on a batch of
  images in [0, 1] (quantized as its input wants)."""
  from slimhub.tflite import runtime as tflite_runtime  # pylint: disable=g-import-not-at-top
  interpreter = tflite_runtime.interpreter(path, num_threads=TFLITE_THREADS)
  details = interpreter.get_input_details()[0]
  shape = [batch, size, size, 3]
  if list(details["shape"]) != shape:
    interpreter.resize_tensor_input(details["index"], shape)
  interpreter.allocate_tensors()
  images = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
  data = tflite_runtime.quantize_input(details, images)

  def run():
    interpreter.set_tensor(details["index"], data)
    interpreter.invoke()
  return run


def _tflite_models(workspace, net):
  """{(type, batch): model path} of the net's float, int8 (both dynamic
  batch, from the v5 module) and uint8 (fixed batches, from the quantops v3
  module, mobilenet_v1 only) TFLite models."""
  from slimhub import catalog  # pylint: disable=g-import-not-at-top
  from slimhub import tflite  # pylint: disable=g-import-not-at-top
  directory = os.path.join(workspace.work_dir, "tflite", net)
  jobs = {}
  for model_type in ("float", "int8"):
    for batch in TFLITE_BATCHES:
      jobs[model_type, batch] = (workspace.module(net, 5), model_type,
                                 tflite.DYNAMIC)
  try:
    catalog.find(f"{net}/quantops")
    for batch in TFLITE_BATCHES:
      jobs["uint8", batch] = (workspace.module(f"{net}/quantops", 3), "uint8",
                              batch)
  except KeyError:
    pass
  paths = {}
  for (model_type, batch), (module, kind, model_batch) in jobs.items():
    name = f"{kind}-{model_batch}.tflite"
    path = paths[model_type, batch] = os.path.join(directory, name)
    if not os.path.exists(path):
      calibration = (tflite.Calibration(synthetic=True, count=16)
                     if kind == "int8" else None)
      tflite.convert(module, path, model_type=kind, batch=model_batch,
                     calibration=calibration)
  return paths


def bench_tflite(workspace, net, repeats):
  """Rows of LiteRT images/s at batch 1 and 8 of the float, uint8 and int8
  models, interleaved, with file sizes and speed-ups over float."""
  from slimhub import catalog  # pylint: disable=g-import-not-at-top
  size = catalog.find(net).image_size
  paths = _tflite_models(workspace, net)
  rows = []
  for batch in TFLITE_BATCHES:
    variants = {model_type: _tflite_runner(path, batch, size)
                for (model_type, model_batch), path in sorted(paths.items())
                if model_batch == batch}
    results = _images_per_second(variants, batch, repeats)
    base = results["float"]["median"]
    base_bytes = os.path.getsize(paths["float", batch])
    for model_type, result in results.items():
      model_bytes = os.path.getsize(paths[model_type, batch])
      speedup = result["median"] / base
      target = ""
      if model_type == "int8" and batch == 1 and net.startswith("mobilenet"):
        target = (f">= {INT8_TARGET:.1f}x: "
                  + ("met" if speedup >= INT8_TARGET else "missed"))
      rows.append({"part": "tflite", "net": net, "batch": batch,
                   "variant": model_type, "images_per_s": result,
                   "bytes": model_bytes,
                   "size_of_float": model_bytes / base_bytes,
                   "speedup_over_float": speedup, "target": target})
  return rows


def _cpu_seconds_per_call(variants, repeats, min_seconds=0.05):
  """{name: median/min/max CPU seconds per `run()`}, interleaved rounds."""
  iterations = {name: _calibrated_iterations(run, min_seconds)
                for name, run in variants.items()}
  seconds = {name: [] for name in variants}
  for _ in range(repeats):
    for name, run in variants.items():
      start = time.process_time()
      for _ in range(iterations[name]):
        run()
      seconds[name].append((time.process_time() - start) / iterations[name])
  return {name: _stats(values) for name, values in seconds.items()}


def _op_runner(model):
  """(run(), input shape, output shape) of a one-op model on LiteRT, 1
  thread, its inputs random."""
  from slimhub.tflite import runtime as tflite_runtime  # pylint: disable=g-import-not-at-top
  interpreter = tflite_runtime.interpreter(model, num_threads=1)
  interpreter.allocate_tensors()
  generator = np.random.default_rng(0)
  inputs = interpreter.get_input_details()
  for details in inputs:
    if details["dtype"] == np.float32:
      value = generator.uniform(0, 1, details["shape"])
    else:
      value = generator.integers(-128, 128, details["shape"])
    interpreter.set_tensor(details["index"], value.astype(details["dtype"]))
  output = interpreter.get_output_details()[0]
  return (interpreter.invoke,
          [int(d) for d in inputs[0]["shape"]] if inputs else [],
          [int(d) for d in output["shape"]])


def bench_tflite_ops(workspace, net, repeats):
  """Rows of the per-op CPU time of the batch-1 float and int8 models (see
  the module docstring), one per op, and one of each whole model."""
  from slimhub.tflite import runtime as tflite_runtime  # pylint: disable=g-import-not-at-top
  paths = _tflite_models(workspace, net)
  models = {kind: paths[kind, 1] for kind in ("float", "int8")}
  ops = {kind: tflite_runtime.operators(path) for kind, path in models.items()}
  delegation = {kind: tflite_runtime.delegation(path, 1)
                for kind, path in models.items()}
  wholes = {kind: _op_runner(path)[0] for kind, path in models.items()}
  whole = _cpu_seconds_per_call(wholes, repeats, min_seconds=0.5)
  rows = [{"part": "tflite_ops", "net": net, "index": "all",
           "op": f"whole model ({len(ops['float'])} / {len(ops['int8'])} ops)",
           "input": "", "output": "",
           "delegation": delegation, "float_cpu_s": whole["float"],
           "int8_cpu_s": whole["int8"],
           "speedup": whole["float"]["median"] / whole["int8"]["median"]}]
  if [op[0] for op in ops["float"]] != [op[0] for op in ops["int8"]]:
    return rows  # not op for op (e.g. a float-io int8 model)
  for index, op in enumerate(ops["float"]):
    runners = {kind: _op_runner(tflite_runtime.single_op_model(path, index))
               for kind, path in models.items()}
    seconds = _cpu_seconds_per_call(
        {kind: runner[0] for kind, runner in runners.items()}, repeats)
    rows.append({"part": "tflite_ops", "net": net, "index": index,
                 "op": op[0], "input": runners["float"][1],
                 "output": runners["float"][2],
                 "float_cpu_s": seconds["float"],
                 "int8_cpu_s": seconds["int8"],
                 "speedup": (seconds["float"]["median"]
                             / seconds["int8"]["median"])})
  return rows


# One consumer's fine-tuning steps/s, run by bench_consumers in a fresh
# process: argv = consumer, module, batch, image size, steps. The hub 0.15
# side runs in its own venv, so the script imports slimhub only when it
# measures slimhub.
_CONSUMER_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    consumer, path = sys.argv[1], sys.argv[2]
    batch, size, steps = map(int, sys.argv[3:6])
    images = np.random.default_rng(0).uniform(
        0, 1, (batch, size, size, 3)).astype(np.float32)
    labels = np.arange(batch) % 5
    if consumer in ("slimhub.keras.KerasLayer", "tf-keras hub.KerasLayer"):
      if consumer == "slimhub.keras.KerasLayer":
        import keras
        from slimhub.keras import KerasLayer
      else:
        import tf_keras as keras
        from tensorflow_hub import KerasLayer
      model = keras.Sequential([keras.Input((size, size, 3)),
                                KerasLayer(path, trainable=True),
                                keras.layers.Dense(5)])
      model.compile(optimizer=keras.optimizers.SGD(0.001),
                    loss=keras.losses.SparseCategoricalCrossentropy(
                        from_logits=True))
      step = lambda: model.train_on_batch(images, labels)
    else:
      if consumer == "slimhub.hub_module":
        import slimhub.hub_module as hub
      else:
        import tensorflow_hub as hub
      tf.compat.v1.disable_eager_execution()
      module = hub.Module(path, trainable=True, tags={"train"})
      inputs = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3])
      features = module(inputs, signature="image_feature_vector")
      head = tf.compat.v1.get_variable("head", [features.shape[-1], 5])
      logits = tf.matmul(features, head)
      loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(
          labels, logits) + tf.add_n(
              tf.compat.v1.losses.get_regularization_losses())
      with tf.control_dependencies(tf.compat.v1.get_collection(
          tf.compat.v1.GraphKeys.UPDATE_OPS)):
        train_op = tf.compat.v1.train.GradientDescentOptimizer(
            0.001).minimize(loss)
      session = tf.compat.v1.Session()
      session.run(tf.compat.v1.global_variables_initializer())
      step = lambda: session.run(train_op, {inputs: images})
    for _ in range(3):
      step()
    start = time.perf_counter()
    for _ in range(steps):
      step()
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start)}))
    """)
CONSUMER_COMPARISONS = (
    # (module version, ours, reference, reference runs in the hub 0.15 venv)
    (5, "slimhub.keras.KerasLayer", "tf-keras hub.KerasLayer", False),
    (3, "slimhub.hub_module", "hub 0.15 hub.Module (TF 2.15)", True),
)


def _consumer_steps_per_s(python, consumer, module, batch, size, steps):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  if python != sys.executable:
    env["PYTHONPATH"] = ""  # The other venv must not see this checkout.
  else:
    env["PYTHONPATH"] = REPO
  result = subprocess.run(
      [python, "-c", _CONSUMER_SCRIPT, consumer, module, str(batch),
       str(size), str(steps)], capture_output=True, text=True, env=env,
      check=False)
  if result.returncode:
    raise RuntimeError(f"{consumer} failed: {result.stderr[-2000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])["steps_per_s"]


def bench_consumers(workspace, net, rounds, batch, steps, hub015_python):
  """Rows of fine-tuning steps/s: each consumer against its reference, one
  fresh process each, interleaved over `rounds`; ratios within a round."""
  from slimhub import catalog  # pylint: disable=g-import-not-at-top
  size = catalog.find(net).image_size
  rows = []
  for version, ours, reference, old_venv in CONSUMER_COMPARISONS:
    module = workspace.module(net, version, kind="feature_vector")
    sides = {ours: sys.executable,
             reference: hub015_python if old_venv else sys.executable}
    rates = {name: [] for name in sides}
    for _ in range(rounds):
      for name, python in sides.items():
        consumer = "hub015" if name == reference and old_venv else name
        rates[name].append(_consumer_steps_per_s(python, consumer, module,
                                                 batch, size, steps))
    rows.append({
        "part": "consumers", "net": net, "batch": batch,
        "version": version, "ours": ours, "reference": reference,
        "ours_steps_per_s": _stats(rates[ours]),
        "reference_steps_per_s": _stats(rates[reference]),
        "ratio": statistics.median(a / b for a, b in zip(rates[ours],
                                                          rates[reference])),
        "target": ">= 0.95"})
  return rows


def _fmt_stats(stats, unit=""):
  return (f"{stats['median']:.3g}{unit} "
          f"[{stats['min']:.3g}–{stats['max']:.3g}]")


def _table(rows, parts, header, row_text):
  """Markdown lines of the rows of `parts`: header, rule, rows, blank."""
  selected = [r for r in rows if r["part"] in parts]
  if not selected:
    return []
  rule = "|" + "---|" * (header.count("|") - 1)
  return [header, rule] + [row_text(r) for r in selected] + [""]


def markdown(rows):
  """The report as markdown tables, one per part."""
  out = _table(
      rows, ("inference", "peer"),
      "| net | batch | variant | images/s median [min–max] | ratio | target |",
      lambda r: (f"| {r['net']} | {r['batch']} | {r['variant']} | "
                 f"{_fmt_stats(r['images_per_s'])} | {r['ratio']:.2f} "
                 f"({r['ratio_of']}) | {r['target']} |"))
  out += _table(
      rows, ("export",),
      "| net | export | wall s [min–max] | floor s | time ratio | "
      "peak RSS MB | budget MB (TF + 3x ckpt) | RSS / budget |",
      lambda r: (f"| {r['net']} | v{r['version']} | "
                 f"{_fmt_stats(r['wall_s'])} | "
                 f"{r['floor_wall_s']['median']:.3g} | "
                 f"{r['time_ratio']:.2f} | "
                 f"{r['peak_rss_bytes']['median'] / 2**20:.0f} | "
                 f"{r['rss_budget_bytes'] / 2**20:.0f} | "
                 f"{r['rss_ratio_to_budget']:.2f} |"))
  out += _table(
      rows, ("size",),
      "| net | module | bytes on disk | variables bytes | ratio |",
      lambda r: (f"| {r['net']} | v{r['version']} | {r['module_bytes']:,} | "
                 f"{r['variables_bytes']:,} | {r['ratio']:.3f} |"))
  out += _table(
      rows, ("tflite",),
      "| net | batch | LiteRT model | images/s median [min–max] | "
      "speed-up over float | bytes | size of float | target |",
      lambda r: (f"| {r['net']} | {r['batch']} | {r['variant']} | "
                 f"{_fmt_stats(r['images_per_s'])} | "
                 f"{r['speedup_over_float']:.2f}x | {r['bytes']:,} | "
                 f"{r['size_of_float']:.2f} | {r['target']} |"))
  out += _table(
      rows, ("tflite_ops",),
      "| net | op | input → output | float µs (CPU, 1 thread) | int8 µs | "
      "int8 speed-up | undelegated ops (float / int8) |",
      lambda r: (f"| {r['net']} | {r['index']} {r['op']} | "
                 f"{r['input']} → {r['output']} | "
                 f"{r['float_cpu_s']['median'] * 1e6:.0f} | "
                 f"{r['int8_cpu_s']['median'] * 1e6:.0f} | "
                 f"{r['speedup']:.2f}x | "
                 + (" / ".join(str(len(r['delegation'][k]['undelegated']))
                               for k in ("float", "int8"))
                    if "delegation" in r else "") + " |"))
  out += _table(
      rows, ("consumers",),
      "| net | batch | module | consumer steps/s [min–max] | "
      "reference steps/s [min–max] | ratio (median of rounds) | target |",
      lambda r: (f"| {r['net']} | {r['batch']} | v{r['version']} | "
                 f"{r['ours']}: {_fmt_stats(r['ours_steps_per_s'])} | "
                 f"{r['reference']}: "
                 f"{_fmt_stats(r['reference_steps_per_s'])} | "
                 f"{r['ratio']:.2f} | {r['target']} |"))
  return "\n".join(out).rstrip("\n")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--nets", default=",".join(DEFAULT_NETS))
  parser.add_argument("--parts", default=",".join(PARTS))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--work_dir", default=os.path.join(REPO, "bench_work"))
  parser.add_argument("--json_out", default=None)
  parser.add_argument("--regenerate_nets", default=",".join(REGENERATE_NETS))
  parser.add_argument("--regenerate_rounds", type=int, default=3,
                      help="rounds of the regenerate part, each running "
                      "every engine once")
  parser.add_argument("--baseline_python", default=None,
                      help="python of a venv with an older slimhub to "
                      "compare the regeneration engines with (e.g. a venv "
                      "of slimhub before the regenerate package)")
  parser.add_argument("--consumer_nets", default="mobilenet_v2_100_224")
  parser.add_argument("--consumer_rounds", type=int, default=3)
  parser.add_argument("--consumer_batch", type=int, default=16)
  parser.add_argument("--consumer_steps", type=int, default=10,
                      help="timed steps per process, after 3 warm-up steps")
  parser.add_argument("--hub015_python", default=os.path.join(
      os.environ.get("SLIMHUB_HUB015_VENV", os.path.join(REPO,
                                                         ".venv-hub015")),
      "bin", "python"), help="python of the tensorflow-hub 0.15 / TF 2.15 "
                     "venv (tests/hub015_env.py builds it)")
  args = parser.parse_args()
  parts = args.parts.split(",")
  unknown = set(parts) - set(PARTS)
  if unknown:
    parser.error(f"--parts: unknown {sorted(unknown)}; choose from {PARTS}")
  sys.path.insert(0, REPO)
  from slimhub import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow_quietly()  # before TensorFlow's first import
  quiet.quiet_tensorflow()
  workspace = Workspace(args.work_dir)
  rows = [machine()]
  print(machine_line(rows[0]), flush=True)
  for net in args.nets.split(","):
    if "inference" in parts or "peer" in parts:
      rows += [r for r in bench_inference(workspace, net, args.repeats,
                                          "peer" in parts)
               if r["part"] in parts]
    if "export" in parts:
      rows += bench_export(workspace, net, args.repeats)
    if "size" in parts:
      rows += bench_size(workspace, net)
    if "tflite" in parts:
      rows += bench_tflite(workspace, net, args.repeats)
    if "tflite_ops" in parts:
      rows += bench_tflite_ops(workspace, net, args.repeats)
  if "consumers" in parts:
    for net in args.consumer_nets.split(","):
      rows += bench_consumers(workspace, net, args.consumer_rounds,
                              args.consumer_batch, args.consumer_steps,
                              args.hub015_python)
  if "regenerate" in parts:
    regenerate = bench_regenerate(workspace, args.regenerate_nets.split(","),
                                  args.baseline_python,
                                  args.regenerate_rounds)
    print(regenerate_markdown(regenerate))
    rows.append({"part": "regenerate", **regenerate})
  tables = [r for r in rows if r["part"] not in ("machine", "regenerate")]
  if tables:
    print(markdown(tables))
  if args.json_out:
    with open(args.json_out, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
