"""What running a module could do, worked out before anything runs.

A SavedModel is a program: verifying it runs its graphs, and a graph can
hold any op, WriteFile included. Everything here works on the directory
listing and the parsed protos only -- no graph is imported, nothing is
loaded -- so the verifier can refuse a module before it runs:

* ``leaving_paths``: files that are links out of the module directory (or
  FIFOs and devices, which block or never end when read);
* ``scan_ops``: every op that running the module could execute, each with
  the signature, collection or function that reaches it, against the
  allowlist of op_allowlist.py;
* ``declared_bytes``: the sizes of variables and constants the graphs
  declare, and of the files the loader would read.
"""

import collections
import dataclasses
import os
import stat

import tensorflow as tf
from tensorflow.core.framework import variable_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from slimhub.verify import op_allowlist
from slimhub.verify.checks import Failed
from slimhub.verify.checks import check
from slimhub.verify.checks import require_none

ASSETS_COLLECTION = "saved_model_assets"
VARIABLE_COLLECTIONS = ("variables", "trainable_variables",
                        "model_variables", "local_variables")
VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable")
DEFAULT_MAX_BYTES = 4 * 2**30


def _inside(path, root):
  return path == root or path.startswith(root + os.sep)


def _kind_of(mode):
  for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                     (stat.S_ISCHR, "character device"),
                     (stat.S_ISBLK, "block device")):
    if test(mode):
      return name
  return None


def leaving_paths(directory):
  """Problems of the files of `directory`: symlinks that resolve outside it,
  and special files. Reads no file, follows no link out."""
  root = os.path.realpath(directory)
  problems = []

  def unlisted(error):
    problems.append(f"{os.path.relpath(error.filename, root)} cannot be "
                    f"listed: {error.strerror}")

  for parent, dirs, files in os.walk(root, onerror=unlisted):
    for name in sorted(dirs + files):
      path = os.path.join(parent, name)
      shown = os.path.relpath(path, root)
      mode = os.lstat(path).st_mode
      if stat.S_ISLNK(mode):
        target = os.path.realpath(path)
        if not _inside(target, root):
          problems.append(f"{shown} is a symlink to {os.readlink(path)}, "
                          "outside the module")
          continue
        mode = os.stat(path).st_mode if os.path.exists(path) else mode
      kind = _kind_of(mode)
      if kind:
        problems.append(f"{shown} is a {kind}, not a regular file")
  return problems


def _asset_filenames(meta_graph):
  defs = list(meta_graph.asset_file_def)
  collection = meta_graph.collection_def.get(ASSETS_COLLECTION)
  for item in collection.any_list.value if collection is not None else ():
    asset = meta_graph_pb2.AssetFileDef()
    if item.Unpack(asset):
      defs.append(asset)
  return [asset.filename for asset in defs]


def asset_path_problems(saved_model):
  """Asset file names that are absolute or climb out with ".."."""
  problems = []
  for meta_graph in saved_model.meta_graphs:
    for filename in _asset_filenames(meta_graph):
      parts = filename.replace("\\", "/").split("/")
      if os.path.isabs(filename) or filename.startswith(("/", "\\")):
        problems.append(f"asset {filename!r} is an absolute path")
      elif ".." in parts:
        problems.append(f"asset {filename!r} leaves assets/ with '..'")
  return sorted(set(problems))


def _label(meta_graph):
  return "[" + ",".join(sorted(meta_graph.meta_info_def.tags)) + "]"


@dataclasses.dataclass(frozen=True)
class Finding:
  """An op outside the allowlist: its type, node (with the function holding
  it) and the root that reaches it."""
  op: str
  node: str
  reached_by: str

  def describe(self):
    return f"{self.op} (node {self.node}), reached by {self.reached_by}"


@dataclasses.dataclass(frozen=True)
class Scan:
  """op_types: {op type: nodes reached}; findings: ops outside the
  allowlist; extras: {op type: nodes} allowed only by --allow_ops."""
  op_types: dict
  findings: tuple
  extras: dict


def called_functions(node, library):
  """Names of the functions a node calls: by op type or through any func /
  list(func) attr (PartitionedCall's f, If/While/Case branches, ...)."""
  names = [node.op] if node.op in library else []
  for value in node.attr.values():
    kind = value.WhichOneof("value")
    if kind == "func":
      names.append(value.func.name)
    elif kind == "list":
      names.extend(func.name for func in value.list.func)
  return names


def _new_items(stack, table, visited):
  """Pops names off `stack` (which may grow meanwhile) and yields (name,
  table[name]) of those in table and not yet visited, marking them."""
  while stack:
    name = stack.pop()
    if name in table and name not in visited:
      visited.add(name)
      yield name, table[name]


