"""The batch-norm fine-tuning rules shared by the TF1 and TF2 checks.

One training step with momentum m moves a moving_mean by
``(1 - m) * (batch_mean - moving_mean)``. From the same start, momentum 0.5
therefore moves it (1 - 0.5) / (1 - 0.99) = 50 times as far as 0.99, and
the default momentum (0.99 from version 3 on) moves it exactly as far as
0.99 (signatures.md §4, tf2-reusable-savedmodel.md §9).
"""

from slimhub import catalog
from slimhub.verify.checks import Failed
from slimhub.verify.checks import listing

FAST = 0.5
SLOW = catalog.FINE_TUNING_BN_MOMENTUM
RATIO = (1 - FAST) / (1 - SLOW)
RATIO_TOLERANCE = 0.01


def require_all_moved(changes, step):
  """The pass detail if `step` moved every moving_mean in {name: change}."""
  unchanged = sorted(name for name, change in changes.items() if not change)
  if unchanged:
    raise Failed(
        f"{len(unchanged)} of {len(changes)} moving_mean variables did not "
        f"change after {step}: {listing(unchanged)}", unchanged)
  return f"{step} moves all {len(changes)} moving_mean variables"


def require_momentum_effect(changes_at, pinned=0):
  """The pass detail if changes_at(momentum), the {name: change} of one
  step at that momentum (None: the default), shows the 50x ratio of FAST to
  SLOW and a default of SLOW.

  The steps must see the same batch statistics: `pinned` random ops
  (dropout, drop path) draw the same values in each (randomness.py), so
  every moving_mean is measured, none left out.
  """
  fast, slow, default = changes_at(FAST), changes_at(SLOW), changes_at(None)
  names = sorted(slow)
  ratios = {name: fast[name] / slow[name] for name in names if slow[name]}
  off = [name for name in names
         if abs(ratios.get(name, 0.0) / RATIO - 1) > RATIO_TOLERANCE]
  if off:
    shown = [f"{name}: {ratios.get(name, 0.0):.3f}x" for name in off]
    raise Failed(
        f"momentum {FAST} moved {len(off)} of {len(names)} moving_mean "
        f"variables other than {RATIO:.0f}x as far as {SLOW} (e.g. "
        f"{shown[0]}), so batch_norm_momentum does not reach their batch "
        "norms", shown)
  implied = {name: 1 - (1 - SLOW) * default[name] / slow[name]
             for name in names}
  wrong = sorted(name for name, momentum in implied.items()
                 if abs(momentum - SLOW) > (1 - SLOW) * RATIO_TOLERANCE)
  if wrong:
    raise Failed(
        f"the default batch_norm_momentum is not {SLOW}: without it "
        f"{len(wrong)} moving_mean variables move as with momentum "
        f"{implied[wrong[0]]:.4f} (e.g. {wrong[0]})",
        [f"{name}: {implied[name]:.4f}" for name in wrong])
  low, high = f"{min(ratios.values()):.2f}", f"{max(ratios.values()):.2f}"
  spread = low if low == high else f"{low}-{high}"
  drawn = (f" ({pinned} random ops pinned: every step draws the same "
           "values)" if pinned else "")
  return (f"momentum {FAST} moves every moving_mean {spread}x as far as "
          f"{SLOW}; the default is {SLOW}{drawn}")
