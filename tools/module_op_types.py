r"""Lists the op types slimhub's exports can run, per catalogue module.

  python tools/module_op_types.py --handles='mobilenet_v1_025_128' \
      --versions=3,5

Builds each module's graphs without weights (as the golden layouts are
built) and prints, per module, the op types slimhub-verify's static scan
reaches and those outside slimhub/verify/op_allowlist.py; at the end, the
union of op types and the union outside the list. This is how the allowlist
is derived and reviewed.
"""

import collections

from absl import app
from absl import flags

from slimhub import catalog
from slimhub import slim_nets
from slimhub import quiet
from slimhub.reference import layouts
from slimhub.verify import security

_HANDLES = flags.DEFINE_list(
    "handles", None, "fnmatch globs on 'collection/stem/kind' or the net "
    "name (default: every module).")
_VERSIONS = flags.DEFINE_list("versions", None,
                              "Versions to build (default: all).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  quiet.quiet_tensorflow()
  union, outside = collections.Counter(), collections.Counter()
  versions = [int(v) for v in _VERSIONS.value] if _VERSIONS.value else None
  for entry, kind, version in catalog.modules(_HANDLES.value, versions):
    if entry.net not in slim_nets.names():
      continue
    with layouts.built_module(entry, kind, version) as module:
      scan = security.scan_ops(module.saved_model)
    union.update(scan.op_types)
    found = sorted({finding.op for finding in scan.findings})
    outside.update(found)
    print(f"{entry.handle(kind, version)}: {len(scan.op_types)} op types; "
          f"outside the allowlist: {', '.join(found) or 'none'}", flush=True)
  print("all op types:", " ".join(sorted(union)))
  print("outside the allowlist:", " ".join(sorted(outside)) or "none")


if __name__ == "__main__":
  app.run(main)
