"""The Apache Beam engine: the builds as a pipeline (pip install slimhub[beam]).

    (slot, task) -> GroupByKey -> BuildModules -> records   (dead letter: failed)

BuildModules starts one slimhub worker process for its first task, which
imports TensorFlow once and builds each module in a forked child
(worker.py), so a crash or out-of-memory fails one module, not the Beam
worker. A built module's record is committed last, as a file in
OUT/.regenerate-records/; a failed module goes to the dead-letter output
with its reason, whatever failed it (raised, it would fail the bundle,
which Beam retries and logs at length), and is committed as a file in the
work directory. The driver runs the pipeline in a thread and prints the
local engine's progress lines as those files arrive; it merges the records
into the manifest once, after the pipeline ended (and a later run merges
those of a driver that was killed).

On SIGINT or SIGTERM the driver writes a stop file into the work
directory, which the DoFns read before each task and while they wait for
one: they start no more modules, and with "now" stop the one in flight.

For a URL --output_dir (gs://, s3://, ... see files.py), BuildModules
copies the checkpoint to a worker-local directory, has the module built into
another, copies the files to the output and commits the record after them.

Without --runner the pipeline runs offline on this machine: the FnApiRunner
with --direct_num_workers (default --jobs) quiet SDK worker processes
(sdk_worker.py). Beam's DirectRunner would first try the Prism runner,
which downloads a binary. That runner splits the groups of a GroupByKey
among its workers once, by count; so the tasks are keyed into one slot per
worker, of about equal estimated build time (plan.Job.estimated_seconds).
On any other runner, every task is a slot of its own, and the runner
balances them.
"""

import collections
import hashlib
import heapq
import importlib
import itertools
import json
import logging
import os
import posixpath
import shlex
import shutil
import tempfile
import threading
import time

import apache_beam as beam
from apache_beam.options import pipeline_options

from slimhub.regenerate import files
from slimhub.regenerate import manifest as manifest_lib
from slimhub import catalog
from slimhub.regenerate import build as build_lib
from slimhub.regenerate import plan as plan_lib
from slimhub.regenerate import worker as worker_lib
from slimhub.regenerate.engines import shared

DEAD_LETTER = "dead-letter"
STOP_FILE = "stop"  # in the work directory: "finish" or "now"
# How often the driver looks for results, and a DoFn for the stop file.
_POLL_SECONDS = 1.0
# Checkpoints a worker keeps copied from a remote --checkpoint_dir.
_CACHED_CHECKPOINTS = 3


