"""The Apache Beam engine: the builds as a pipeline (pip install slimhub[beam]).

    tasks -> Reshuffle -> BuildModules -> records   (dead letter: failed)

BuildModules starts one slimhub worker process in setup(), which imports
TensorFlow once and builds each module in a forked child (worker.py), so a
crash or out-of-memory fails one module, not the Beam worker. A built
module's record is committed last, as a file in OUT/.regenerate-records/;
failed modules go to the dead-letter output with their reason. The driver
merges the records into the manifest once, after the pipeline ended (and a
later run merges those of a driver that was killed).

Without --runner the pipeline runs offline on this machine: the FnApiRunner
in multi_processing mode with --direct_num_workers (default --jobs)
processes. Beam's DirectRunner would first try the Prism runner, which
downloads a binary.
"""

import json
import os
import tempfile
import time

import apache_beam as beam
from apache_beam.options import pipeline_options

from slimhub.regenerate import manifest as manifest_lib
from slimhub.regenerate import plan as plan_lib
from slimhub.regenerate import worker as worker_lib

DEAD_LETTER = "dead-letter"


class BuildModules(beam.DoFn):
  """Builds the module of each task; records out, failures to DEAD_LETTER."""

  def __init__(self, records_dir):
    super().__init__()
    self.records_dir = records_dir
    self.worker = None
    self.scratch = None

  def setup(self):
    self.scratch = tempfile.mkdtemp(prefix="slimhub-beam-")
    self._start()

  def _start(self):
    self.worker = worker_lib.WorkerProcess(self.scratch)

  def process(self, task):
    if not self.worker.alive:
      self._start()
    self.worker.submit(task)
    started = time.time()
    result = self.worker.wait()
    if result["status"] == worker_lib.BUILT:
      manifest_lib.commit_record(self.records_dir, result["record"])
      yield result["record"]
    else:
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, {
          "key": task["key"], "reason": result["reason"],
          "seconds": round(time.time() - started, 1)})

  def teardown(self):
    if self.worker is not None:
      self.worker.stop()


def _options(pipeline_args, jobs):
  options = pipeline_options.PipelineOptions(list(pipeline_args))
  standard = options.view_as(pipeline_options.StandardOptions)
  if standard.runner is None:
    standard.runner = "FnApiRunner"
    direct = options.view_as(pipeline_options.DirectOptions)
    direct.direct_running_mode = "multi_processing"
    if not any(arg.startswith("--direct_num_workers")
               for arg in pipeline_args):
      direct.direct_num_workers = jobs
  return options


def run(jobs, options, manifest, work_dir, log=print, pipeline_args=()):
  """Builds `jobs` in a Beam pipeline; their Outcomes."""
  records_dir = manifest_lib.records_dir(options.output_dir)
  dead_letter = os.path.join(work_dir, DEAD_LETTER)
  beam_options = _options(pipeline_args, options.jobs)
  runner = beam_options.view_as(pipeline_options.StandardOptions).runner
  log(f"Beam pipeline on {runner} for {len(jobs)} modules")
  error = None
  try:
    with beam.Pipeline(options=beam_options) as pipeline:
      results = (pipeline
                 | "Tasks" >> beam.Create([job.task for job in jobs])
                 | "Reshuffle" >> beam.Reshuffle()
                 | "Build" >> beam.ParDo(BuildModules(records_dir))
                 .with_outputs(DEAD_LETTER, main="records"))
      _ = (results[DEAD_LETTER]
           | "Encode" >> beam.Map(json.dumps, sort_keys=True)
           | "DeadLetter" >> beam.io.WriteToText(dead_letter,
                                                 file_name_suffix=".jsonl"))
  except Exception as exception:  # pylint: disable=broad-except
    # The runner's failure fails the modules it did not finish, like a
    # worker's; the others were committed.
    error = f"the pipeline failed: {type(exception).__name__}: {exception}"
  merged = manifest.merge_records(records_dir)
  failed = {}
  for path in sorted(beam.io.filesystems.FileSystems.match(
      [dead_letter + "*"])[0].metadata_list, key=lambda m: m.path):
    with open(path.path) as f:
      failed.update((item["key"], item) for item in map(json.loads, f))
  outcomes = []
  for job in jobs:
    if job.key in merged:
      outcome = plan_lib.Outcome(job.key, plan_lib.BUILT,
                                 seconds=merged[job.key]["build_seconds"])
    elif job.key in failed:
      outcome = plan_lib.Outcome(job.key, plan_lib.FAILED,
                                 failed[job.key]["reason"],
                                 seconds=failed[job.key]["seconds"])
    else:
      outcome = plan_lib.Outcome(job.key, plan_lib.FAILED,
                                 error or "no result from the pipeline")
    outcomes.append(outcome)
    log(f"{outcome.status:<6} {outcome.key}")
    if outcome.status == plan_lib.FAILED:
      log("    " + outcome.reason.replace("\n", "\n    "))
  return outcomes
