"""Worker processes that build modules, one forked child per module.

    python -m slimhub.regenerate.worker WORK_DIR [--verbose]

A worker imports TensorFlow and slimhub once, then reads one task (JSON,
see plan.plan) per line on stdin. For each it forks a child that runs
build.build(task) and exits: the child starts with TensorFlow loaded but no
graph, function or variable created, so every module is built from the same
process state. That keeps TF2 modules byte-reproducible (TensorFlow numbers
its functions with a process-wide counter), returns each module's memory,
and isolates crashes: a child killed by a signal or out of memory fails its
module, and the worker goes on with the next task.

The outcome of a task lands in ``<task work_dir>/result.json``:
{"status": "built", "record": ...} or {"status": "failed", "reason": ...},
with "seconds" from the fork to the result (absent when the child died).
Parents poll for that file (WorkerProcess).

TensorFlow's start-up and log lines are hidden unless --verbose (the
binary's --verbosity, passed down): then they go to the worker's stderr,
which is the user's.

A worker whose parent dies, even by SIGKILL, kills its child and exits
(it watches its parent process id); a child exits as soon as its worker is
gone. A worker ends when its stdin closes, and on SIGTERM kills its child
first. It ignores SIGINT: a Ctrl-C reaches every process of the terminal,
and the parent decides what it stops.
"""

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time

RESULT_FILE = "result.json"
BUILT = "built"
FAILED = "failed"
_LOG_TAIL_LINES = 15
_PARENT_POLL_SECONDS = 0.5


def _write_result(work_dir, result):
  from slimhub.formats import atomic  # pylint: disable=g-import-not-at-top
  atomic.write_file(os.path.join(work_dir, RESULT_FILE), json.dumps(result))


