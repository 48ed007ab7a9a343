"""The catalogue: one entry per module handle stem, and the version rules.

Everything else (exporters, CLI, tests, regeneration) is driven from here.
An entry describes ``<collection>/<stem>/{feature_vector,classification}``
at every version Google published (plus slimhub's own extras, marked
``published=False``); ``version_spec`` turns an entry and a version number
into the concrete export options. Facts come from the tfhub.dev model pages
and the TF-Slim READMEs (see docs/catalogue.md in the shared specs).
"""

import dataclasses
import difflib
import fnmatch
import os
from typing import Optional

FEATURE_VECTOR = "feature_vector"
CLASSIFICATION = "classification"
KINDS = (FEATURE_VECTOR, CLASSIFICATION)

TF1_HUB = "tf1_hub"
TF2_SAVED_MODEL = "tf2_saved_model"

FINE_TUNING_BN_MOMENTUM = 0.99

_TF_MODELS = "https://download.tensorflow.org/models"
_GCS_MODELS = "https://storage.googleapis.com/download.tensorflow.org/models"
_MOBILENET_V2 = "https://storage.googleapis.com/mobilenet_v2/checkpoints"
_MOBILENET_V3 = "https://storage.googleapis.com/mobilenet_v3/checkpoints"


@dataclasses.dataclass(frozen=True)
class Entry:
  """One handle stem, e.g. imagenet/mobilenet_v1_050_160.

  net: the slim_nets registry name of its architecture.
  image_size: the default (and for fixed-size versions, the only) size.
  versions: published versions (1-3 TF1 Hub, 4-5 TF2 SavedModel).
  variable_size_from: first version whose input size is variable, or None.
  checkpoint: path of the Slim checkpoint prefix inside a checkpoint
    directory: "<tarball folder>/<path inside the tarball>", where the
    tarball folder is the tarball's name without .tar.gz/.tgz. Tarballs
    whose members sit at the top level extract into that folder; those
    that already have it as their only top-level folder (mobilenet_v3)
    extract as they are.
  tarball: the official tarball's name relative to `tarball_base`, as the
    TF-Slim READMEs write it (None if never published).
  tarball_base: the base URL the tarball lives under.
  tarball_sha256: the tarball's pinned SHA-256, when known.
  architecture: the architecture's key in slimhub.architectures.ARCHITECTURES
    (papers, prose, tfhub.dev id), e.g. "pnasnet-5-large"; every catalogue
    entry has one.
  depth_multiplier: the MobileNet width, as the docs write it ("0.25").
  published: False for slimhub extras that Google never put on tfhub.dev.
  quantized: a quantops entry: the fake-quantized, inference-only net of a
    quantization-aware checkpoint (no training graph, no BN hparams).
  unsupported: why slimhub cannot export this entry yet (None if it can).
  training_note: provenance of the weights, for metadata and model cards.
  """
  stem: str
  net: str
  image_size: int
  versions: tuple
  variable_size_from: Optional[int]
  checkpoint: Optional[str]
  tarball: Optional[str]
  architecture: Optional[str] = None
  tarball_base: str = _TF_MODELS
  tarball_sha256: Optional[str] = None
  depth_multiplier: Optional[str] = None
  collection: str = "imagenet"
  kinds: tuple = KINDS
  published: bool = True
  quantized: bool = False
  unsupported: Optional[str] = None
  training_note: str = ""

  @property
  def tarball_url(self):
    return f"{self.tarball_base}/{self.tarball}" if self.tarball else None

  @property
  def tarball_folder(self):
    """The checkpoint directory's folder for this tarball's files."""
    if not self.tarball:
      return None
    name = self.tarball.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz"):
      if name.endswith(suffix):
        return name[:-len(suffix)]
    raise ValueError(f"{self.name}: tarball {name} is not a .tar.gz/.tgz")

  @property
  def source_checkpoint(self):
    """The checkpoint as Google's model cards name it: the tarball's URL
    folder, then `checkpoint` ("mobilenet_v1_2018_02_22/mobilenet_v1_0.25_128/
    mobilenet_v1_0.25_128.ckpt"). A citation, not a path: the server has
    the tarball (tarball_url), which holds the file at its top level."""
    if not self.checkpoint:
      return None
    folder = self.tarball.rpartition("/")[0] if self.tarball else ""
    return f"{folder}/{self.checkpoint}" if folder else self.checkpoint

  @property
  def name(self):
    """The --net name: the stem, prefixed by the collection unless imagenet."""
    if self.collection == "imagenet":
      return self.stem
    return f"{self.collection}/{self.stem}"

  def handle(self, kind, version=None, publisher="google"):
    base = f"{publisher}/{self.collection}/{self.stem}/{kind}"
    return base if version is None else f"{base}/{version}"


