"""Every architecture fact is stated once: the papers and prose in
slimhub.architectures, the numbers in the Slim nets' configs. The model card
and the module metadata read the same sources, so a fact changed in its one
place changes both."""

import dataclasses
import json
import string
import types

import pytest

from slimhub import architectures
from slimhub import catalog
from slimhub import export
from slimhub.build import module_fn
from slimhub.build import provenance
from slimhub import slim_nets
from slimhub.regenerate import cards
from slimhub.slim_nets import nasnet
from slimhub.slim_nets import registry


def _metadata_and_card(entry, kind, version):
  """The metadata the exporter writes for `entry` (no graph is built) and
  the card rendered from it, as slimhub-regenerate renders it."""
  spec = catalog.version_spec(entry, version)
  options = module_fn.options_for(entry, kind, version)
  plan = types.SimpleNamespace(prefix="ckpt/model.ckpt", used_ema=False)
  weights = provenance.Weights(provenance.PUBLISHED,
                               note=entry.training_note)
  metadata = json.loads(json.dumps(
      export.metadata(entry, kind, spec, options, plan, weights)))
  card = cards.render(entry, kind, version,
                      cards.ModuleFacts.from_metadata(metadata))
  return metadata, " ".join(card.split())


def _supported_entries():
  return [entry for entry in catalog.ENTRIES if not entry.unsupported]


def _config_fields(template):
  """The {config.<field>} names a build sentence uses."""
  return {name.split(".", 1)[1]
          for _, name, _, _ in string.Formatter().parse(template)
          if name and name.startswith("config.")}


def test_every_supported_entry_has_its_architecture_facts():
  for entry in _supported_entries():
    architecture = architectures.ARCHITECTURES[entry.architecture]
    assert architecture.name and architecture.background, entry.name
    for _, papers in architecture.background:
      for paper in papers:
        assert isinstance(paper, architectures.Paper), entry.name
    net = slim_nets.get(entry.net)
    fields = _config_fields(architecture.build)
    if architecture.drop_path:
      fields.add("drop_path_keep_prob")
    if fields:
      assert net.config is not None, entry.name
      missing = [f for f in fields if not hasattr(net.config, f)]
      assert not missing, (entry.name, missing)
    if entry.source_checkpoint:
      assert architecture.weights_page, entry.name


def test_unsupported_entries_need_no_net():
  for entry in catalog.ENTRIES:
    if entry.unsupported:
      architecture = architectures.ARCHITECTURES[entry.architecture]
      assert not _config_fields(architecture.build), entry.name
      assert not architecture.drop_path, entry.name


def test_card_and_metadata_state_the_nets_numbers_across_the_catalogue():
  """Each supported entry's first version: the card says the feature count
  and input size the metadata records, and the (P)NASNet cells, filters and
  keep probability of the net the exporter builds."""
  for entry in _supported_entries():
    kind, version = entry.kinds[0], entry.versions[0]
    metadata, card = _metadata_and_card(entry, kind, version)
    net = slim_nets.get(entry.net)
    assert metadata["net"] == entry.net
    assert metadata["num_features"] == net.num_features
    if kind == catalog.FEATURE_VECTOR:
      assert f"`num_features` = {net.num_features} entries" in card, entry.name
    assert f"= {entry.image_size} x {entry.image_size} pixels" in card
    if architectures.ARCHITECTURES[entry.architecture].drop_path:
      config = net.config
      assert f" {config.num_cells} " in card, entry.name
      assert f"{config.num_filters} convolutional filters" in card
      assert f"keep probability {config.drop_path_keep_prob}" in card or (
          f"keep probability of {config.drop_path_keep_prob}" in card)


def _changed_row(name, **changes):
  """nasnet._PUBLISHED's row of `name` with `changes` to its fields."""
  fields = ("name", "family", "image_size", "num_features", "num_cells",
            "num_filters", "stem_multiplier", "drop_path_keep_prob",
            "prev_skips_reduction", "weight_decay")
  row = dict(zip(fields, next(r for r in nasnet._PUBLISHED if r[0] == name)))
  assert set(changes) <= set(row)
  return tuple({**row, **changes}.values())


def test_a_net_fact_changed_in_its_table_changes_card_and_metadata(
    monkeypatch):
  """nasnet_large's row of nasnet._PUBLISHED, changed there alone: the net
  the exporter builds, its metadata and its card all follow."""
  entry = catalog.find("nasnet_large")
  before, old_card = _metadata_and_card(entry, catalog.FEATURE_VECTOR, 3)
  assert "18 Normal Cells" in old_card
  changed = nasnet._net(*_changed_row(
      "nasnet_large", num_features=2016, num_cells=6, num_filters=96,
      drop_path_keep_prob=0.8))
  monkeypatch.setitem(registry._load(), "nasnet_large", changed)
  # The builder is made from the config the card reads.
  assert changed.build.keywords["config"] is changed.config

  metadata, card = _metadata_and_card(entry, catalog.FEATURE_VECTOR, 3)
  assert before["num_features"] == 4032 and metadata["num_features"] == 2016
  for fact in ("`num_features` = 2016", "6 Normal Cells",
               "96 convolutional filters", "keep probability of 0.8"):
    assert fact in card, fact
  for old in ("4032", "18 Normal Cells", "168 convolutional", "of 0.7"):
    assert old not in card, old


def test_an_architecture_fact_changed_in_its_table_changes_the_card(
    monkeypatch):
  entry = catalog.find("inception_v2")
  old = architectures.ARCHITECTURES[entry.architecture]
  paper = dataclasses.replace(old.background[0][1][0], arxiv="0000.00001")
  monkeypatch.setitem(
      architectures.ARCHITECTURES, entry.architecture, dataclasses.replace(
          old, name="Inception V2b", tfhub_id="inception-v2b",
          background=((old.background[0][0], (paper,)),)))
  _, card = _metadata_and_card(entry, catalog.CLASSIFICATION, 3)
  assert "classification with Inception V2b." in card
  assert "<!-- network-architecture: inception-v2b -->" in card
  assert f"{architectures.ARXIV}/0000.00001" in card
  assert "1409.4842" not in card


@pytest.mark.parametrize("name", ["nasnet_mobile", "pnasnet_mobile"])
def test_nets_without_path_dropout_say_so(name):
  entry = catalog.find(name)
  assert slim_nets.get(entry.net).config.drop_path_keep_prob == 1.0
  _, card = _metadata_and_card(entry, catalog.FEATURE_VECTOR, 3)
  assert "has no NASNet path dropout (keep probability 1.0)" in card
