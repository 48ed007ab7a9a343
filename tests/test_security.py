"""slimhub-verify refuses hostile modules before running anything of them.

Hostile modules are real exports (mobilenet_v1_025_128) copied and edited
the way an attacker would: a WriteFile op behind a control dependency of a
signature output, a ReadFile feeding an output, a WriteFile among the
UPDATE_OPS of the [train] graph only, a WriteFile inside the function that
__call__ calls, a variables file symlinked out of the module, absolute and
".." asset paths and a constant declaring gigabytes. Each must be refused by
a security check with nothing written and nothing run; every module slimhub
exports passes with no flag.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from tensorflow.core.framework import attr_value_pb2
from tensorflow.core.framework import node_def_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from slimhub import catalog
from slimhub import slim_nets
from slimhub.formats import tf1_hub
from slimhub.verify import checks
from slimhub.reference import layouts
from slimhub.verify import op_allowlist
from slimhub.verify import security
from slimhub.verify import verify

NET = "mobilenet_v1_025_128"
V2_NET = "mobilenet_v2_035_96"
FV, CLS = catalog.FEATURE_VECTOR, catalog.CLASSIFICATION
VERIFY = os.path.join(os.path.dirname(sys.executable), "slimhub-verify")
NEVER_ALLOWED = ("ReadFile", "WriteFile", "MatchingFiles", "PyFunc",
                 "EagerPyFunc", "SaveV2", "RestoreV2", "Save", "Restore",
                 "DebugIdentityV3", "ImmutableConst", "LoadAndRemapMatrix")


def _copy(exported_module, tmp_path, kind, version, stem=NET):
  target = tmp_path / "module"
  shutil.copytree(exported_module(stem, kind, version), target)
  return target


def _rewrite(directory, mutate):
  """Applies mutate(meta_graph) to every MetaGraphDef of saved_model.pb."""
  saved_model = tf1_hub.read_saved_model(directory)
  for meta_graph in saved_model.meta_graphs:
    mutate(meta_graph)
  with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
    f.write(saved_model.SerializeToString())


def _string_const(name, value):
  node = node_def_pb2.NodeDef(name=name, op="Const")
  node.attr["dtype"].type = types_pb2.DT_STRING
  node.attr["value"].tensor.CopyFrom(tensor_pb2.TensorProto(
      dtype=types_pb2.DT_STRING, string_val=[value.encode()]))
  return node


def _write_file_nodes(target, prefix="evil"):
  """Const filename, Const contents and WriteFile(filename, contents)."""
  write = node_def_pb2.NodeDef(name=f"{prefix}_write", op="WriteFile",
                               input=[f"{prefix}_name", f"{prefix}_text"])
  return [_string_const(f"{prefix}_name", str(target)),
          _string_const(f"{prefix}_text", "owned"), write]


def _output_op(meta_graph, signature="default", key="default"):
  name = meta_graph.signature_def[signature].outputs[key].name.split(":")[0]
  return next(n for n in meta_graph.graph_def.node if n.name == name)


def _status(report):
  return {result.id: result for result in report.results}


def _assert_refused(report, op):
  results = _status(report)
  scan = results[security.OP_ALLOWLIST]
  assert scan.status == checks.FAIL and op in scan.detail, scan
  assert not report.passed
  not_run = {r.id for r in report.results if r.status == checks.SKIP
             and r.detail == security.GUARDS[security.OP_ALLOWLIST]}
  assert {"variables.readable", "tf1.inference",
          "tf1.update_ops_move_statistics"} <= not_run
  return scan


def _run(*flags, timeout=300):
  return subprocess.run([VERIFY, *flags], capture_output=True, text=True,
                        check=False, timeout=timeout)


def test_write_file_behind_a_control_dependency_of_default(exported_module,
                                                            tmp_path):
  directory = _copy(exported_module, tmp_path, CLS, 3)
  target = tmp_path / "written_by_the_module"

  def mutate(meta_graph):
    meta_graph.graph_def.node.extend(_write_file_nodes(target))
    _output_op(meta_graph).input.append("^evil_write")

  _rewrite(directory, mutate)
  result = _run(f"--module_dir={directory}", "--json")
  assert result.returncode == 1, result.stderr
  data = json.loads(result.stdout)
  scan = data["checks"][1]
  assert scan["id"] == security.OP_ALLOWLIST and scan["status"] == "fail"
  assert scan["detail"].startswith(
      "untrusted op WriteFile: WriteFile (node evil_write), reached by "
      "signature default of []")
  assert any("signature default of [train]" in line for line in scan["lines"])
  skipped = {c["id"] for c in data["checks"]
             if c["detail"] == "not run: untrusted ops"}
  assert {"variables.readable", "tf1.inference",
          "tf1.update_ops_move_statistics"} <= skipped
  assert not target.exists()

  # The edit is a working attack: allowed, the verification writes the file.
  report = verify(directory, allow_ops=["WriteFile"])
  assert target.read_text() == "owned"
  assert "allowed by --allow_ops: WriteFile" in (
      _status(report)[security.OP_ALLOWLIST].detail)


def test_read_file_feeding_an_output(exported_module, tmp_path):
  directory = _copy(exported_module, tmp_path, CLS, 3)
  secret = tmp_path / "secret"
  secret.write_text("private key")

  def mutate(meta_graph):
    meta_graph.graph_def.node.extend([
        _string_const("leak_name", str(secret)),
        node_def_pb2.NodeDef(name="leak", op="ReadFile", input=["leak_name"])])
    output = meta_graph.signature_def["image_classification"].outputs["leak"]
    output.name, output.dtype = "leak:0", types_pb2.DT_STRING

  _rewrite(directory, mutate)
  scan = _assert_refused(verify(directory), "ReadFile")
  assert scan.detail.startswith(
      "untrusted op ReadFile: ReadFile (node leak), reached by signature "
      "image_classification of []")


def test_write_file_only_in_the_train_update_ops(exported_module, tmp_path):
  directory = _copy(exported_module, tmp_path, FV, 3)
  target = tmp_path / "written_by_update_ops"

  def mutate(meta_graph):
    if "train" in meta_graph.meta_info_def.tags:
      meta_graph.graph_def.node.extend(_write_file_nodes(target))
      meta_graph.collection_def["update_ops"].node_list.value.append(
          "evil_write")

  _rewrite(directory, mutate)
  scan = _assert_refused(verify(directory), "WriteFile")
  assert scan.detail == ("untrusted op WriteFile: WriteFile (node "
                         "evil_write), reached by collection update_ops of "
                         "[train]")
  assert not target.exists()


def _inner_call_function(meta_graph):
  """The function __call__'s first saved trace calls: (outer, inner)."""
  library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
  objects = meta_graph.object_graph_def
  root = {c.local_name: c.node_id for c in objects.nodes[0].children}
  outer = objects.nodes[root["__call__"]].function.concrete_functions[0]
  for node in library[outer].node_def:
    if node.op in ("StatefulPartitionedCall", "PartitionedCall"):
      return outer, library[node.attr["f"].func.name]
  raise AssertionError(f"{outer} calls no function")


