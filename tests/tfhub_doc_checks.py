"""The documentation checks tfhub.dev ran on model pages, for the tests.

Written from the rules of tensorflow/tfhub.dev's tools/validator.py and
tools/yaml_parser.py (the repository that hosted the Markdown pages), so
the tests hold slimhub's model cards and archives to what the site
accepted:

* the first line is ``# Module <publisher>/<name>/<version>`` and the file
  lies at ``<publisher>/<name>/<version>.md`` below the documentation root;
* a one-line description follows (an empty line before it is allowed);
* until the first ``#`` line only ``<!-- key: value -->`` lines and empty
  lines appear;
* required keys asset-path, fine-tunable, format and task are present, no
  other keys than the supported optional ones, and only dataset, language,
  task and network-architecture may repeat;
* task values start with image-/text-/audio-/video-; format is one of hub,
  saved_model, saved_model_2; dataset, task and network-architecture values
  are ids from the site's tag lists (tags/*.yaml);
* asset-path is a single value ending in .tar.gz (Google's own pages use
  the bookkeeping values "legacy" and "internal", which the validator only
  tolerated because it checked added or modified asset paths);
* an archive holds only files a SavedModel can use (saved_model.pb,
  tfhub_module.pb, fingerprint.pb, assets/*, assets.extra/*,
  variables/variables.*) under valid path names, and a saved_model.pb that
  parses.

Beyond the validator, fine-tunable must be true or false.
"""

import fnmatch
import os
import re
import tarfile

MODULE_LINE = re.compile(
    r"# Module (?P<publisher>[a-z\d-]+)/(?P<name>[\w.-]+(/[\w.-]+)*)/"
    r"(?P<version>\d+)")
METADATA_LINE = re.compile(r"^<!--(?P<key>(\w|\s|-)+):(?P<value>.+)-->$")
REQUIRED = {"asset-path", "fine-tunable", "format", "task"}
OPTIONAL = {"network-architecture", "colab", "dataset", "language", "license",
            "interactive-visualizer"}
REPEATABLE = {"dataset", "language", "task", "network-architecture"}
FORMATS = {"hub", "saved_model", "saved_model_2"}
GOOGLE_ASSET_PATHS = {"legacy", "internal"}
# The ids these modules can use, from tfhub.dev's tags/*.yaml.
TAG_IDS = {
    "dataset": {"imagenet-ilsvrc-2012-cls", "inaturalist-inat-2017"},
    "task": {"image-feature-vector", "image-classification"},
    "network-architecture": {
        "amoebanet-a-n18-f448", "inception-resnet-v2", "inception-v1",
        "inception-v2", "inception-v3", "inception-v4", "mobilenet-v1",
        "mobilenet-v2", "mobilenet-v3", "nasnet-a-large", "nasnet-a-mobile",
        "pnasnet-5-large", "resnet-v1-50", "resnet-v1-101", "resnet-v1-152",
        "resnet-v2-50", "resnet-v2-101", "resnet-v2-152"},
}
_FILE_NAME = r"[\w-][-!',_\w.=:% ]*"
ARCHIVE_PATH = re.compile(f"({_FILE_NAME})+(/{_FILE_NAME})*")
ARCHIVE_ALLOWED = ("saved_model.pb", "saved_model.pbtxt", "tfhub_module.pb",
                   "keras_metadata.pb", "assets/*", "assets.extra/*",
                   "variables/variables.*", "fingerprint.pb")


def parse(text):
  """(first line match, description, {key: [values]}) of a model page;
  raises AssertionError naming the first violation."""
  lines = text.split("\n")
  match = MODULE_LINE.fullmatch(lines[0])
  assert match, f"first line {lines[0]!r} is not '# Module <handle>'"
  index = 2 if not lines[1] else 1
  description = []
  while index < len(lines) and lines[index] and not lines[index].startswith(
      "<!--"):
    description.append(lines[index])
    index += 1
  assert description, "no description after the first line"
  metadata = {}
  while index < len(lines) and not lines[index].startswith("#"):
    line = lines[index]
    index += 1
    if not line:
      continue
    found = METADATA_LINE.match(line)
    assert found, f"unexpected line before the first heading: {line!r}"
    metadata.setdefault(found["key"].strip(), []).append(
        found["value"].strip())
  return match, " ".join(description), metadata


def check_card(text, path=None, docs_root=None):
  """Asserts that a model card passes tfhub.dev's checks; its metadata."""
  match, _, metadata = parse(text)
  if path is not None:
    expected = os.path.join(docs_root, match["publisher"], match["name"],
                            f"{match['version']}.md")
    assert os.path.abspath(path) == os.path.abspath(expected), (
        f"{path} should lie at {expected}")
  missing = REQUIRED - set(metadata)
  assert not missing, f"missing required metadata {sorted(missing)}"
  unsupported = set(metadata) - REQUIRED - OPTIONAL
  assert not unsupported, f"unsupported metadata {sorted(unsupported)}"
  duplicated = [key for key, values in metadata.items()
                if len(set(values)) > 1 and key not in REPEATABLE]
  assert not duplicated, f"duplicate metadata values for {duplicated}"
  for task in metadata["task"]:
    assert task.startswith(("image-", "text-", "audio-", "video-")), task
  (module_format,) = set(metadata["format"])
  assert module_format in FORMATS, f"format {module_format!r} not in {FORMATS}"
  (fine_tunable,) = set(metadata["fine-tunable"])
  assert fine_tunable in ("true", "false"), f"fine-tunable {fine_tunable!r}"
  for key, allowed in TAG_IDS.items():
    for value in metadata.get(key, ()):
      assert value in allowed, f"{key} {value!r} is not a tfhub.dev tag id"
  (asset_path,) = set(metadata["asset-path"])
  assert (asset_path in GOOGLE_ASSET_PATHS
          or asset_path.endswith(".tar.gz")), asset_path
  return metadata


def check_archive(path):
  """Asserts that a module archive holds only what tfhub.dev allowed."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  found_saved_model = False
  with tarfile.open(path, "r:gz") as tar:
    for member in tar:
      if not member.isfile():
        continue
      name = os.path.normpath(member.name)
      assert ARCHIVE_PATH.fullmatch(name), f"invalid path {name!r}"
      assert any(fnmatch.fnmatch(name, pattern)
                 for pattern in ARCHIVE_ALLOWED), f"{name} is not allowed"
      if name == "saved_model.pb":
        saved_model_pb2.SavedModel.FromString(tar.extractfile(member).read())
        found_saved_model = True
  assert found_saved_model, f"{path} has no saved_model.pb"
