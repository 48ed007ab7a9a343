"""tensorflow_hub's small protos (ModuleDef, ModuleAttachment, ImageModuleInfo).

Built from descriptors in a private DescriptorPool: slimhub writes and reads
the TF1 Hub format without tensorflow_hub, and registering hub's .proto files
in the default pool would clash with an imported tensorflow_hub.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto


def _field(name, number, field_type, type_name=None, repeated=False):
  field = _FIELD(name=name, number=number, type=field_type,
                 label=(_FIELD.LABEL_REPEATED if repeated
                        else _FIELD.LABEL_OPTIONAL))
  if type_name:
    field.type_name = type_name
  return field


def _build_pool():
  files = descriptor_pb2.FileDescriptorProto(
      name="slimhub/tensorflow_hub_protos.proto", package="tensorflow_hub",
      syntax="proto3")
  module_def = files.message_type.add(name="ModuleDef")
  module_def.enum_type.add(name="Format").value.extend([
      descriptor_pb2.EnumValueDescriptorProto(name="FORMAT_UNSPECIFIED",
                                              number=0),
      descriptor_pb2.EnumValueDescriptorProto(name="FORMAT_V3", number=3)])
  module_def.field.extend([
      _field("format", 1, _FIELD.TYPE_ENUM,
             ".tensorflow_hub.ModuleDef.Format"),
      _field("required_features", 2, _FIELD.TYPE_STRING, repeated=True)])
  files.message_type.add(name="ModuleAttachment").field.extend([
      _field("key", 1, _FIELD.TYPE_STRING),
      _field("value", 2, _FIELD.TYPE_BYTES)])
  image_info = files.message_type.add(name="ImageModuleInfo")
  input_size = image_info.nested_type.add(name="InputSize")
  input_size.field.extend([_field("height", 1, _FIELD.TYPE_INT32),
                           _field("width", 2, _FIELD.TYPE_INT32)])
  input_size.reserved_range.add(start=3, end=4)
  image_info.field.append(_field(
      "default_image_size", 1, _FIELD.TYPE_MESSAGE,
      ".tensorflow_hub.ImageModuleInfo.InputSize"))
  pool = descriptor_pool.DescriptorPool()
  pool.Add(files)
  return pool


_POOL = _build_pool()


def _message_class(name):
  return message_factory.GetMessageClass(
      _POOL.FindMessageTypeByName(f"tensorflow_hub.{name}"))


ModuleDef = _message_class("ModuleDef")
ModuleAttachment = _message_class("ModuleAttachment")
ImageModuleInfo = _message_class("ImageModuleInfo")

MODULE_DEF_FILENAME = "tfhub_module.pb"
ATTACHMENTS_COLLECTION = "hub_module_attachments"
IMAGE_MODULE_INFO_KEY = "image_module_info"
FORMAT_V3 = 3


def module_def_bytes():
  """Contents of tfhub_module.pb: ModuleDef(format=FORMAT_V3)."""
  return ModuleDef(format=FORMAT_V3).SerializeToString()


def image_module_info_bytes(height, width):
  info = ImageModuleInfo()
  info.default_image_size.height = height
  info.default_image_size.width = width
  return info.SerializeToString()


def attachments_of(meta_graph):
  """{key: bytes} of the ModuleAttachments stored in a MetaGraphDef."""
  collection = meta_graph.collection_def.get(ATTACHMENTS_COLLECTION)
  if collection is None:
    return {}
  attachments = {}
  for value in collection.bytes_list.value:
    attachment = ModuleAttachment.FromString(value)
    attachments[attachment.key] = attachment.value
  return attachments


def image_size_of(meta_graph):
  """(height, width) from the ImageModuleInfo attachment, or None."""
  value = attachments_of(meta_graph).get(IMAGE_MODULE_INFO_KEY)
  if value is None:
    return None
  size = ImageModuleInfo.FromString(value).default_image_size
  if size.height > 0 and size.width > 0:
    return size.height, size.width
  return None
