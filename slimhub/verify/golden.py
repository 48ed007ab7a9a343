"""Golden layouts: the reviewed layout of every catalogue module version.

``slimhub/golden_layouts/<collection>/<stem>/<kind>.json`` holds all
versions of one handle::

  {"handle": "google/imagenet/mobilenet_v1_025_128/feature_vector",
   "output_sets": {"1": {"MobilenetV1/Conv2d_0": "float32 [?,64,64,8] ...",
                         ...}, ...},
   "versions": {"1": <layout>, "3": <layout>, ...}}

Output maps with more than one entry (the end points, repeated by every
named signature, variant, version and trace) are stored once under
``output_sets`` and referenced as ``"@output_sets/<n>"``; reading a file
expands them, so comparisons always see full layouts (layout.py).

The layouts are built from the graphs alone, without weights
(slimhub.reference.layouts), by ``tools/make_golden_layouts.py``; see
docs/verify.md to regenerate them. This module only reads and writes
them.
"""

import json
import os

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                          "golden_layouts")
_REFERENCE = "@output_sets/"
_OUTPUT_KEYS = ("outputs", "output")
_LINE = 80  # lists longer than this as JSON get one item per line


def path_for(entry, kind, root=GOLDEN_DIR):
  return os.path.join(root, entry.collection, entry.stem, f"{kind}.json")


def _factor(value, sets):
  """`value` with every output map of 2+ entries replaced by a reference."""
  if not isinstance(value, dict):
    return value
  factored = {}
  for key, item in value.items():
    if key in _OUTPUT_KEYS and isinstance(item, dict) and len(item) > 1:
      text = json.dumps(item, sort_keys=True)
      sets.setdefault(text, str(len(sets) + 1))
      factored[key] = _REFERENCE + sets[text]
    else:
      factored[key] = _factor(item, sets)
  return factored


def _expand(value, sets):
  if isinstance(value, str) and value.startswith(_REFERENCE):
    return sets[value[len(_REFERENCE):]]
  if isinstance(value, dict):
    return {key: _expand(item, sets) for key, item in value.items()}
  return value


def encode(handle, layouts):
  """The golden file content for {version: layout}."""
  sets = {}
  versions = {str(version): _factor(layouts[version], sets)
              for version in sorted(layouts)}
  return {"handle": handle,
          "generated_by": "tools/make_golden_layouts.py",
          "output_sets": {name: json.loads(text)
                          for text, name in sets.items()},
          "versions": versions}


def json_text(value, indent=0):
  """JSON with one key per line and short lists on one line, so that a
  changed layout is a short, readable diff."""
  if isinstance(value, dict) and value:
    pad = " " * (indent + 1)
    items = [f"{pad}{json.dumps(key)}: {json_text(item, indent + 1)}"
             for key, item in sorted(value.items())]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
  flat = json.dumps(value)
  if isinstance(value, list) and len(flat) > _LINE:
    pad = " " * (indent + 1)
    items = [pad + json_text(item, indent + 1) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
  return flat


def decode(content):
  """{version (int): full layout} of a golden file's content."""
  sets = content.get("output_sets", {})
  return {int(version): _expand(layout, sets)
          for version, layout in content["versions"].items()}


def load(entry, kind, root=GOLDEN_DIR):
  """{version: layout} of one handle; {} when it has no golden file."""
  path = path_for(entry, kind, root)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return decode(json.load(f))


def write(entry, kind, layouts, root=GOLDEN_DIR):
  """Writes {version: layout} as the handle's golden file."""
  path = path_for(entry, kind, root)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(json_text(encode(entry.handle(kind), layouts)) + "\n")
  return path