class _Walker:
  """Walks the ops reachable from roots of one meta graph, each root with
  the set of op types it may reach."""

  def __init__(self, meta_graph):
    self.nodes = {node.name: node for node in meta_graph.graph_def.node}
    self.library = {function.signature.name: function
                    for function in meta_graph.graph_def.library.function}
    self.op_types = collections.Counter()
    self.findings = []
    self.extras = collections.Counter()

  def walk(self, names, reached_by, allowed, visited):
    """Visits the closure (data and control inputs, called functions) of
    graph nodes `names`; `visited` is shared by roots with equal allowed."""
    nodes, functions = visited
    stack = [name.lstrip("^").split(":")[0] for name in names]
    pending_functions = []
    for name, node in _new_items(stack, self.nodes, nodes):
      self._visit(node, name, reached_by, allowed)
      stack.extend(i.lstrip("^").split(":")[0] for i in node.input)
      pending_functions.extend(called_functions(node, self.library))
    self.walk_functions(pending_functions, reached_by, allowed, functions)

  def walk_functions(self, names, reached_by, allowed, visited):
    """Visits every node of functions `names` and of what they call: a
    function body runs its stateful ops whatever it returns."""
    stack = list(names)
    for name, function in _new_items(stack, self.library, visited):
      via = f"{reached_by} via function {name}"
      for node in function.node_def:
        self._visit(node, f"{node.name} in function {name}", via, allowed)
        stack.extend(called_functions(node, self.library))

  def _visit(self, node, shown, reached_by, allowed):
    if node.op in self.library:
      return  # A call; the function's own ops are visited.
    self.op_types[node.op] += 1
    if node.op not in allowed.base and node.op not in allowed.extra:
      self.findings.append(Finding(node.op, shown, reached_by))
    elif node.op not in allowed.base:
      self.extras[node.op] += 1


@dataclasses.dataclass(frozen=True)
class _Allowed:
  base: frozenset
  extra: frozenset


def _tensor_names(infos):
  return [info.name for info in infos.values() if info.name]


def _collection_roots(meta_graph):
  """(label, node names) of every collection a loader or a check may run."""
  roots = []
  for key, collection in sorted(meta_graph.collection_def.items()):
    if collection.WhichOneof("kind") == "node_list":
      roots.append((f"collection {key}", list(collection.node_list.value)))
    elif key in VARIABLE_COLLECTIONS:
      names = []
      for value in collection.bytes_list.value:
        variable = variable_pb2.VariableDef.FromString(value)
        names += [variable.variable_name, variable.initializer_name,
                  variable.snapshot_name, variable.initial_value_name]
      roots.append((f"collection {key}", [n for n in names if n]))
  return roots


def scan_ops(saved_model, allow_ops=()):
  """The Scan of every op running the module could execute.

  Roots per meta graph: each signature's inputs and outputs, every
  node-list collection (UPDATE_OPS, REGULARIZATION_LOSSES, table
  initializers, init ops) and the variables' initializers and snapshots,
  the functions of the saved object graph (TF2: __call__'s traces, the
  signatures, regularization losses), and the saver's restore op, which
  alone may reach the saver's own ops.
  """
  allow_ops = frozenset(allow_ops)
  plain = _Allowed(op_allowlist.DEFAULT, allow_ops)
  saver = _Allowed(op_allowlist.DEFAULT | op_allowlist.SAVER, allow_ops)
  op_types, findings, extras = collections.Counter(), [], collections.Counter()
  for meta_graph in saved_model.meta_graphs:
    walker = _Walker(meta_graph)
    label = _label(meta_graph)
    visited = (set(), set())
    for name, signature in sorted(meta_graph.signature_def.items()):
      walker.walk(_tensor_names(signature.inputs)
                  + _tensor_names(signature.outputs),
                  f"signature {name} of {label}", plain, visited)
    for root, names in _collection_roots(meta_graph):
      walker.walk(names, f"{root} of {label}", plain, visited)
    walker.walk_functions(sorted(meta_graph.object_graph_def
                                 .concrete_functions),
                          f"the saved functions of {label}", plain,
                          visited[1])
    restore = meta_graph.saver_def.restore_op_name
    if restore:
      walker.walk([restore, meta_graph.saver_def.filename_tensor_name],
                  f"the restore op of {label}", saver, (set(), set()))
    op_types.update(walker.op_types)
    findings += walker.findings
    extras.update(walker.extras)
  return Scan(op_types=dict(op_types), findings=tuple(findings),
              extras=dict(extras))


def _dtype_size(enum):
  try:
    return tf.as_dtype(enum).size
  except (TypeError, ValueError):
    return 1