class BuildModules(beam.DoFn):
  """Builds the module of each task; records out, failures to DEAD_LETTER."""

  def __init__(self, records_dir, stop_path, workers_here=1, verbose=False):
    super().__init__()
    self.verbose = verbose  # the workers show TensorFlow's lines
    self.records_dir = records_dir
    self.stop_path = stop_path
    self.workers_here = workers_here  # sharing this machine's cores
    self.worker = None
    self.scratch = None
    self.checkpoints = None  # digest -> local copy, for URL checkpoints
    self.counter = None

  def setup(self):
    self.scratch = tempfile.mkdtemp(prefix="slimhub-beam-")
    self.checkpoints = collections.OrderedDict()
    self.counter = itertools.count()

  def _stop_request(self):
    """The driver's stop file ("finish" or "now"), or None."""
    if not files.isfile(self.stop_path):
      return None
    return files.read_text(self.stop_path)

  def process(self, slot):
    for task in slot[1]:
      if self._stop_request():
        return
      yield from self._process_task(task)

  def _process_task(self, task):
    started = time.time()
    remote = files.is_remote(task["output_dir"])
    local_task = self._localized(task) if remote else task
    try:
      if remote:
        self._copy_checkpoint(task, local_task)
      result = self._build(local_task)
      if result and result["status"] == worker_lib.BUILT and remote:
        self._publish(task, local_task, result["record"])
    except Exception as error:  # pylint: disable=broad-except
      result = {"status": worker_lib.FAILED,
                "reason": f"{type(error).__name__}: {error}"}
    finally:
      if remote:
        shutil.rmtree(local_task["work_dir"], ignore_errors=True)
        shutil.rmtree(local_task["output_dir"], ignore_errors=True)
    if result is None:  # stopped by the driver
      return
    if result["status"] == worker_lib.BUILT:
      manifest_lib.commit_record(self.records_dir, result["record"])
      yield result["record"]
    else:
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, {
          "key": task["key"], "reason": result["reason"],
          "log": result.get("log", []),
          "seconds": round(time.time() - started, 1)})

  def _build(self, task):
    """The worker's result for `task`; None if the stop file said "now"."""
    if self.worker is None or not self.worker.alive:
      self.worker = worker_lib.WorkerProcess(self.scratch, self.workers_here,
                                             self.verbose)
    self.worker.submit(task)
    looked = time.time()
    while True:
      result = self.worker.poll()
      if result is not None:
        return result
      if time.time() - looked > _POLL_SECONDS:
        looked = time.time()
        if self._stop_request() == "now":
          self.worker.stop(now=True)
          return None
      time.sleep(0.2)

  def _localized(self, task):
    """`task` reading a local copy of its checkpoint (_copy_checkpoint) and
    building into a worker-local output directory."""
    number = next(self.counter)
    directory = os.path.join(self.scratch, "checkpoints",
                             task["inputs"]["checkpoint_sha256"])
    return dict(task, checkpoint=os.path.join(
        directory, posixpath.basename(task["checkpoint"])),
                reference_cache=os.path.join(self.scratch, "slim-outputs"),
                work_dir=os.path.join(self.scratch, f"work-{number}"),
                output_dir=os.path.join(self.scratch, f"out-{number}"))

  def _copy_checkpoint(self, task, local_task):
    """Copies the task's checkpoint where local_task reads it, once per
    worker, checked against the hashes the driver planned with."""
    digest = task["inputs"]["checkpoint_sha256"]
    directory = os.path.dirname(local_task["checkpoint"])
    if digest not in self.checkpoints:
      partial = directory + ".partial"
      shutil.rmtree(partial, ignore_errors=True)
      os.makedirs(partial)
      source_dir = posixpath.dirname(task["checkpoint"])
      for name, sha256 in sorted(task["checkpoint_files"].items()):
        source, copy = files.join(source_dir, name), os.path.join(partial, name)
        files.copy_from_remote(source, copy)
        if manifest_lib.sha256_file(copy) != sha256:
          raise build_lib.BuildError(
              f"{source} changed since the run was planned (its sha256 "
              "differs); rerun to rebuild from it")
      os.rename(partial, directory)
      self.checkpoints[digest] = directory
      while len(self.checkpoints) > _CACHED_CHECKPOINTS:
        shutil.rmtree(self.checkpoints.popitem(last=False)[1])
    self.checkpoints.move_to_end(digest)

  @staticmethod
  def _publish(task, local_task, record):
    """Copies the built module, card, archive and TFLite model to the URL
    output, replacing an older build; the caller commits the record after."""
    output_dir, key = task["output_dir"], task["key"]
    module = files.join(output_dir, key)
    build_lib.check_replaceable(module, catalog.find(task["net"]).handle(
        task["kind"], task["version"]))
    final = build_lib.ModulePaths.of(output_dir, key)
    old = files.files_below(module) + [
        path for path in (final.card,) + tuple(p for _, p in final.extras())
        if files.isfile(path)]
    files.delete(old)
    for path in sorted(record["files"]):
      files.copy_to_remote(os.path.join(local_task["output_dir"], path),
                           files.join(output_dir, path))

  def teardown(self):
    if self.worker is not None:
      self.worker.stop()
    if self.scratch is not None:
      shutil.rmtree(self.scratch, ignore_errors=True)


