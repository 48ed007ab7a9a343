r"""slimhub-catalog: the modules slimhub knows, one line per handle.

  slimhub-catalog                        # table
  slimhub-catalog --json                 # for machines
  slimhub-catalog --filter='*mobilenet_v2_1*'
"""

import json

from absl import app
from absl import flags

from slimhub import catalog
from slimhub.exporters import common

_JSON = flags.DEFINE_bool("json", False, "Print a JSON list instead of a table.")
_FILTER = flags.DEFINE_list(
    "filter", None, "fnmatch globs on 'collection/stem/kind' or the net name.")
_ALL = flags.DEFINE_bool(
    "all", True, "Include entries slimhub cannot export yet (marked).")


def describe(entry, kind):
  """The JSON record of one handle."""
  from slimhub import slim_nets  # pylint: disable=g-import-not-at-top
  reason = entry.unsupported
  if not reason and entry.net not in slim_nets.names():
    reason = f"Slim net {entry.net} is not implemented in this version"
  net = None if reason else slim_nets.get(entry.net)
  sizes = {}
  for version in entry.versions:
    spec = catalog.version_spec(entry, version)
    sizes[str(version)] = "variable" if spec.variable_size else "fixed"
  return {
      "handle": entry.handle(kind),
      "net": entry.name,
      "slim_net": entry.net,
      "kind": kind,
      "versions": list(entry.versions),
      "image_size": entry.image_size,
      "input_size_per_version": sizes,
      "feature_dim": net.num_features if net else None,
      "num_classes": (net.num_classes if net and
                      kind == catalog.CLASSIFICATION else None),
      "preprocessing": net.preprocessing if net else None,
      "checkpoint": entry.checkpoint,
      "tarball_url": entry.tarball_url,
      "published_on_tfhub": entry.published,
      "supported": reason is None,
      "unsupported_reason": reason,
  }


def records(patterns=None, include_unsupported=True):
  seen, rows = set(), []
  for entry, kind, _ in catalog.modules(patterns,
                                        include_unsupported=include_unsupported):
    if (entry.name, kind) not in seen:
      seen.add((entry.name, kind))
      rows.append(describe(entry, kind))
  return rows


def _table(rows):
  header = ("handle", "versions", "size", "dim", "classes", "prep", "note")
  lines = []
  for row in rows:
    sizes = " ".join(f"{v}{'V' if s == 'variable' else 'F'}"
                     for v, s in row["input_size_per_version"].items())
    note = ("" if row["supported"] else "unsupported: "
            + row["unsupported_reason"])
    if not row["published_on_tfhub"]:
      note = ("extra (not on tfhub.dev) " + note).strip()
    lines.append((row["handle"], sizes, str(row["image_size"]),
                  str(row["feature_dim"] or "-"),
                  str(row["num_classes"] or "-"),
                  row["preprocessing"] or "-", note))
  widths = [max(len(r[i]) for r in lines + [header]) for i in range(6)]
  out = []
  for line in [header] + lines:
    out.append("  ".join(c.ljust(w) for c, w in zip(line, widths))
               + "  " + line[6])
  return "\n".join(out)


LEGEND = """\
versions: each module version with the input size it takes, e.g. 3V:
  F = fixed height and width (the `size` column), V = variable (any size;
  `size` is the default). 1-3 are TF1 Hub modules (hub.Module), 4-5 TF2
  SavedModels (hub.KerasLayer); README's "What the versions mean" has more.
size: default input height = width. dim: width of the feature vector.
classes: logits of a classification module. prep: input scaling (inception:
  [0, 1] -> [-1, 1]; vgg: x*255 minus the RGB means)."""


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  rows = records(_FILTER.value, include_unsupported=_ALL.value)
  if _JSON.value:
    print(json.dumps(rows, indent=2))
  else:
    print(_table(rows))
    print(f"\n{len(rows)} handles, "
          f"{sum(len(r['versions']) for r in rows)} module versions.\n")
    print(LEGEND)


def run():
  common.run(main)


if __name__ == "__main__":
  run()
