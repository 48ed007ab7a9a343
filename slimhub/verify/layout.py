"""A module's layout as JSON, and the differences between two layouts.

The layout is everything a consumer of the module relies on, without
weights: tag sets, signatures (input and output keys, dtypes, shapes, tensor
names), collection sizes, attachments, variable counts with a digest of the
sorted (name, dtype, shape) list, and for TF2 the saved object's attributes,
``__call__`` traces and serving signatures. Golden layouts, ``--against``
and the tests all compare layouts made here.

Tensors are written as one string, ``"float32 [?,128,128,3] name:0"``, so
a changed shape is a one-line difference.
"""

import collections
import dataclasses
import hashlib
from typing import Any

from slimhub.formats import hub_protos
from slimhub.verify import reading

MISSING = "<absent>"


def _tensors(mapping):
  return {key: tensor.describe() for key, tensor in sorted(mapping.items())}


def _signature(signature):
  return {"method_name": signature.method_name,
          "inputs": _tensors(signature.inputs),
          "outputs": _tensors(signature.outputs)}


def _variables(variables):
  """{"count", "digest"} of {name: Tensor}: the digest changes with any
  name, dtype or shape."""
  lines = "\n".join(f"{name} {tensor.describe()}"
                    for name, tensor in sorted(variables.items()))
  digest = hashlib.sha256(lines.encode()).hexdigest()[:16]
  return {"count": len(variables), "digest": digest}


def _attachment(key, value):
  if key == hub_protos.IMAGE_MODULE_INFO_KEY:
    size = hub_protos.ImageModuleInfo.FromString(value).default_image_size
    return f"default_image_size {size.height}x{size.width}"
  return value.hex()


def _variant(variant):
  return {
      "signatures": {name: _signature(signature)
                     for name, signature in sorted(variant.signatures.items())},
      "collections": dict(sorted(variant.collections.items())),
      "attachments": {key: _attachment(key, value)
                      for key, value in sorted(variant.attachments.items())},
      "variables": _variables(variant.variables),
      "trainable_variables": _variables(variant.trainable),
  }


def _value(value):
  """A trace argument or output as JSON: tensors as strings."""
  if isinstance(value, reading.Tensor):
    return value.describe()
  if isinstance(value, dict):
    return {key: _value(item) for key, item in sorted(value.items())}
  if isinstance(value, list):
    return [_value(item) for item in value]
  return value


def trace_label(trace, parameters):
  """"training=True, return_endpoints=False": a trace by its Python values."""
  flags = [f"{name}={trace.arguments[name]}" for name in parameters
           if not isinstance(trace.arguments.get(name), reading.Tensor)
           and name in trace.arguments]
  return ", ".join(flags) or "tensors only"


def _tf2(saved_object):
  traces = {}
  for trace in saved_object.traces:
    label = trace_label(trace, saved_object.parameters)
    while label in traces:  # Two traces with the same Python values.
      label += " (again)"
    traces[label] = {"arguments": _value(trace.arguments),
                     "output": _value(trace.output)}
  return {
      "tag_sets": [list(tags) for tags in saved_object.tag_sets],
      "signatures": {
          tags: {name: _signature(signature)
                 for name, signature in sorted(signatures.items())}
          for tags, signatures in sorted(saved_object.signatures.items())},
      "attributes": list(saved_object.attributes),
      "call": {"parameters": list(saved_object.parameters),
               "traces": dict(sorted(traces.items()))},
      "variables": _variables(saved_object.variables),
      "trainable_variables": _variables(saved_object.trainable),
      "regularization_losses": saved_object.regularization_losses,
  }


def of_module(module):
  """The layout (a JSON-able dict) of a reading.Module."""
  if module.format == reading.TF1_HUB:
    return {
        "format": module.format,
        "saved_model_schema_version":
            module.saved_model.saved_model_schema_version,
        "tag_sets": [list(variant.tags) for variant in module.variants],
        "variants": {variant.label: _variant(variant)
                     for variant in module.variants},
    }
  return {"format": module.format, **_tf2(module.saved_object)}


@dataclasses.dataclass(frozen=True)
class Difference:
  """Where two JSON values differ: keys lead there from the root; left and
  right are MISSING where absent."""
  keys: tuple
  left: Any
  right: Any

  @property
  def path(self):
    return ".".join(map(str, self.keys)) or "(root)"

  @property
  def change(self):
    if self.left == MISSING:
      return "added"
    if self.right == MISSING:
      return "removed"
    return "changed"

  def describe(self, start=0):
    """One line; `start` leaves out that many leading keys of the path."""
    path = ".".join(map(str, self.keys[start:])) or "(root)"
    if self.change == "added":
      return f"{path}: added {_short(self.right)}"
    if self.change == "removed":
      return f"{path}: removed (was {_short(self.left)})"
    return f"{path}: {_short(self.left)} -> {_short(self.right)}"

  def as_json(self):
    return {"path": self.path, "change": self.change,
            "left": None if self.left == MISSING else self.left,
            "right": None if self.right == MISSING else self.right}


def _short(value):
  if isinstance(value, dict):
    keys = sorted(value)
    shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
    return f"{{{shown}}}"
  return str(value)


def differences(left, right, keys=()):
  """[Difference] between two JSON values, one per differing leaf or per
  key present on one side only; dicts are compared key by key."""
  if isinstance(left, dict) and isinstance(right, dict):
    found = []
    for key in sorted(set(left) | set(right), key=str):
      found += differences(left.get(key, MISSING), right.get(key, MISSING),
                           (*keys, key))
    return found
  if left == right:
    return []
  return [Difference(tuple(keys), left, right)]


def summarize(found, limit=8):
  """Readable lines for [Difference]: more than `limit` differences under
  one parent (e.g. every end point of a signature) become one line."""
  groups = {}
  for difference in found:
    groups.setdefault(difference.keys[:-1], []).append(difference)
  lines = []
  for parent, group in groups.items():
    if len(group) <= limit:
      lines += [difference.describe() for difference in group]
      continue
    counts = collections.Counter(difference.change for difference in group)
    shown = ", ".join(f"{count} {change}"
                      for change, count in sorted(counts.items()))
    lines.append(f"{'.'.join(map(str, parent))}: {shown}, e.g. "
                 f"{group[0].describe(start=len(parent))}")
  return lines