@dataclasses.dataclass(frozen=True)
class VersionSpec:
  """What a version number means for one entry.

  format: TF1_HUB (v1-v3) or TF2_SAVED_MODEL (v4-v5).
  variable_size: the input placeholder/trace is [None, None, None, 3].
  bn_hparams: BN momentum is an input (default 0.99) with *_with_bn_hparams
    signatures (v3+); otherwise the net's own Slim BN decay is baked in.
  image_module_info: attach ImageModuleInfo (TF1 v3).
  serving_default: write a serving_default SignatureDef (TF2 v5).
  changelog: the version's changelog items (model cards list them).
  input_quant_range: quantops: the (min, max) of the 8-bit fake quantization
    of the scaled input image (None for float modules).
  """
  version: int
  format: str
  variable_size: bool
  bn_hparams: bool
  image_module_info: bool
  serving_default: bool
  changelog: tuple
  input_quant_range: Optional[tuple] = None


_HUB_ISSUE_86 = "https://github.com/tensorflow/hub/issues/86"
_CHANGELOG = {
    1: ("Initial release.",),
    2: (f"Fixed broken UPDATE_OPS for fine-tuning, [GitHub issue 86]"
        f"({_HUB_ISSUE_86}).",),
    3: ("Fine-tuning: batch norm momentum defaults to 0.99 and can be set "
        "through the `*_with_bn_hparams` signatures.",
        "Requires the PIP package `tensorflow-hub>=0.2.0`."),
    4: ("Switched to the SavedModel format of TensorFlow 2; `hub.Module` "
        "cannot load this or any later version.",),
    5: ("Added the `serving_default` SignatureDef.",
        "Fixed use under `tf.GradientTape(persistent=True)`."),
}
_VARIABLE_SIZE_CHANGE = "Support for variable input size."
_HUB_ISSUE_109 = "https://github.com/tensorflow/hub/issues/109"
# quantops: the scaled input in [-1, 1] is fake-quantized to 8 bits; v3
# widened its range by 0.05% against a TFLite converter crash.
_QUANT_INPUT_RANGE = {1: (-1.0, 1.0), 3: (-1.0005, 1.0005)}
_QUANT_CHANGELOG = {
    3: ("Widened the quantization range of the input image by 0.05% to "
        f"avoid a crash of the TFLite converter, [GitHub issue 109]"
        f"({_HUB_ISSUE_109}).",
        "Requires the PIP package `tensorflow-hub>=0.2.0`."),
}


def version_spec(entry, version):
  """The export options of `entry` at `version`; the one place for them."""
  if version not in entry.versions:
    raise ValueError(
        f"{entry.name} has no version {version}; published versions: "
        f"{', '.join(map(str, entry.versions))}")
  variable = (entry.variable_size_from is not None
              and version >= entry.variable_size_from)
  changelog = _CHANGELOG[version]
  if version == entry.variable_size_from:
    changelog = (_VARIABLE_SIZE_CHANGE,) + changelog
  if entry.quantized:
    changelog = _QUANT_CHANGELOG.get(version, changelog)
  if version == entry.versions[0]:
    changelog = _CHANGELOG[1]
  return VersionSpec(
      version=version,
      format=TF1_HUB if version <= 3 else TF2_SAVED_MODEL,
      variable_size=variable,
      bn_hparams=version >= 3 and not entry.quantized,
      image_module_info=version == 3,
      serving_default=version == 5,
      changelog=changelog,
      input_quant_range=(_QUANT_INPUT_RANGE[version] if entry.quantized
                         else None),
  )


