"""The local engine (the default): `jobs` worker processes on this machine.

Each worker (slimhub.regenerate.worker) imports TensorFlow once and builds
module after module, each in a forked child. The manifest is rewritten after
every module, so a crash or SIGKILL of the run loses at most the modules in
flight; a worker that dies is replaced. SIGINT and SIGTERM stop the run
as engines/shared.py says.
"""

import os
import shutil
import time

from slimhub.regenerate import plan as plan_lib
from slimhub.regenerate import worker as worker_lib
from slimhub.regenerate.engines import shared

_POLL_SECONDS = 0.1


def run(jobs, options, manifest, work_dir, log=print, pipeline_args=(),
        stop=None):
  """Builds `jobs` on up to options.jobs workers; the Outcomes of those
  that ended. After a signal (`stop`, a shared.Stop) no job is started;
  those in flight end, or are stopped with `stop.now`."""
  if pipeline_args:
    raise plan_lib.RegenerateError(
        "Pipeline options are for --engine=beam, not "
        f"{' '.join(pipeline_args)}")
  stop = stop or shared.Stop(log)
  start = lambda index: worker_lib.WorkerProcess(
      os.path.join(work_dir, f"worker-{index}"), options.jobs, options.verbose)
  workers = [start(index) for index in range(min(options.jobs, len(jobs)))]
  progress = shared.Progress(len(jobs), len(workers), log)
  pending, outcomes, running = list(jobs), [], {}
  try:
    while (pending and not stop.requested) or running:
      for index, worker in enumerate(workers):
        if pending and worker.idle and not stop.requested:
          if not worker.alive:
            worker = workers[index] = start(index)
          job = pending.pop(0)
          running[index] = job
          worker.submit(job.task)
          progress.started(job)
      time.sleep(_POLL_SECONDS)
      if stop.requested:
        stop.announce(len(running))
        if stop.now:
          break
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
          outcome = plan_lib.Outcome(job.key, plan_lib.BUILT, seconds=seconds)
        else:
          outcome = plan_lib.Outcome(job.key, plan_lib.FAILED,
                                     result["reason"], seconds=seconds)
        shutil.rmtree(job.task["work_dir"], ignore_errors=True)
        outcomes.append(outcome)
        progress.finished(outcome, result.get("log", ()))
  finally:
    for worker in workers:
      worker.stop(now=stop.now)
  return outcomes