def _add_to_function(function, nodes, run):
  """Adds graph-style `nodes` to a FunctionDef; `run` runs with it."""
  for node in nodes:
    node.input[:] = [f"{name}:output:0" for name in node.input]
    function.node_def.append(node)
  function.control_ret[run] = run
  function.signature.control_output.append(run)


def test_tf2_write_file_inside_a_function_called_by_call(exported_module,
                                                         tmp_path):
  directory = _copy(exported_module, tmp_path, FV, 5)
  target = tmp_path / "written_by_call"
  names = []

  def mutate(meta_graph):
    outer, function = _inner_call_function(meta_graph)
    names.append((outer, function.signature.name))
    _add_to_function(function, _write_file_nodes(target), "evil_write")

  _rewrite(directory, mutate)
  result = _run(f"--module_dir={directory}")
  assert result.returncode == 1, result.stderr
  ((_, inner),) = names
  row = next(line for line in result.stdout.splitlines()
             if line.startswith("FAIL  security.op_allowlist"))
  assert f"WriteFile (node evil_write in function {inner}), reached by " in row
  assert any(line.split()[:2] == ["skip", "tf2.load"]
             and line.endswith("  not run: untrusted ops")
             for line in result.stdout.splitlines()), result.stdout
  assert not target.exists()


def test_variables_symlinked_outside_are_never_read(exported_module,
                                                    tmp_path):
  directory = _copy(exported_module, tmp_path, FV, 3)
  data = next((directory / "variables").glob("variables.data-*"))
  outside = tmp_path / "outside_fifo"
  os.mkfifo(outside)  # Opening it to read would block: no writer ever comes.
  data.unlink()
  data.symlink_to(outside)
  result = _run(f"--module_dir={directory}", "--json", timeout=120)
  assert result.returncode == 1, result.stderr
  report = json.loads(result.stdout)
  assert report["format"] is None
  (only,) = report["checks"]
  assert only["id"] == security.PATHS and only["status"] == "fail"
  assert only["detail"] == (f"variables/{data.name} is a symlink to "
                            f"{outside}, outside the module")


def test_special_files_and_asset_paths_are_refused(exported_module, tmp_path):
  directory = _copy(exported_module, tmp_path, FV, 3)
  os.mkfifo(directory / "assets" / "pipe")
  report = verify(directory)
  assert [(r.id, r.detail) for r in report.results] == [
      (security.PATHS, "assets/pipe is a FIFO, not a regular file")]
  os.unlink(directory / "assets" / "pipe")

  def mutate(meta_graph):
    for filename in ("/etc/passwd", "../../outside.txt"):
      meta_graph.asset_file_def.append(
          meta_graph_pb2.AssetFileDef(filename=filename))

  _rewrite(directory, mutate)
  report = verify(directory)
  paths = _status(report)[security.PATHS]
  assert paths.status == checks.FAIL
  assert paths.lines == ("asset '../../outside.txt' leaves assets/ with '..'",
                         "asset '/etc/passwd' is an absolute path")
  assert _status(report)["tf1.inference"].detail == (
      security.GUARDS[security.PATHS])