# SHA-256 pins of the official tarballs, keyed by Entry.tarball: the lines
# `slimhub-fetch-checkpoint --print_sha256` prints. None is known yet (they
# could not be downloaded where slimhub was written); a pinned tarball's
# fetch refuses any other bytes.
TARBALL_SHA256 = {
}


def tarball_pin(entry, sha256):
  """The TARBALL_SHA256 line pinning `entry`'s tarball to `sha256`."""
  return f'    "{entry.tarball}": "{sha256}",'


def _ckpt_entry(stem, net, size, tarball, checkpoint_file, *, versions,
                variable_from, architecture, base=_TF_MODELS, **kwargs):
  """An entry whose tarball holds `checkpoint_file` at its top level."""
  entry = Entry(stem=stem, net=net, image_size=size, versions=versions,
                variable_size_from=variable_from, checkpoint=None,
                tarball=tarball, tarball_base=base, architecture=architecture,
                tarball_sha256=TARBALL_SHA256.get(tarball), **kwargs)
  return dataclasses.replace(
      entry, checkpoint=f"{entry.tarball_folder}/{checkpoint_file}")


_INCEPTION_VERSIONS = (1, 3, 4, 5)

_RESNET_V1_NOTE = (
    "Google's resnet_v1 modules were retrained internally (1001 classes, "
    "inputs scaled to [-1, 1]); the public Slim checkpoint named here has "
    "1000 classes (no background class: label index = ImageNet index - 1) "
    "and VGG preprocessing.")


def _inception_family():
  entries = [
      _ckpt_entry("inception_v1", "inception_v1", 224,
                  "inception_v1_2016_08_28.tar.gz", "inception_v1.ckpt",
                  versions=_INCEPTION_VERSIONS, variable_from=3,
                  architecture="inception-v1"),
      _ckpt_entry("inception_v2", "inception_v2", 224,
                  "inception_v2_2016_08_28.tar.gz", "inception_v2.ckpt",
                  versions=_INCEPTION_VERSIONS, variable_from=3,
                  architecture="inception-v2"),
      _ckpt_entry("inception_v3", "inception_v3", 299,
                  "inception_v3_2016_08_28.tar.gz", "inception_v3.ckpt",
                  versions=_INCEPTION_VERSIONS, variable_from=3,
                  architecture="inception-v3"),
      _ckpt_entry("inception_resnet_v2", "inception_resnet_v2", 299,
                  "inception_resnet_v2_2016_08_30.tar.gz",
                  "inception_resnet_v2_2016_08_30.ckpt",
                  versions=_INCEPTION_VERSIONS, variable_from=3,
                  architecture="inception-resnet-v2"),
      _ckpt_entry("inception_v4", "inception_v4", 299,
                  "inception_v4_2016_09_09.tar.gz", "inception_v4.ckpt",
                  versions=_INCEPTION_VERSIONS, variable_from=3,
                  architecture="inception-v4", published=False),
      Entry(stem="inception_v3", net="inception_v3", image_size=299,
            versions=_INCEPTION_VERSIONS, variable_size_from=3,
            checkpoint=None, tarball=None, architecture="inception-v3",
            collection="inaturalist", kinds=(FEATURE_VECTOR,),
            training_note=("Trained on iNaturalist 2017 after ImageNet "
                           "pretraining; Google published no checkpoint.")),
  ]
  return entries


def _resnet_family():
  entries = []
  for depth in (50, 101, 152):
    entries.append(_ckpt_entry(
        f"resnet_v1_{depth}", f"resnet_v1_{depth}", 224,
        f"resnet_v1_{depth}_2016_08_28.tar.gz", f"resnet_v1_{depth}.ckpt",
        versions=_INCEPTION_VERSIONS, variable_from=3,
        architecture=f"resnet-v1-{depth}", training_note=_RESNET_V1_NOTE))
    entries.append(_ckpt_entry(
        f"resnet_v2_{depth}", f"resnet_v2_{depth}", 224,
        f"resnet_v2_{depth}_2017_04_14.tar.gz", f"resnet_v2_{depth}.ckpt",
        versions=_INCEPTION_VERSIONS, variable_from=3,
        architecture=f"resnet-v2-{depth}"))
  return entries


