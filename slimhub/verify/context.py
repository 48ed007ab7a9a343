"""What every check sees: the module, its expectation and shared runtimes."""

import dataclasses
from typing import Optional

from slimhub.verify import expectations
from slimhub.verify import golden
from slimhub.verify import runtime

TRAIN_TAG = "train"


@dataclasses.dataclass
class Context:
  """The verification of one module.

  expect: (entry, kind, version) of --expect, or None. identity_problems:
  contradictions found while resolving the expectation.
  checkpoint_problem: why the module has no checkpoint in --checkpoint_dir.
  allow_ops: op types allowed beyond the allowlist; max_bytes: the size
  limit. Sessions and the loaded TF2 object are created on first use and
  shared by the checks.
  """
  module: object
  expectation: expectations.Expectation
  identity_problems: list
  expect: Optional[tuple] = None
  checkpoint: Optional[str] = None
  checkpoint_problem: Optional[str] = None
  golden_root: str = golden.GOLDEN_DIR
  reference_cache: Optional[str] = None
  allow_ops: frozenset = frozenset()
  max_bytes: int = 0
  _sessions: dict = dataclasses.field(default_factory=dict)
  _loaded: Optional[runtime.LoadedObject] = None
  _memo: dict = dataclasses.field(default_factory=dict)

  @property
  def image_size(self):
    """(height, width) to run the module at."""
    return self.expectation.image_size or runtime.FALLBACK_IMAGE_SIZE

  @property
  def other_image_size(self):
    """A second size for variable-size modules: 32 pixels taller."""
    height, width = self.image_size
    return height + 32, width

  def images(self, size=None):
    return runtime.test_images(size or self.image_size)

  def session(self, *tags):
    """The VariantSession of the TF1 variant with these tags; the [train]
    variant's random ops are pinned (randomness.py)."""
    if tags not in self._sessions:
      self._sessions[tags] = runtime.VariantSession(
          self.module.variant(*tags), self.module.variables_prefix,
          pin_random=TRAIN_TAG in tags)
    return self._sessions[tags]

  def loaded(self):
    """The TF2 object, loaded once."""
    if self._loaded is None:
      self._loaded = runtime.LoadedObject(self.module.directory,
                                          self.module.saved_model)
    return self._loaded

  def memo(self, key, compute):
    """compute(), once per verification: results several checks use."""
    if key not in self._memo:
      self._memo[key] = compute()
    return self._memo[key]

  def close(self):
    for session in self._sessions.values():
      session.close()