def import_plugins(pipeline_args):
  """Imports the --beam_plugins modules in the driver as the SDK workers
  do, so that a filesystem a plugin registers serves planning and the
  manifest too."""
  setup = pipeline_options.PipelineOptions(list(pipeline_args)).view_as(
      pipeline_options.SetupOptions)
  for plugin in setup.beam_plugins or ():
    importlib.import_module(plugin)


def _given(pipeline_args, name):
  return any(arg.split("=", 1)[0] == f"--{name}" for arg in pipeline_args)


def _runner(options, quiet):
  """The FnApiRunner in multi-process mode: one quiet SDK worker process
  (sdk_worker.py) per --direct_num_workers, which, unlike those of Beam's
  own multi_processing mode, receive the pipeline options (log levels,
  --beam_plugins). They import this slimhub, whatever the current
  directory holds (worker.python_command)."""
  from apache_beam.portability.api import beam_provision_api_pb2  # pylint: disable=g-import-not-at-top
  from apache_beam.runners.portability import portable_runner  # pylint: disable=g-import-not-at-top
  from apache_beam.runners.portability.fn_api_runner import fn_runner  # pylint: disable=g-import-not-at-top
  from apache_beam.transforms import environments  # pylint: disable=g-import-not-at-top
  level = "ERROR" if quiet else "INFO"
  command = shlex.join(
      ["env", f"PYTHONPATH={worker_lib.python_path()}"]
      + worker_lib.python_command("slimhub.regenerate.engines.sdk_worker")
      + [level])
  encoded = portable_runner.JobServiceHandle.encode_pipeline_options(
      options.get_all_options())
  return fn_runner.FnApiRunner(
      default_environment=(
          environments.SubprocessSDKEnvironment.from_command_string(command)),
      provision_info=fn_runner.ExtendedProvisionInfo(
          beam_provision_api_pb2.ProvisionInfo(
              retrieval_token="unused-retrieval-token",
              pipeline_options=encoded)))


def _pipeline(pipeline_args, jobs, quiet):
  """(Pipeline, runner name, slots): offline on this machine without
  --runner, with a slot per worker (else None), and with Beam's own lines
  below ERROR (driver and SDK workers) hidden when `quiet`."""
  if quiet:
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
  options = pipeline_options.PipelineOptions(list(pipeline_args))
  if quiet and not _given(pipeline_args, "default_sdk_harness_log_level"):
    options.view_as(pipeline_options.WorkerOptions
                    ).default_sdk_harness_log_level = "ERROR"
  standard = options.view_as(pipeline_options.StandardOptions)
  if standard.runner is not None:
    return beam.Pipeline(options=options), standard.runner, None
  direct = options.view_as(pipeline_options.DirectOptions)
  if not _given(pipeline_args, "direct_num_workers"):
    direct.direct_num_workers = jobs
  # Not multi_processing: that mode would replace the runner's workers by
  # Beam's own, which get no pipeline options.
  direct.direct_running_mode = "in_memory"
  workers = direct.direct_num_workers or os.cpu_count()  # 0: every core
  return (beam.Pipeline(runner=_runner(options, quiet), options=options),
          "FnApiRunner", workers)


def slotted(jobs, slots=None):
  """[(slot, task)]: with `slots`, each job (longest first) goes to the slot
  with the least estimated build time so far; without, one slot a job."""
  if slots is None:
    return list(enumerate(job.task for job in jobs))
  loads = [(0.0, slot) for slot in range(slots)]
  keyed = []
  for job in sorted(jobs, key=lambda job: -job.estimated_seconds()):
    load, slot = heapq.heappop(loads)
    keyed.append((slot, job.task))
    heapq.heappush(loads, (load + job.estimated_seconds(), slot))
  return keyed


def _last_line(text):
  """The last line of an error's text: Beam's carry whole tracebacks, whose
  last line is the exception."""
  lines = [line for line in str(text).splitlines() if line.strip()]
  return lines[-1].strip() if lines else ""


