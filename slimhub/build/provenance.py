"""Where a module's weights come from, as far as the exporter knows.

A card or metadata that cites Google's training for weights slimhub cannot
identify would publish a false claim, so there are three answers:

* UNTRAINED: the checkpoint carries the marker slimhub-make-checkpoint
  writes (UNTRAINED_MARKER); its seed is known.
* PUBLISHED: the caller stated that the checkpoint is the catalogue's
  published one (checkpoint_source="published"). Without pinned digests of
  the checkpoint files, that statement is the only way to know it.
* UNIDENTIFIED: anything else; nothing is claimed about its training,
  beyond a note the caller may give.

Knows no TensorFlow: export.py reads the marker, cards.py renders the result.
"""

import dataclasses
from typing import Optional

# The checkpoint variable (an int64 scalar: the seed) that marks
# slimhub-make-checkpoint's checkpoints; no module restores it.
UNTRAINED_MARKER = "slimhub/untrained_seed"

UNTRAINED = "untrained"
PUBLISHED = "published"
UNIDENTIFIED = "unidentified"

AUTO = "auto"
CHECKPOINT_SOURCES = (AUTO, PUBLISHED)


class ProvenanceError(ValueError):
  """A statement about the weights that contradicts the checkpoint."""


@dataclasses.dataclass(frozen=True)
class Weights:
  """origin: UNTRAINED, PUBLISHED or UNIDENTIFIED; seed: of untrained
  values; note: the training note of metadata and model card."""
  origin: str
  seed: Optional[int] = None
  note: str = ""

  def as_metadata(self):
    return {"weights": self.origin, "untrained_seed": self.seed,
            "training_note": self.note}

  @classmethod
  def from_metadata(cls, metadata):
    """The Weights a module's metadata records; modules written before
    slimhub recorded them are UNIDENTIFIED, never assumed trained."""
    return cls(origin=metadata.get("weights", UNIDENTIFIED),
               seed=metadata.get("untrained_seed"),
               note=metadata.get("training_note") or "")


def untrained_note(seed):
  return (f"Untrained: deterministic values from seed {seed} "
          "(slimhub-make-checkpoint), for testing a pipeline; they classify "
          "nothing.")


def identify(entry, untrained_seed, checkpoint_source=AUTO, training_note=""):
  """The Weights of a checkpoint for catalogue `entry`.

  untrained_seed: the seed of its untrained marker, or None;
  checkpoint_source: AUTO, or PUBLISHED when the caller states that it is
  the catalogue's published checkpoint; training_note: the caller's own
  note on how unidentified weights were trained. Raises ProvenanceError
  when a statement contradicts the marker or the catalogue.
  """
  if checkpoint_source not in CHECKPOINT_SOURCES:
    raise ProvenanceError(f"checkpoint_source must be one of "
                          f"{', '.join(CHECKPOINT_SOURCES)}, not "
                          f"{checkpoint_source!r}")
  if untrained_seed is not None:
    if checkpoint_source == PUBLISHED or training_note:
      stated = ("checkpoint_source=published" if checkpoint_source == PUBLISHED
                else "a training note")
      raise ProvenanceError(
          f"{stated} contradicts the checkpoint: slimhub-make-checkpoint "
          f"wrote it with untrained values (seed {untrained_seed})")
    return Weights(UNTRAINED, untrained_seed, untrained_note(untrained_seed))
  if checkpoint_source == PUBLISHED:
    if not entry.source_checkpoint:
      raise ProvenanceError(
          f"checkpoint_source=published, but the catalogue names no "
          f"published checkpoint for {entry.name}; describe the weights "
          "with a training note instead")
    note = " ".join(filter(None, (entry.training_note, training_note)))
    return Weights(PUBLISHED, note=note)
  return Weights(UNIDENTIFIED, note=training_note)