def test_declared_sizes_over_max_bytes_are_refused(exported_module, tmp_path):
  directory = _copy(exported_module, tmp_path, FV, 3)

  def mutate(meta_graph):
    huge = node_def_pb2.NodeDef(name="huge", op="Const")
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0])
    tensor.tensor_shape.dim.add(size=2**31)  # 8 GiB from one stored float
    huge.attr["value"].tensor.CopyFrom(tensor)
    huge.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(
        type=types_pb2.DT_FLOAT))
    meta_graph.graph_def.node.append(huge)

  _rewrite(directory, mutate)
  report = verify(directory)
  size = _status(report)[security.MAX_BYTES]
  assert size.status == checks.FAIL
  assert size.detail.startswith("variables and constants of [train] 8192.")
  assert _status(report)["variables.readable"].detail == (
      security.GUARDS[security.MAX_BYTES])

  good = exported_module(NET, FV, 3)
  # Just over saved_model.pb, under the declared weights.
  limit = os.path.getsize(os.path.join(good, "saved_model.pb")) + 1
  small = verify(good, max_bytes=limit)
  assert _status(small)[security.MAX_BYTES].lines[0].startswith(
      "variables and constants of [train] 0.9 MiB > --max_bytes 0.8 MiB")
  assert not small.passed


def test_allow_ops_lets_a_benign_extra_op_through(exported_module, tmp_path):
  directory = _copy(exported_module, tmp_path, FV, 5, stem=V2_NET)
  assert "Erf" not in op_allowlist.DEFAULT

  def mutate(meta_graph):
    number = node_def_pb2.NodeDef(name="benign_x", op="Const")
    number.attr["dtype"].type = types_pb2.DT_FLOAT
    number.attr["value"].tensor.CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[0.5]))
    number.attr["value"].tensor.tensor_shape.SetInParent()
    erf = node_def_pb2.NodeDef(name="benign_erf", op="Erf",
                               input=["benign_x"])
    erf.attr["T"].type = types_pb2.DT_FLOAT
    _, function = _inner_call_function(meta_graph)
    _add_to_function(function, [number, erf], "benign_erf")

  _rewrite(directory, mutate)
  refused = verify(directory)
  assert _status(refused)[security.OP_ALLOWLIST].detail.startswith(
      "untrusted op Erf: Erf (node benign_erf in function ")
  result = _run(f"--module_dir={directory}", "--allow_ops=Erf", "--json")
  data = json.loads(result.stdout)
  scan = data["checks"][1]
  assert scan["status"] == "pass", scan
  assert scan["detail"].endswith("; allowed by --allow_ops: Erf (1)")
  assert scan["lines"] == ["allowed by --allow_ops: Erf x1"]
  failed = [c for c in data["checks"] if c["status"] == "fail"]
  assert result.returncode == 0, failed


def test_the_allowlist_holds_no_file_or_host_op():
  assert not set(NEVER_ALLOWED) & op_allowlist.DEFAULT
  assert not {"ReadFile", "WriteFile", "MatchingFiles"} & op_allowlist.SAVER


# CI's sample: real exports of three families, TF1 and TF2.
EXPORT_SAMPLE = [(NET, CLS, 1), (NET, FV, 3), (V2_NET, CLS, 2), (NET, CLS, 4),
                 (V2_NET, FV, 5)]


@pytest.mark.parametrize("stem,kind,version", EXPORT_SAMPLE,
                         ids=[f"{s}-{k}-{v}" for s, k, v in EXPORT_SAMPLE])
def test_exports_pass_with_no_flag(stem, kind, version, exported_module):
  directory = exported_module(stem, kind, version)
  assert security.refusal(directory, security.DEFAULT_MAX_BYTES) is None
  saved_model = tf1_hub.read_saved_model(directory)
  scan = security.scan_ops(saved_model)
  assert not scan.findings, [f.describe() for f in scan.findings[:5]]
  assert not security.asset_path_problems(saved_model)
  assert "Conv2D" in scan.op_types and "FusedBatchNormV3" in scan.op_types


# The slow tier builds every catalogue module's graphs (without weights, as
# the golden layouts are built); CI's sample adds the NASNet family.
CATALOGUE_SAMPLE = {("nasnet_mobile", CLS, 3)}


def _catalogue_params():
  implemented = set(slim_nets.names())
  return [pytest.param(entry.name, kind, version,
                       id=f"{entry.name}-{kind}-{version}",
                       marks=pytest.mark.slow(
                           sample=(entry.name, kind, version)
                           in CATALOGUE_SAMPLE))
          for entry, kind, version in catalog.modules()
          if entry.net in implemented]


@pytest.mark.parametrize("name,kind,version", _catalogue_params())
def test_every_catalogue_module_passes_the_allowlist(name, kind, version):
  with layouts.built_module(catalog.find(name), kind, version) as module:
    scan = security.scan_ops(module.saved_model)
  assert not scan.findings, [f.describe() for f in scan.findings[:5]]
