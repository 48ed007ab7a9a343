"""What a module should be: the contract values its checks compare with.

Three sources, the first that applies wins:

* ``--expect=HANDLE@VERSION``: the catalogue entry and ``catalog.version_spec``;
* ``assets.extra/slimhub_metadata.json``, which slimhub writes into every
  module (it also covers exports with another class count or scaling);
* the module itself, for modules slimhub did not make. The version rules
  are inferred from what it has: a TF1 module with ``*_with_bn_hparams``
  signatures follows the v3 rules, one without the v1 rules; a SavedModel
  with ``serving_default`` the v5 rules, one without the v4 rules. Sizes
  come from ImageModuleInfo or static input shapes; what cannot be inferred
  stays None and is checked for consistency only.
"""

import dataclasses
import re
from typing import Optional

from slimhub import catalog
from slimhub import slim_nets
from slimhub.formats import hub_protos
from slimhub.formats import tf1_hub
from slimhub.verify import reading

EXPECT = "--expect"
METADATA = "slimhub metadata"
INFERRED = "the module itself"

IMAGES = "images"
BATCH_NORM_MOMENTUM = "batch_norm_momentum"
BN_SUFFIX = "_with_bn_hparams"


@dataclasses.dataclass(frozen=True)
class Expectation:
  """Contract values; None where unknown.

  catalogued: the module claims to be one of the Slim collection's (from
  --expect or its metadata), so the collection's stricter rules apply:
  end points in named signatures, exactly the four TF2 traces.
  inference_only: a quantops module: tag set [] alone, no UPDATE_OPS, no
    weight decay, fake quantization at every conv.
  input_quant_range: the (min, max) of its input fake quantization.
  """
  source: str
  format: str
  version: int
  bn_hparams: bool
  image_module_info: bool
  serving_default: bool
  handle: Optional[str] = None
  kind: Optional[str] = None
  image_size: Optional[tuple] = None
  variable_size: Optional[bool] = None
  num_features: Optional[int] = None
  num_classes: Optional[int] = None
  end_point_prefix: Optional[str] = None
  net: Optional[str] = None
  preprocessing: Optional[str] = None
  inference_only: bool = False
  input_quant_range: Optional[tuple] = None
  note: str = ""

  @property
  def catalogued(self):
    return self.source != INFERRED

  @property
  def default_dim(self):
    """Width of the `default` output: classes or features."""
    if self.kind == catalog.CLASSIFICATION:
      return self.num_classes
    if self.kind == catalog.FEATURE_VECTOR:
      return self.num_features
    return None

  @property
  def images_shape(self):
    """[None, h|None, w|None, 3], with None where the size is unknown."""
    if self.variable_size or self.image_size is None:
      return None, None, None, 3
    return (None, *self.image_size, 3)

  def describe(self):
    what = self.handle or f"an image module under version {self.version} rules"
    return f"{what}, per {self.source}" + (f": {self.note}" if self.note
                                           else "")

  def as_json(self):
    data = dataclasses.asdict(self)
    data["image_size"] = list(self.image_size) if self.image_size else None
    return data


class ExpectError(ValueError):
  """An `expect` value that names no catalogue module version."""


def parse_expect(text):
  """(entry, kind, version) of "HANDLE@VERSION" or "HANDLE/VERSION";
  ExpectError says why `text` names none (its message names the parameter,
  ``expect=...``, which a binary may rephrase as its flag)."""
  match = re.fullmatch(r"(.+?)(?:@|/)(\d+)/?", text.strip())
  if not match:
    raise ExpectError(f"expect={text!r} needs a version: HANDLE@VERSION, "
                      "e.g. imagenet/mobilenet_v1_025_128/feature_vector@3")
  handle, version = match.group(1), int(match.group(2))
  kinds = [part for part in handle.split("/") if part in catalog.KINDS]
  if len(kinds) != 1:
    raise ExpectError(f"expect={text!r} names no module kind "
                      f"({' or '.join(catalog.KINDS)})")
  try:
    entry = catalog.find(handle)
    catalog.version_spec(entry, version)
  except KeyError as error:
    raise ExpectError(str(error).strip('"')) from None
  except ValueError as error:
    raise ExpectError(str(error)) from None
  if kinds[0] not in entry.kinds:
    raise ExpectError(f"{entry.name} has no {kinds[0]} module")
  return entry, kinds[0], version


def _registered_net(name):
  return slim_nets.get(name) if name in slim_nets.names() else None


def _from_entry(entry, kind, version, source, note=""):
  spec = catalog.version_spec(entry, version)
  net = _registered_net(entry.net)
  classify = kind == catalog.CLASSIFICATION
  return Expectation(
      source=source, format=spec.format, version=version,
      bn_hparams=spec.bn_hparams and not (net and net.inference_only),
      image_module_info=spec.image_module_info,
      serving_default=spec.serving_default,
      handle=entry.handle(kind, version) if entry.stem else None, kind=kind,
      image_size=(entry.image_size,) * 2 if entry.image_size else None,
      variable_size=spec.variable_size,
      num_features=net.num_features if net else None,
      num_classes=net.num_classes if net and classify else None,
      end_point_prefix=net.scope if net else None,
      net=entry.net or None, preprocessing=net.preprocessing if net else None,
      inference_only=bool(net and net.inference_only),
      input_quant_range=spec.input_quant_range, note=note)


def from_catalogue(expect):
  """The Expectation of the catalogue's (entry, kind, version)."""
  return _from_entry(*expect, EXPECT)