def _vgg_family():
  return [_ckpt_entry(f"vgg_{depth}", f"vgg_{depth}", 224,
                      f"vgg_{depth}_2016_08_28.tar.gz", f"vgg_{depth}.ckpt",
                      versions=_INCEPTION_VERSIONS, variable_from=None,
                      architecture=f"vgg-{depth}", published=False)
          for depth in (16, 19)]


_DEPTHS = {"140": "1.4", "130": "1.3", "100": "1.0", "075": "0.75",
           "050": "0.5", "035": "0.35", "025": "0.25"}


def _mobilenet_v1_family():
  """Float and quantops entries; every .tgz holds its files at the top."""
  entries = []
  for depth in ("100", "075", "050", "025"):
    for size in (224, 192, 160, 128):
      name = f"mobilenet_v1_{_DEPTHS[depth]}_{size}"
      common = dict(net=f"mobilenet_v1_{depth}", size=size,
                    architecture="mobilenet-v1",
                    depth_multiplier=_DEPTHS[depth])
      entries.append(_ckpt_entry(
          f"mobilenet_v1_{depth}_{size}",
          tarball=f"mobilenet_v1_2018_02_22/{name}.tgz",
          checkpoint_file=f"{name}.ckpt", versions=_INCEPTION_VERSIONS,
          variable_from=3, **common))
      quant = f"{name}_quant"
      entries.append(_ckpt_entry(
          f"mobilenet_v1_{depth}_{size}/quantops",
          tarball=f"mobilenet_v1_2018_02_22/{quant}.tgz",
          checkpoint_file=f"{quant}.ckpt", versions=(1, 3),
          variable_from=None, quantized=True,
          **dict(common, net=f"{common['net']}_quant")))
  return entries


def _mobilenet_v2_family():
  combos = [("140", 224), ("130", 224)] + [
      (depth, size) for depth in ("100", "075", "050", "035")
      for size in (224, 192, 160, 128, 96)]
  entries = []
  for depth, size in combos:
    name = f"mobilenet_v2_{_DEPTHS[depth]}_{size}"
    entries.append(_ckpt_entry(
        f"mobilenet_v2_{depth}_{size}", f"mobilenet_v2_{depth}", size,
        f"{name}.tgz", f"{name}.ckpt", versions=(1, 2, 3, 4, 5),
        variable_from=None, base=_MOBILENET_V2, architecture="mobilenet-v2",
        depth_multiplier=_DEPTHS[depth]))
  return entries


_MOBILENET_V3_EMA_STEPS = {("large", "100"): 540000, ("large", "075"): 220000,
                           ("small", "100"): 388500, ("small", "075"): 497500}


def _mobilenet_v3_family():
  """The .tgz files hold one folder named like the tarball (with ema/)."""
  entries = []
  for (size_class, depth), step in _MOBILENET_V3_EMA_STEPS.items():
    entries.append(_ckpt_entry(
        f"mobilenet_v3_{size_class}_{depth}_224",
        f"mobilenet_v3_{size_class}_{depth}", 224,
        f"v3-{size_class}_224_{_DEPTHS[depth]}_float.tgz",
        f"ema/model-{step}", versions=(5,), variable_from=None,
        base=_MOBILENET_V3, architecture=f"mobilenet-v3-{size_class}",
        depth_multiplier=_DEPTHS[depth]))
  return entries


