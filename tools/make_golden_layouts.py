r"""Regenerates the golden layouts in slimhub/golden_layouts.

  python tools/make_golden_layouts.py                     # every module
  python tools/make_golden_layouts.py --handles='imagenet/mobilenet_v1_*' \
      --versions=3,5
  python tools/make_golden_layouts.py --handles=inception_v2 --check

Each module's graphs are built without weights (slimhub.reference.layouts.
build_layout) and its layout written into the JSON file of its handle, which
holds every version; versions left out by --versions keep their stored
layout. Modules whose Slim net is not implemented yet are skipped. Review
the resulting diff like code: it is exactly what changed in the exports.
With --check nothing is written; the exit code is 1 if any stored layout
differs from the built one.
"""

import collections
import time

from absl import app
from absl import flags
from absl import logging

from slimhub.exporters import common  # first: TensorFlow's import is quiet
from slimhub import catalog  # pylint: disable=g-bad-import-order
from slimhub import slim_nets  # pylint: disable=g-bad-import-order
from slimhub.reference import layouts as reference_layouts
from slimhub.verify import golden
from slimhub.verify import layout

_HANDLES = flags.DEFINE_list(
    "handles", None, "fnmatch globs on 'collection/stem/kind' or the net "
    "name (default: every module).")
_VERSIONS = flags.DEFINE_list("versions", None,
                              "Versions to build (default: all).")
_CHECK = flags.DEFINE_bool(
    "check", False, "Compare with the stored layouts instead of writing.")


def _selected():
  """{(entry, kind): [version]} of the modules the flags select."""
  versions = [int(v) for v in _VERSIONS.value] if _VERSIONS.value else None
  groups = collections.defaultdict(list)
  for entry, kind, version in catalog.modules(_HANDLES.value, versions):
    groups[(entry, kind)].append(version)
  return groups


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_tensorflow()
  logging.set_verbosity(logging.WARNING)  # SavedModel writing chatter
  differing, built = [], 0
  for (entry, kind), versions in _selected().items():
    if entry.net not in slim_nets.names():
      print(f"skip {entry.handle(kind)}: Slim net {entry.net} is not "
            "implemented")
      continue
    stored = golden.load(entry, kind)
    layouts = dict(stored)
    for version in versions:
      start = time.time()
      layouts[version] = reference_layouts.build_layout(entry, kind, version)
      built += 1
      found = layout.differences(stored.get(version, {}), layouts[version])
      change = f"{len(found)} differences" if found else "unchanged"
      if version not in stored:
        change = "new"
      print(f"{entry.handle(kind, version)}: {time.time() - start:.1f}s, "
            f"{change}", flush=True)
      if found:
        differing.append(entry.handle(kind, version))
        for line in layout.summarize(found) if _CHECK.value else ():
          print(f"  {line}")
    if not _CHECK.value:
      golden.write(entry, kind, layouts)
  print(f"{built} layouts built; {len(differing)} differ from the stored "
        "ones" + (" (not written: --check)" if _CHECK.value else ""))
  if _CHECK.value and differing:
    common.fail("make_golden_layouts", "stored golden layouts are out of "
                f"date: {', '.join(differing)}")


if __name__ == "__main__":
  common.run(main)