def _synthetic_entry(version, image_size=None, variable=False, net=""):
  """A catalogue Entry standing for a module outside the catalogue, so
  that catalog.version_spec supplies the version rules."""
  return catalog.Entry(stem="", net=net, image_size=image_size,
                       versions=(version,),
                       variable_size_from=version if variable else None,
                       checkpoint=None, tarball=None)


def _from_metadata(metadata):
  """The Expectation the metadata describes; KeyError/TypeError/ValueError
  when it lacks what is needed."""
  version = int(metadata["version"])
  height, width = metadata["default_image_size"]
  entry = _synthetic_entry(version, height, metadata["variable_input_size"],
                           metadata["net"])
  expectation = _from_entry(entry, metadata["kind"], version, METADATA)
  return dataclasses.replace(
      expectation, handle=metadata["handle"], image_size=(height, width),
      num_features=metadata["num_features"],
      num_classes=metadata["num_classes"],
      end_point_prefix=metadata.get("end_point_prefix"),
      preprocessing=metadata.get("preprocessing"),
      input_quant_range=_optional_pair(metadata.get("input_quant_range")))


def _optional_pair(value):
  return tuple(value) if value else None


def image_input(signatures):
  """The images input of a signature map: the `images` key of `default`, or
  of any signature, else any float rank-4 input; None if there is none."""
  ordered = sorted(signatures.items(), key=lambda item: item[0] != "default")
  for _, signature in ordered:
    if IMAGES in signature.inputs:
      return signature.inputs[IMAGES]
  for _, signature in ordered:
    for tensor in signature.inputs.values():
      if tensor.shape is not None and len(tensor.shape) == 4:
        return tensor
  return None


def has_variable_size(images):
  """Whether an images tensor or spec has an unknown height or width."""
  return bool(images is not None and images.shape is not None
              and None in images.shape[1:3])


def _size_of(images):
  """((height, width) or None, variable size or None) of an images input."""
  if images is None or images.shape is None or len(images.shape) != 4:
    return None, None
  if has_variable_size(images):
    return None, True
  return tuple(images.shape[1:3]), False


def _inferred_tf1(module):
  names = set().union(*(v.signatures for v in module.variants))
  bn_hparams = any(name.endswith(BN_SUFFIX) for name in names)
  version = 3 if bn_hparams else 1
  if "image_classification" in names:
    kind = catalog.CLASSIFICATION
  elif "image_feature_vector" in names:
    kind = catalog.FEATURE_VECTOR
  else:
    kind = None
  inference = module.variant() or module.variants[0]
  size, variable = _size_of(image_input(inference.signatures))
  info = hub_protos.image_size_of(inference.meta_graph)
  size = info or size
  note = f"it has {'' if bn_hparams else 'no '}*{BN_SUFFIX} signatures"
  expectation = _from_entry(_synthetic_entry(version), kind, version,
                            INFERRED, note)
  inference_only = (len(module.variants) == 1 and not inference.tags
                    and tf1_hub.has_fake_quant(inference.meta_graph))
  return dataclasses.replace(expectation, image_size=size,
                             variable_size=variable,
                             inference_only=inference_only)


def _inferred_tf2(module):
  saved_object = module.saved_object
  serving = any("serving_default" in signatures
                for signatures in saved_object.signatures.values())
  version = 5 if serving else 4
  specs = saved_object.image_specs
  size, variable = _size_of(specs[0] if specs else None)
  bn_hparams = BATCH_NORM_MOMENTUM in saved_object.parameters
  note = f"it has {'a' if serving else 'no'} serving_default signature"
  expectation = _from_entry(_synthetic_entry(version), None, version,
                            INFERRED, note)
  return dataclasses.replace(expectation, image_size=size,
                             variable_size=variable, bn_hparams=bn_hparams)


def inferred(module):
  """The Expectation of a module that says nothing about itself."""
  if module.format == reading.TF1_HUB:
    return _inferred_tf1(module)
  return _inferred_tf2(module)


def resolve(module, expect=None):
  """(Expectation, [identity problem]) of `module`.

  expect: the (entry, kind, version) of --expect, or None. Problems are
  contradictions between the sources and the module's format.
  """
  problems = []
  from_metadata = None
  if module.metadata_error:
    problems.append(module.metadata_error)
  elif module.metadata is not None:
    try:
      from_metadata = _from_metadata(module.metadata)
    except (KeyError, TypeError, ValueError) as error:
      problems.append(f"slimhub_metadata.json is incomplete ({error!r})")
  if expect is not None:
    expectation = from_catalogue(expect)
    if from_metadata and from_metadata.handle != expectation.handle:
      problems.append(f"--expect says {expectation.handle} but the module's "
                      f"metadata says {from_metadata.handle}")
  else:
    expectation = from_metadata or inferred(module)
  if expectation.format != module.format:
    problems.append(f"{expectation.handle or 'the expectation'} is a "
                    f"{expectation.format} module (version "
                    f"{expectation.version}) but the directory holds a "
                    f"{module.format} module")
  return expectation, problems


def image_shape_problem(tensor, expectation):
  """What is wrong with an images tensor or spec, or None."""
  if tensor.dtype != "float32":
    return f"is {tensor.dtype}, expected float32"
  shape = tensor.shape
  if shape is None or len(shape) != 4 or shape[0] is not None or shape[3] != 3:
    return f"has shape {reading.shape_text(shape)}, expected [?,h,w,3]"
  expected = expectation.images_shape
  if expectation.variable_size is not None and any(
      want != have for want, have in zip(expected[1:3], shape[1:3])
      if expectation.variable_size or want is not None):
    return (f"has shape {reading.shape_text(shape)}, expected "
            f"{reading.shape_text(expected)} ({expectation.source})")
  return None
