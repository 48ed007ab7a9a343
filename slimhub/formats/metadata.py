"""The slimhub metadata file every exported module carries.

A JSON object at ``assets.extra/slimhub_metadata.json`` (SavedModel tooling
ignores ``assets.extra``): written by the exporter (slimhub.export), read by
the verifier, the regeneration, the mirror and the TFLite converter.
"""

import json
import os

METADATA_FILE = os.path.join("assets.extra", "slimhub_metadata.json")


class MetadataError(ValueError):
  """The metadata file exists but holds no JSON object."""


def write(directory, data):
  """Writes `data` (a JSON object) as the metadata of the module in
  `directory`, indented, with a final newline."""
  path = os.path.join(directory, METADATA_FILE)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(data, f, indent=2)
    f.write("\n")


def read(directory):
  """The metadata of the module in `directory`: a dict, or None when the
  module has no metadata file; MetadataError says why it is unusable."""
  path = os.path.join(directory, METADATA_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as error:
    raise MetadataError(f"{METADATA_FILE} is unreadable: {error}") from None
  if not isinstance(data, dict):
    raise MetadataError(f"{METADATA_FILE} is not a JSON object")
  return data
