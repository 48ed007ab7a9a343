"""Every catalogue module builds, and builds the layout its reviewed golden
file records (signatures, inputs, outputs, collections, traces, variables).

All 400-odd module versions are the slow tier; CI runs a sample that touches
every family and every version number. Numerics are checked on a sample
elsewhere (test_families.py, test_tf1_export.py, test_tf2_export.py).
"""

import pytest

from slimhub import catalog
from slimhub import slim_nets
from slimhub.reference import layouts as reference_layouts
from slimhub.verify import golden
from slimhub.verify import layout


# CI's sample: one handle of every net family, together every version.
SAMPLE = {
    ("mobilenet_v1_025_128", "feature_vector", 1),
    ("mobilenet_v1_050_160/quantops", "classification", 3),
    ("mobilenet_v2_035_96", "classification", 2),
    ("mobilenet_v3_small_075_224", "feature_vector", 5),
    ("inception_v1", "classification", 3),
    ("inception_v2", "feature_vector", 4),
    ("inception_v3", "feature_vector", 1),
    ("inception_v4", "classification", 3),
    ("inception_resnet_v2", "feature_vector", 3),
    ("resnet_v2_50", "classification", 5),
    ("vgg_16", "feature_vector", 4),
    ("nasnet_mobile", "classification", 1),
    ("pnasnet_mobile", "feature_vector", 3),
}


def _params():
  return [pytest.param(entry.name, kind, version,
                       id=f"{entry.name}-{kind}-{version}",
                       marks=pytest.mark.slow(
                           sample=(entry.name, kind, version) in SAMPLE))
          for entry, kind, version in catalog.modules()]


@pytest.mark.parametrize("name,kind,version", _params())
def test_module_builds_its_golden_layout(name, kind, version):
  entry = catalog.find(name)
  stored = golden.load(entry, kind)
  assert version in stored, (
      f"no golden layout for {entry.handle(kind, version)}; run "
      "tools/make_golden_layouts.py and review the new file")
  built = reference_layouts.build_layout(entry, kind, version)
  assert not layout.summarize(layout.differences(stored[version], built))


def test_sample_covers_every_family_and_version():
  families = {slim_nets.get(catalog.find(name).net).family
              for name, _, _ in SAMPLE}
  assert families == {net.family for net in map(slim_nets.get,
                                                 slim_nets.names())}
  assert {version for _, _, version in SAMPLE} == {1, 2, 3, 4, 5}


def test_every_supported_entry_has_its_net():
  """slimhub-regenerate plans without importing the nets (or TensorFlow):
  it relies on every supported catalogue entry's net being implemented."""
  implemented = set(slim_nets.names())
  assert [entry.name for entry in catalog.ENTRIES
          if not entry.unsupported and entry.net not in implemented] == []
