"""Verifying one module, and comparing two.

    report = verify("out/fv3", expect="imagenet/mobilenet_v1_025_128/"
                    "feature_vector@3")
    report.passed  # no check failed

The checks run in a fixed order: format.detect, the security checks
(security.op_allowlist, security.paths, security.max_bytes: static, before
anything is loaded), module.identity, variables.readable, the format's own
checks (tf1.* or tf2.*), then golden_layout and checkpoint_parity. A check
that would load or run the module is not run when a security check failed.
"""

import os
import time

from slimhub import catalog
from slimhub.build import checkpoints
from slimhub.verify import checks
from slimhub.verify import common_checks
from slimhub.verify import context as context_lib
from slimhub.verify import expectations
from slimhub.verify import golden
from slimhub.verify import layout
from slimhub.verify import quant_checks
from slimhub.verify import reading
from slimhub.verify import report as report_lib
from slimhub.verify import runtime
from slimhub.verify import security
from slimhub.verify import tf1_checks
from slimhub.verify import tf2_checks

DETECT = "format.detect"
NO_EXPECT = "none"  # --expect=none: no golden layout, not even the metadata's
FORMAT_CHECKS = {reading.TF1_HUB: tf1_checks.CHECKS + quant_checks.CHECKS,
                 reading.TF2_SAVED_MODEL: tf2_checks.CHECKS}


class VerifyError(ValueError):
  """A request that cannot be verified: bad --expect or --against."""


def all_checks(module_format):
  """The checks of a format, in the order they run (after format.detect)."""
  return (security.CHECKS + common_checks.CHECKS
          + FORMAT_CHECKS[module_format]
          + common_checks.FINAL_CHECKS)


# The report's types live with their output (report.py).
Comparison = report_lib.Comparison
Report = report_lib.Report


def _describe_format(module):
  if module.format == reading.TF1_HUB:
    labels = " and ".join(variant.label for variant in module.variants)
    return f"TF1 Hub module (tfhub_module.pb), graph variants {labels}"
  return (f"TF2 SavedModel, {len(module.saved_object.traces)} traces of "
          "__call__")


def compare(module, other):
  """Differences of layout and slimhub metadata from `module` to `other`."""
  def described(m):
    return {"layout": layout.of_module(m), "metadata": m.metadata or {}}
  return Comparison(directory=other.directory, format=other.format,
                    differences=tuple(layout.differences(described(module),
                                                         described(other))))


def _catalogued(expectation):
  """(entry, kind, version) of the catalogue module the slimhub metadata
  names, when the module was exported as the catalogue has it (not with
  another class count, size or scaling); else None."""
  if expectation.source != expectations.METADATA:
    return None
  try:
    named = expectations.parse_expect(expectation.handle or "")
  except expectations.ExpectError:
    return None
  catalogue = expectations.from_catalogue(named)
  same = all(getattr(catalogue, field) == getattr(expectation, field)
             for field in ("num_classes", "num_features", "image_size",
                           "preprocessing"))
  return named if same else None


def _catalogue_checkpoint(checkpoint_dir, expectation, expected=None):
  """(checkpoint prefix, None) of the module's catalogue checkpoint inside
  `checkpoint_dir`, laid out as slimhub-regenerate reads it
  (catalog.Entry.checkpoint); or (None, why there is none). The module is
  the `expected` (entry, kind, version), else the one its metadata names."""
  if expected:
    entry = expected[0]
  elif expectation.handle and expectation.source == expectations.METADATA:
    try:
      entry = catalog.find(expectation.handle)
    except KeyError:
      return None, (f"--checkpoint_dir: the metadata's {expectation.handle} "
                    "is not in this slimhub's catalogue")
  else:
    return None, ("--checkpoint_dir: no slimhub metadata names the module's "
                  "catalogue net (pass --expect)")
  if not entry.checkpoint:
    return None, (f"--checkpoint_dir: the catalogue names no checkpoint for "
                  f"{entry.name}")
  path = os.path.join(checkpoint_dir, entry.checkpoint)
  try:
    return checkpoints.resolve_prefix(path), None
  except checkpoints.CheckpointError as error:
    return None, f"--checkpoint_dir: {error}"


def _read_other(against):
  try:
    return reading.read(against)
  except reading.NotAModule as error:
    raise VerifyError(f"--against: {error}") from None


def verify(module_dir, expect=None, checkpoint=None, against=None,
           golden_root=golden.GOLDEN_DIR, allow_ops=(),
           max_bytes=security.DEFAULT_MAX_BYTES, reference_cache=None,
           checkpoint_dir=None):
  """The Report of module_dir.

  expect: "HANDLE@VERSION" of a catalogue module (default: the one the
  slimhub metadata names, for the golden layout; "none": no golden
  layout); checkpoint: a Slim checkpoint to compare outputs with;
  checkpoint_dir: instead, a directory of catalogue checkpoints (as
  slimhub-regenerate reads it) holding the module's; against:
  another module directory to diff with; allow_ops: op types allowed beyond
  the allowlist; max_bytes: the limit of declared and stored sizes;
  reference_cache: a directory where the Slim net's outputs on the checkpoint
  are kept for other modules of the same net (one regeneration run). Raises
  VerifyError for a bad expect or against.
  """
  try:
    expected = (expectations.parse_expect(expect)
                if expect and expect != NO_EXPECT else None)
  except expectations.ExpectError as error:
    raise VerifyError(str(error)) from None
  other = _read_other(against) if against else None
  started = time.monotonic()
  refused = (security.refusal(module_dir, max_bytes)
             if os.path.isdir(module_dir) else None)
  if refused:
    check_id, problems = refused
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return Report(directory=str(module_dir), format=None, expectation=None,
                  results=(checks.Result(check_id, checks.FAIL,
                                         problems[0] + more, tuple(problems),
                                         time.monotonic() - started),))
  try:
    module = reading.read(module_dir)
  except reading.NotAModule as error:
    return Report(directory=str(module_dir), format=None, expectation=None,
                  results=(checks.Result(DETECT, checks.FAIL, str(error),
                                         seconds=time.monotonic() - started),))
  detected = checks.Result(DETECT, checks.PASS, _describe_format(module),
                           seconds=time.monotonic() - started)
  expectation, problems = expectations.resolve(module, expected)
  checkpoint_problem = None
  if checkpoint_dir and not checkpoint:
    checkpoint, checkpoint_problem = _catalogue_checkpoint(
        checkpoint_dir, expectation, expected)
  golden_of = expected or (None if expect == NO_EXPECT
                           else _catalogued(expectation))
  context = context_lib.Context(
      module=module, expectation=expectation, identity_problems=problems,
      expect=golden_of, checkpoint=checkpoint,
      checkpoint_problem=checkpoint_problem, golden_root=golden_root,
      allow_ops=frozenset(allow_ops), max_bytes=max_bytes,
      reference_cache=reference_cache)
  try:
    with runtime.unoptimized():
      results = checks.run(all_checks(module.format), context,
                           security.GUARDS)
  finally:
    context.close()
  return Report(directory=str(module_dir), format=module.format,
                expectation=expectation, results=(detected, *results),
                comparison=compare(module, other) if other else None)