def _commit_failure(failure, directory):
  """Commits a dead-letter item as a file, for the driver to report."""
  if not files.is_remote(directory):
    os.makedirs(directory, exist_ok=True)
  name = hashlib.sha256(failure["key"].encode("utf-8")).hexdigest()
  manifest_lib.save_text(files.join(directory, name + ".json"),
                         json.dumps(failure, sort_keys=True))


class _Arrivals:
  """The records and dead-letter items committed since the last look."""

  def __init__(self, records_dir, dead_letter_dir):
    self.directories = (records_dir, dead_letter_dir)
    self.seen = set()

  def __call__(self):
    for directory in self.directories:
      for path in files.glob(files.join(directory, "*.json")):
        if path not in self.seen:
          self.seen.add(path)
          yield json.loads(files.read_text(path))


def run(jobs, options, manifest, work_dir, log=print, pipeline_args=(),
        stop=None):
  """Builds `jobs` in a Beam pipeline; the Outcomes of those that ended
  (after a signal, `stop` (a shared.Stop), the others are not started)."""
  stop = stop or shared.Stop(log)
  records_dir = manifest_lib.records_dir(options.output_dir)
  dead_letter = files.join(work_dir, DEAD_LETTER)
  stop_path = files.join(work_dir, STOP_FILE)
  quiet = not options.verbose
  pipeline, runner, slots = _pipeline(pipeline_args, options.jobs, quiet)
  log(f"Beam pipeline on {runner} for {len(jobs)} modules")
  results = (pipeline
             | "Tasks" >> beam.Create(slotted(jobs, slots), reshuffle=False)
             | "Slots" >> beam.GroupByKey()
             | "Build" >> beam.ParDo(BuildModules(records_dir, stop_path,
                                                  slots or 1, options.verbose))
             .with_outputs(DEAD_LETTER, main="records"))
  _ = results[DEAD_LETTER] | "DeadLetter" >> beam.Map(_commit_failure,
                                                      dead_letter)
  errors = []

  def run_pipeline():
    try:
      pipeline.run().wait_until_finish()
    except Exception as exception:  # pylint: disable=broad-except
      errors.append(exception)

  by_key = {job.key: job for job in jobs}
  progress = shared.Progress(len(jobs), slots or options.jobs, log)
  arrivals, finished = _Arrivals(records_dir, dead_letter), {}
  thread = threading.Thread(target=run_pipeline, name="pipeline", daemon=True)
  thread.start()
  requested = None
  while True:
    thread.join(_POLL_SECONDS)
    ended = not thread.is_alive()
    if stop.requested:
      stop.announce()  # the driver does not see what is in flight
      request = "now" if stop.now else "finish"
      if request != requested:
        manifest_lib.save_text(stop_path, request)
        requested = request
    for item in arrivals():
      if "handle" in item:
        outcome = plan_lib.Outcome(item["handle"], plan_lib.BUILT,
                                   seconds=item["build_seconds"])
      else:
        outcome = plan_lib.Outcome(item["key"], plan_lib.FAILED,
                                   item["reason"], seconds=item["seconds"])
      finished[outcome.key] = outcome
      progress.finished(outcome, item.get("log", ()),
                        reason=by_key[outcome.key].reason)
    if ended:
      break
  manifest.merge_records(records_dir)
  outcomes = [finished[job.key] for job in jobs if job.key in finished]
  if errors and not stop.requested:
    # The runner's failure fails the modules it did not finish, like a
    # worker's; the others were committed.
    error = f"the pipeline failed: {_last_line(errors[0])}"
    log(error)
    outcomes += [plan_lib.Outcome(job.key, plan_lib.FAILED, error)
                 for job in jobs if job.key not in finished]
  elif not stop.requested:
    outcomes += [plan_lib.Outcome(job.key, plan_lib.FAILED,
                                  "no result from the pipeline")
                 for job in jobs if job.key not in finished]
  return outcomes