def _elements(shape_proto):
  count = 1
  for dim in shape_proto.dim:
    count *= max(dim.size, 1)
  return count


def _node_bytes(node):
  if node.op == "Const":
    tensor = node.attr["value"].tensor
    return _elements(tensor.tensor_shape) * _dtype_size(tensor.dtype)
  if node.op in VARIABLE_OPS:
    return (_elements(node.attr["shape"].shape)
            * _dtype_size(node.attr["dtype"].type))
  return 0


def declared_bytes(saved_model):
  """(bytes, what): the largest meta graph's declared variables and
  constants, its graph and functions together."""
  largest = (0, "")
  for meta_graph in saved_model.meta_graphs:
    graph_def = meta_graph.graph_def
    nodes = list(graph_def.node) + [node for function in graph_def.library
                                    .function for node in function.node_def]
    size = sum(map(_node_bytes, nodes))
    largest = max(largest, (size, f"variables and constants of "
                                  f"{_label(meta_graph)}"))
  return largest


def file_bytes(directory, names):
  """Total size of the files `names` (relative to directory) that exist."""
  paths = (os.path.join(directory, name) for name in names)
  return sum(os.lstat(path).st_size for path in paths if os.path.isfile(path))


def variables_files(directory):
  """The variables/ files a loader reads, relative to directory."""
  folder = os.path.join(directory, "variables")
  if not os.path.isdir(folder):
    return []
  return [os.path.join("variables", name) for name in os.listdir(folder)]


OP_ALLOWLIST = "security.op_allowlist"
PATHS = "security.paths"
MAX_BYTES = "security.max_bytes"
# What a check that would load or run the module reports when one of these
# failed: it is not run.
GUARDS = {OP_ALLOWLIST: "not run: untrusted ops",
          PATHS: "not run: the module leaves its directory",
          MAX_BYTES: "not run: the module is over --max_bytes"}


@check(OP_ALLOWLIST)
def op_allowlist_check(context):
  """Every op that running the module could execute is an image module's
  op (op_allowlist.py) or allowed by --allow_ops."""
  scan = context.memo("security.scan", lambda: scan_ops(
      context.module.saved_model, context.allow_ops))
  if scan.findings:
    ops = sorted({finding.op for finding in scan.findings})
    more = len(scan.findings) - 1
    raise Failed(f"untrusted op{'s' if len(ops) > 1 else ''} "
                 f"{', '.join(ops)}: {scan.findings[0].describe()}"
                 + (f" (+{more} more)" if more else ""),
                 [finding.describe() for finding in scan.findings])
  detail = (f"{len(scan.op_types)} op types, "
            f"{sum(scan.op_types.values())} ops reached, all allowed")
  if scan.extras:
    extras = ", ".join(f"{op} ({count})"
                       for op, count in sorted(scan.extras.items()))
    return (f"{detail}; allowed by --allow_ops: {extras}",
            [f"allowed by --allow_ops: {op} x{count}"
             for op, count in sorted(scan.extras.items())])
  return detail


@check(PATHS)
def paths(context):
  """No file and no asset path leads out of the module directory."""
  require_none(asset_path_problems(context.module.saved_model))
  return "no links out of the module, no absolute or '..' asset paths"


@check(MAX_BYTES)
def max_bytes(context):
  """Declared variable and constant sizes and the variables files are
  within --max_bytes."""
  limit = context.max_bytes
  directory = context.module.directory
  declared, what = declared_bytes(context.module.saved_model)
  on_disk = file_bytes(directory, variables_files(directory))
  problems = [f"{name} {size / 2**20:.1f} MiB > --max_bytes "
              f"{limit / 2**20:.1f} MiB"
              for name, size in ((what, declared),
                                 ("variables/ files", on_disk))
              if size > limit]
  require_none(problems)
  return (f"declared {declared / 2**20:.1f} MiB, variables/ files "
          f"{on_disk / 2**20:.1f} MiB, limit {limit / 2**20:.0f} MiB")


CHECKS = (op_allowlist_check, paths, max_bytes)


def refusal(directory, max_bytes_limit):
  """(check id, problems) when the directory cannot even be read safely:
  links out of it or special files (PATHS), or a saved_model.pb over the
  limit (MAX_BYTES); None otherwise."""
  problems = leaving_paths(directory)
  if problems:
    return PATHS, problems
  size = file_bytes(directory, ["saved_model.pb"])
  if size > max_bytes_limit:
    return MAX_BYTES, [f"saved_model.pb {size / 2**20:.1f} MiB > "
                       f"--max_bytes {max_bytes_limit / 2**20:.1f} MiB"]
  return None