def _kill_and_exit(children):
  for pid in list(children):
    try:
      os.kill(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
      pass  # already gone
  os._exit(3)  # pylint: disable=protected-access


def _exit_when_orphaned(parent, children=()):
  """Kills `children` and exits once the process `parent` is gone."""
  while os.getppid() == parent:
    time.sleep(_PARENT_POLL_SECONDS)
  _kill_and_exit(children)


def _child(task):
  """Builds `task` in the forked child; never returns."""
  started = time.time()
  threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),),
                   daemon=True).start()
  from slimhub import export  # pylint: disable=g-import-not-at-top
  from slimhub.regenerate import build  # pylint: disable=g-import-not-at-top
  code = 0
  try:
    result = {"status": BUILT, "record": build.build(task)}
  except (build.BuildError, export.ExportError) as error:
    result = {"status": FAILED, "reason": str(error)}
  except Exception as error:  # pylint: disable=broad-except
    # Any other failure is reported like the others; the log has the trace.
    import traceback  # pylint: disable=g-import-not-at-top
    traceback.print_exc()
    result = {"status": FAILED, "reason": f"{type(error).__name__}: {error}"}
  result["seconds"] = round(time.time() - started, 3)
  try:
    _write_result(task["work_dir"], result)
  except BaseException:  # pylint: disable=broad-except
    code = 1
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def _serve(verbose):
  """Builds each task read from stdin in a forked child, in turn."""
  from slimhub import quiet  # pylint: disable=g-import-not-at-top
  quiet.import_tensorflow_quietly(verbose)
  quiet.quiet_tensorflow(verbose)
  # Everything a build imports, imported once before the first fork.
  from slimhub import export  # pylint: disable=g-import-not-at-top,unused-import
  from slimhub import verify  # pylint: disable=g-import-not-at-top,unused-import
  from slimhub.regenerate import build  # pylint: disable=g-import-not-at-top,unused-import
  children = []
  signal.signal(signal.SIGTERM, lambda signum, frame: _kill_and_exit(children))
  threading.Thread(target=_exit_when_orphaned, args=(os.getppid(), children),
                   daemon=True).start()
  for line in sys.stdin:
    task = json.loads(line)
    os.makedirs(task["work_dir"], exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # What the worker imported is never garbage: frozen, the collector in
    # the child does not scan it again and again while the graphs grow.
    gc.freeze()
    pid = os.fork()
    if pid == 0:
      signal.signal(signal.SIGTERM, signal.SIG_DFL)
      _child(task)
    children[:] = [pid]
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    children.clear()
    if code != 0:  # The child wrote no result (it exits 0 once it has).
      how = f"signal {-code}" if code < 0 else f"exit status {code}"
      _write_result(task["work_dir"], {
          "status": FAILED, "reason": f"build process died ({how})"})


class WorkerProcess:
  """A worker process and the task it builds, seen from its parent; one of
  `workers` on this machine, showing TensorFlow's lines if `verbose`
  (environment_of_workers)."""

  def __init__(self, work_dir, workers=1, verbose=False):
    os.makedirs(work_dir, exist_ok=True)
    self.log_path = os.path.join(work_dir, "worker.log")
    self.task = None
    self.started = None
    self._log_offset = 0
    # Verbose, the worker's stderr (TensorFlow's lines) is the user's.
    with open(self.log_path, "w") as log_file:
      self.process = subprocess.Popen(
          python_command("slimhub.regenerate.worker") + [work_dir]
          + ["--verbose"] * verbose,
          stdin=subprocess.PIPE, stdout=log_file,
          stderr=None if verbose else subprocess.STDOUT,
          env=environment_of_workers(workers, verbose),
          text=True)

  @property
  def idle(self):
    return self.task is None

  def submit(self, task):
    self.task = task
    self.started = time.time()
    self._log_offset = os.path.getsize(self.log_path)
    self.process.stdin.write(json.dumps(task) + "\n")
    self.process.stdin.flush()

  def poll(self):
    """The result of the current task once there is one, else None. A
    failure's "log" holds the last lines the worker logged for it."""
    path = os.path.join(self.task["work_dir"], RESULT_FILE)
    if os.path.exists(path):
      with open(path) as f:
        result = json.load(f)
    elif self.process.poll() is not None:
      code = self.process.returncode
      how = f"signal {-code}" if code < 0 else f"exit status {code}"
      result = {"status": FAILED, "reason": f"worker died ({how})"}
    else:
      return None
    if result["status"] == FAILED:
      result["log"] = self._log_tail()
    self.task = None
    return result

  @property
  def alive(self):
    return self.process.poll() is None

  def _log_tail(self):
    with open(self.log_path, errors="replace") as f:
      f.seek(self._log_offset)
      lines = [line for line in f.read().splitlines() if line.strip()]
    return lines[-_LOG_TAIL_LINES:]

  def stop(self, now=False):
    """Ends the worker: closing its stdin ends it once its child is done;
    `now`, SIGTERM ends it and its child at once."""
    if now and self.alive:
      self.process.terminate()
    try:
      self.process.stdin.close()
    except OSError:
      pass
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()


def python_command(module):
  """The command running `module` with this Python, the current directory
  kept off sys.path (-P): a folder there named like a package, such as a
  clone's `slimhub/`, would shadow the installed one."""
  return [sys.executable, "-P", "-m", module]


def python_path():
  """PYTHONPATH for the workers, so that they import this very slimhub."""
  import slimhub  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(slimhub.__file__)))
  return os.pathsep.join(
      [root] + [p for p in [os.environ.get("PYTHONPATH")] if p])


def environment_of_workers(workers=1, verbose=False):
  """The environment of the workers: python_path(), TensorFlow's C++ log
  quiet unless `verbose`, and each of `workers` workers on this machine
  gets its share of the cores for TensorFlow's thread pools (unless
  TF_NUM_*_THREADS are set): pools sized to every core in every worker
  make them preempt one another."""
  from slimhub import quiet  # pylint: disable=g-import-not-at-top
  environment = quiet.worker_environment(
      dict(os.environ, PYTHONPATH=python_path()), verbose)
  if workers > 1:
    share = str(max(1, (os.cpu_count() or 1) // workers))
    environment.setdefault("TF_NUM_INTRAOP_THREADS", share)
    environment.setdefault("TF_NUM_INTEROP_THREADS", share)
  return environment


def main():
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
  _serve(verbose="--verbose" in sys.argv[2:])


if __name__ == "__main__":
  main()