def _nasnet_family():
  """(P)NASNet tarballs hold model.ckpt.{index,data-*} at the top."""
  return [
      _ckpt_entry("nasnet_mobile", "nasnet_mobile", 224,
                  "nasnet-a_mobile_04_10_2017.tar.gz", "model.ckpt",
                  versions=(1, 3, 4, 5), variable_from=None,
                  base=_GCS_MODELS, architecture="nasnet-a-mobile"),
      _ckpt_entry("nasnet_large", "nasnet_large", 331,
                  "nasnet-a_large_04_10_2017.tar.gz", "model.ckpt",
                  versions=(1, 3, 4, 5), variable_from=None,
                  base=_GCS_MODELS, architecture="nasnet-a-large"),
      _ckpt_entry("pnasnet_large", "pnasnet_large", 331,
                  "pnasnet-5_large_2017_12_13.tar.gz", "model.ckpt",
                  versions=(1, 2, 3, 4, 5), variable_from=None,
                  base=_GCS_MODELS, architecture="pnasnet-5-large"),
      _ckpt_entry("pnasnet_mobile", "pnasnet_mobile", 224,
                  "pnasnet-5_mobile_2017_12_13.tar.gz", "model.ckpt",
                  versions=(1, 3, 4, 5), variable_from=None,
                  base=_GCS_MODELS, architecture="pnasnet-5-mobile",
                  published=False),
      Entry(stem="amoebanet_a_n18_f448", net="amoebanet_a_n18_f448",
            image_size=331, versions=(1,), variable_size_from=None,
            checkpoint=None, tarball=None,
            architecture="amoebanet-a-n18-f448",
            unsupported=("AmoebaNet-A comes from tensorflow/tpu, not TF-Slim, "
                         "and has no published checkpoint")),
  ]


ENTRIES = tuple(sorted(
    _inception_family() + _resnet_family() + _vgg_family()
    + _mobilenet_v1_family() + _mobilenet_v2_family()
    + _mobilenet_v3_family() + _nasnet_family(),
    key=lambda e: (e.collection != "imagenet", e.collection, e.stem)))

_BY_NAME = {entry.name: entry for entry in ENTRIES}


def close_matches(key, names, n=5, cutoff=0.6):
  """Up to `n` of `names` like `key`, best first: by difflib's similarity,
  ties broken by the longer common prefix, so that a name cut short
  (mobilenet_v1_025_12) lists its completion (..._128) before names that
  differ earlier (..._192)."""
  scored = []
  for name in names:
    ratio = difflib.SequenceMatcher(None, key, name).ratio()
    if ratio >= cutoff:
      prefix = len(os.path.commonprefix([key, name]))
      scored.append((-ratio, -prefix, name))
  return [name for _, _, name in sorted(scored)[:n]]


def find(name):
  """The entry called `name` (a --net value or a handle); lists close matches.

  Accepts "mobilenet_v1_050_160", "inaturalist/inception_v3", and handles
  such as "google/imagenet/inception_v3/feature_vector/5".
  """
  key = name.strip("/")
  if key.startswith("google/"):
    key = key[len("google/"):]
  for kind in KINDS:
    head, sep, tail = key.partition(f"/{kind}")
    if sep and (not tail or tail[1:].isdigit()):
      key = head
  if key.startswith("imagenet/"):
    key = key[len("imagenet/"):]
  if key in _BY_NAME:
    return _BY_NAME[key]
  close = close_matches(key, _BY_NAME)
  hint = f" Close matches: {', '.join(close)}." if close else ""
  raise KeyError(f"Unknown catalogue net {name!r}.{hint} "
                 "Run slimhub-catalog for the full list.")


def modules(patterns=None, versions=None, include_unsupported=False):
  """Yields (entry, kind, version) for every module, optionally filtered.

  patterns: fnmatch globs matched against "collection/stem/kind", the
  --net name and "<net name>/kind" (e.g. "imagenet/mobilenet_v1_*",
  "pnasnet_large", "inception_v3/feature_vector").
  """
  for entry in ENTRIES:
    if entry.unsupported and not include_unsupported:
      continue
    for kind in entry.kinds:
      keys = (entry.handle(kind, publisher="")[1:], entry.name,
              f"{entry.name}/{kind}")
      if patterns and not any(fnmatch.fnmatchcase(key, pattern)
                              for pattern in patterns for key in keys):
        continue
      for version in entry.versions:
        if versions and version not in versions:
          continue
        yield entry, kind, version
