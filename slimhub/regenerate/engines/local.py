"""The local engine (the default): `jobs` worker processes on this machine.

Each worker (slimhub.regenerate.worker) imports TensorFlow once and builds
module after module, each in a forked child. The manifest is rewritten after
every module, so a crash or SIGKILL of the run loses at most the modules in
flight; a worker that dies is replaced.
"""

import os
import shutil
import time

from slimhub.regenerate import plan as plan_lib
from slimhub.regenerate import worker as worker_lib

_POLL_SECONDS = 0.1


def _eta(durations, remaining, jobs):
  if not durations:
    return "ETA unknown"
  seconds = int(sum(durations) / len(durations) * remaining / jobs)
  return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run(jobs, options, manifest, work_dir, log=print, pipeline_args=()):
  """Builds `jobs` on up to options.jobs workers; their Outcomes."""
  if pipeline_args:
    raise plan_lib.RegenerateError(
        "Pipeline options are for --engine=beam, not "
        f"{' '.join(pipeline_args)}")
  environment = worker_lib.environment_of_workers(options.jobs)
  start = lambda index: worker_lib.WorkerProcess(
      os.path.join(work_dir, f"worker-{index}"), environment)
  workers = [start(index) for index in range(min(options.jobs, len(jobs)))]
  pending, outcomes, durations = list(jobs), [], []
  running = {}
  width = len(str(len(jobs)))
  try:
    while pending or running:
      for index, worker in enumerate(workers):
        if pending and worker.idle:
          if not worker.alive:
            worker = workers[index] = start(index)
          job = pending.pop(0)
          running[index] = job
          worker.submit(job.task)
          log(f"{'':>{2 * width + 3}} start  {job.key} ({job.reason})")
      time.sleep(_POLL_SECONDS)
      for index, job in list(running.items()):
        worker = workers[index]
        seconds = time.time() - worker.started
        result = worker.poll()
        if result is None:
          continue
        # The module's own time, without the start of a new worker.
        seconds = result.get("seconds", seconds)
        del running[index]
        if result["status"] == plan_lib.BUILT:
          manifest.modules[job.key] = result["record"]
          manifest.save()
          durations.append(seconds)
          outcome = plan_lib.Outcome(job.key, plan_lib.BUILT, seconds=seconds)
        else:
          outcome = plan_lib.Outcome(job.key, plan_lib.FAILED,
                                     result["reason"], seconds=seconds)
        shutil.rmtree(job.task["work_dir"], ignore_errors=True)
        outcomes.append(outcome)
        remaining = len(pending) + len(running)
        log(f"[{len(outcomes):>{width}}/{len(jobs)}] {outcome.status:<6} "
            f"{outcome.key} in {seconds:.1f}s; {remaining} left, "
            f"{_eta(durations, remaining, len(workers))}")
        if outcome.status == plan_lib.FAILED:
          log("    " + outcome.reason.replace("\n", "\n    "))
  finally:
    for worker in workers:
      worker.stop()
  return outcomes
